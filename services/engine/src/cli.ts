/**
 * streamline-engine: the engine's command line, a thin layer over its TypeScript API.
 *   inspect    --model M [--tokenizer T]
 *   convert    --model M.bin --tokenizer T --out DIR
 *   generate   --model M [--tokenizer T] --prompt P --max-tokens N [--temperature 0] [--top-p P] [--seed S]
 *   importance --model M [--tokenizer T] --data D [--samples N] [--seq-len L] [--block-sizes 1,2|all]
 *              [--batch-size B] [--workers W] --out F.json
 *   prune      ... --out DIR [--gguf f16|bf16|q8_0]   (model.gguf beside the Hugging Face export)
 *   export-gguf --model M --out F.gguf [--type f16|bf16|q8_0]
 * Results go to stdout (or --out), progress to stderr; any failure is one line on stderr and exit 1.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EngineError } from './errors.js';
import { loadCalibrationSamples } from './data/calibration.js';
import { exportGguf, parseGgufExportType } from './formats/gguf-export.js';
import { GgufFile } from './formats/gguf.js';
import { writeHfFolder } from './formats/hf-folder.js';
import { readLlama2cCheckpoint } from './formats/llama2c-checkpoint.js';
import { generate } from './generate.js';
import { computeImportance, parseBlockSizes } from './importance.js';
import { inspectModel, loadModel, type ModelInfo } from './models/model.js';
import { runEvalCommand } from './evaluation/eval-command.js';
import { DEFAULT_HEALING } from './pruning/defaults.js';
import { formatBytes, prune, type PruneEvent, type PruneOptions } from './pruning/prune.js';
import { loadTrainedCandidate, sweep } from './pruning/sweep.js';
import { planBoundsFromEnv } from './plan-bounds.js';
import type { ReplacementKind } from './pruning/replacement-kinds.js';
import { createRuntime } from './runtime/create-runtime.js';
import { memoryBudget, parseMemorySize } from './runtime/memory-budget.js';
import { openRuntime, type OpenRuntimeOptions } from './runtime/open-runtime.js';
import { openCalibrationSession } from './calibration-session.js';
import { loadTokenizer, type Tokenizer } from './tokenizers/tokenizer.js';

const USAGE = `usage: streamline-engine <command> [options]
  inspect    --model M [--tokenizer T]
  convert    --model M.bin --tokenizer T --out DIR
  generate   --model M [--tokenizer T] --prompt P --max-tokens N [--temperature 0] [--top-p 0.9] [--seed S] [--memory-budget 6GiB]
  importance --model M [--tokenizer T] --data D [--samples 32] [--seq-len 128] [--block-sizes all]
             [--batch-size 8] [--workers W] [--memory-budget 6GiB] [--streaming on|off] [--work-dir DIR] --out F.json
  prune      --model M [--tokenizer T] --data D (--layers N [--start S] | --target-sparsity F)
             --replacement none|linear|ffn|swiglu|layer [--samples 32] [--seq-len 128] [--batch-size 8]
             [--epochs E | --min-steps 300] [--lr 2e-4] [--min-lr 5e-5] [--warmup-steps W] [--weight-decay 1e-3]
             [--grad-clip 5] [--grad-accum 1] [--val-fraction 0.1] [--seed 0] [--checkpoint-every 50]
             [--pairs-dtype f32|f16|bf16] [--eval-windows 16] [--text F]... [--mc F.jsonl]... [--limit K]
             [--heal [--heal-steps 200] [--heal-lr 2e-4] [--heal-patience 3]] [--memory-budget 6GiB] [--streaming on|off] [--work-dir DIR] [--gguf f16|bf16|q8_0] --out DIR
  prune      ... --sweep 1..3 [--top-starts 1] [--kinds layer,linear] --out DIR   (a sweep: each candidate's replacement and
             figures in DIR/<candidate id>/, the candidates on stdout; no --layers, --start or --replacement)
  prune      ... --from-candidate DIR/<candidate id> --out DIR2   (export that candidate from its trained weights)
  export-gguf --model M --out F.gguf [--type f16|bf16|q8_0]   (llama.cpp; default f16)
  eval       --model M [--compare M2] [--tokenizer T] [--text F]... [--mc F.jsonl]... [--limit K] [--seq-len L] --out R.json
environment: STREAMLINE_RUNTIME=onnx|tfjs, STREAMLINE_TRAINER=onnx|tfjs, STREAMLINE_BACKEND=tensorflow|wasm|cpu, STREAMLINE_ONNX_PROVIDER=cpu|cuda, STREAMLINE_THREADS=N,
  STREAMLINE_MEMORY_BUDGET=6GiB (what a layer-streamed pass may hold; default half the available memory)`;

const OPTIONS = {
  model: { type: 'string' },
  tokenizer: { type: 'string' },
  out: { type: 'string' },
  prompt: { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  seed: { type: 'string' },
  data: { type: 'string' },
  samples: { type: 'string' },
  'seq-len': { type: 'string' },
  'block-sizes': { type: 'string' },
  'batch-size': { type: 'string' },
  workers: { type: 'string' },
  layers: { type: 'string' },
  start: { type: 'string' },
  'target-sparsity': { type: 'string' },
  replacement: { type: 'string' },
  epochs: { type: 'string' },
  'min-steps': { type: 'string' },
  'warmup-steps': { type: 'string' },
  lr: { type: 'string' },
  'min-lr': { type: 'string' },
  'weight-decay': { type: 'string' },
  'grad-clip': { type: 'string' },
  'grad-accum': { type: 'string' },
  'val-fraction': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  heal: { type: 'boolean' },
  'heal-steps': { type: 'string' },
  'heal-lr': { type: 'string' },
  'heal-patience': { type: 'string' },
  'pairs-dtype': { type: 'string' },
  'eval-windows': { type: 'string' },
  'work-dir': { type: 'string' },
  compare: { type: 'string' },
  limit: { type: 'string' },
  text: { type: 'string', multiple: true },
  mc: { type: 'string', multiple: true },
  'memory-budget': { type: 'string' },
  streaming: { type: 'string' },
  gguf: { type: 'string' },
  type: { type: 'string' },
  sweep: { type: 'string' },
  'top-starts': { type: 'string' },
  kinds: { type: 'string' },
  'from-candidate': { type: 'string' },
  help: { type: 'boolean' },
} as const;

type StringOption = Exclude<keyof typeof OPTIONS, 'help' | 'heal' | 'text' | 'mc'>;
type Args = Partial<Record<StringOption, string>> & { heal?: boolean; text?: string[]; mc?: string[] };

function required(args: Args, name: StringOption): string {
  const value = args[name];
  if (value === undefined) throw new EngineError('BAD_INPUT', `--${name} is required`);
  return value;
}

function numberOption(args: Args, name: StringOption, fallback: number, integer = true): number {
  const raw = args[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new EngineError('BAD_INPUT', `--${name} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

async function tokenizerFor(args: Args, info: ModelInfo, needed: boolean): Promise<Tokenizer | null> {
  const path = args.tokenizer ?? info.tokenizerPath;
  if (!path) {
    if (needed) throw new EngineError('BAD_INPUT', `no tokenizer found beside ${info.path}; pass --tokenizer`);
    return null;
  }
  return loadTokenizer(path);
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

function layerLabel(layer: number, layers: number): string {
  if (layer < 0) return 'embeddings';
  if (layer >= layers) return 'LM head';
  return `layer ${layer + 1}/${layers}`;
}

function runtimeOptions(args: Args, workers?: number): OpenRuntimeOptions {
  const streaming = args.streaming ?? 'on';
  if (streaming !== 'on' && streaming !== 'off') throw new EngineError('BAD_INPUT', `--streaming must be on or off, got ${JSON.stringify(streaming)}`);
  return { workers, streaming, memoryBudget: args['memory-budget'] === undefined ? undefined : parseMemorySize(args['memory-budget'], '--memory-budget') };
}

/** Identifies an importance pass for its checkpoint: the model's files and the batches. */
function passKey(info: ModelInfo, data: readonly (readonly number[])[], batchSize: number): string {
  return createHash('sha256').update(JSON.stringify([resolve(info.path), statSync(info.path).mtimeMs, batchSize, data])).digest('hex').slice(0, 32);
}

async function inspect(args: Args): Promise<void> {
  const info = inspectModel(required(args, 'model'));
  const { config } = info;
  const tokenizer = await tokenizerFor(args, info, false);
  const summary = {
    architecture: config.modelType,
    format: info.format,
    numLayers: config.numLayers,
    hiddenSize: config.hiddenSize,
    numAttentionHeads: config.numAttentionHeads,
    numKeyValueHeads: config.numKeyValueHeads,
    intermediateSize: config.intermediateSize,
    vocabSize: config.vocabSize,
    maxPositionEmbeddings: config.maxPositionEmbeddings,
    numParameters: info.numParameters,
    dtype: config.dtype,
    tieWordEmbeddings: config.tieWordEmbeddings,
    tokenizer: tokenizer ? { kind: tokenizer.kind, vocabSize: tokenizer.vocabSize } : null,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

async function convert(args: Args): Promise<void> {
  const modelPath = required(args, 'model');
  const tokenizerPath = required(args, 'tokenizer');
  const out = required(args, 'out');
  await loadTokenizer(tokenizerPath); // refuse a broken tokenizer before writing anything
  const { config, weights } = readLlama2cCheckpoint(modelPath);
  writeHfFolder(out, { config, weights, dtype: 'F32' });
  copyFileSync(tokenizerPath, join(out, 'tokenizer.bin'));
  progress(`wrote ${out} (config.json, model.safetensors, tokenizer.bin from ${basename(tokenizerPath)})`);
}

async function generateCommand(args: Args): Promise<void> {
  const settings = {
    prompt: args.prompt ?? '',
    maxTokens: numberOption(args, 'max-tokens', 256),
    temperature: numberOption(args, 'temperature', 1, false),
    topP: numberOption(args, 'top-p', 0.9, false),
    seed: numberOption(args, 'seed', Date.now()),
  };
  const info = inspectModel(required(args, 'model'));
  const tokenizer = (await tokenizerFor(args, info, true))!;
  // The whole model (fast per token) when it fits the memory budget as float32 (about twice its weights
  // while loading); else layer-streamed, which reads every layer from disk again for each new token.
  const options = runtimeOptions(args);
  const fits = info.numParameters * 4 * 2 <= memoryBudget(options.memoryBudget);
  if (!fits) progress(`generate: ${info.numParameters} parameters do not fit the memory budget as float32; streaming the layers from disk for every token`);
  const runtime = await openRuntime(info, { ...options, streaming: args.streaming === undefined ? (fits ? 'off' : 'on') : options.streaming });
  try {
    const { text } = await generate(runtime, tokenizer, { ...settings, maxPositions: info.config.maxPositionEmbeddings });
    process.stdout.write(`${text}\n`);
  } finally {
    await runtime.dispose();
  }
}

async function importance(args: Args): Promise<void> {
  const out = required(args, 'out');
  const samples = numberOption(args, 'samples', 32);
  const seqLen = numberOption(args, 'seq-len', 128);
  const batchSize = numberOption(args, 'batch-size', 8);
  const workers = args.workers === undefined ? undefined : numberOption(args, 'workers', 1);
  const modelPath = required(args, 'model');
  // The calibration session prune() and the dry run open: model inspected once, data loaded, weights opened.
  const session = await openCalibrationSession({
    modelPath,
    tokenizerPath: args.tokenizer,
    dataPath: required(args, 'data'),
    samples,
    seqLen,
    runtime: runtimeOptions(args, workers),
    seqLenSetting: '--seq-len',
  });
  const { info, data } = session;
  const blockSizes = parseBlockSizes(args['block-sizes'] ?? 'all', info.config.numLayers);
  if (data.length < samples) progress(`note: ${required(args, 'data')} yields only ${data.length} samples of the ${samples} asked for`);
  const runtime = await session.runtime();
  progress(`importance: ${info.config.modelType}, ${info.config.numLayers} layers, ${data.length} samples × ≤${seqLen} tokens on ${runtime.description}`);
  try {
    const workDir = args['work-dir'];
    const profile = await computeImportance(runtime, info.config.numLayers, data, seqLen, {
      blockSizes,
      batchSize,
      checkpoint: workDir ? { dir: join(workDir, 'importance-pass'), key: passKey(info, data, batchSize) } : undefined,
      onProgress: (p) =>
        progress(p.layer === undefined ? `importance: ${p.samplesDone}/${p.samples} samples, ${p.tokens} tokens` : `importance: ${layerLabel(p.layer, p.layers!)}, ${formatBytes(p.bytesRead ?? 0)} read`),
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(profile, null, 2)}\n`);
    for (const block of profile.blocks) {
      progress(`block size ${block.blockSize}: best start ${block.bestStart} (cos ${block.scores[block.bestStart].toFixed(4)})`);
    }
    progress(`${profile.tokens} tokens in ${profile.seconds.toFixed(2)} s (${Math.round(profile.tokensPerSecond)} tokens/s); wrote ${out}`);
  } finally {
    await session.close();
  }
}

/** `--sweep 1..3` (a range) or `--sweep 1,2,4` (a list) of block sizes. */
function parseSweepSizes(raw: string): number[] {
  const range = /^(\d+)\.\.(\d+)$/.exec(raw);
  const sizes = range ? Array.from({ length: Math.max(0, Number(range[2]) - Number(range[1]) + 1) }, (_, i) => Number(range[1]) + i) : raw.split(',').map((part) => Number(part.trim()));
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new EngineError('BAD_INPUT', `--sweep: ${JSON.stringify(raw)} is not a range (1..3) or a list of block sizes (1,2,4)`);
  return sizes;
}

async function pruneCommand(args: Args): Promise<void> {
  const optionalNumber = (name: StringOption, integer = true) => (args[name] === undefined ? undefined : numberOption(args, name, 0, integer));
  const fromCandidate = args['from-candidate'] === undefined ? undefined : loadTrainedCandidate(args['from-candidate']);
  if (args.sweep !== undefined || fromCandidate) {
    for (const flag of ['layers', 'start', 'target-sparsity', 'replacement'] as const) {
      if (args[flag] !== undefined) throw new EngineError('BAD_INPUT', `--${flag} does not go with ${args.sweep !== undefined ? '--sweep (a sweep chooses its blocks; give the kinds with --kinds)' : '--from-candidate (the candidate has its block and kind)'}`);
    }
  }
  const replacement = (fromCandidate?.candidate.replacement ?? (args.sweep !== undefined ? 'LAYER' : required(args, 'replacement').toUpperCase())) as ReplacementKind;
  const pairsDtype = (args['pairs-dtype'] ?? 'f32').toUpperCase();
  if (pairsDtype !== 'F32' && pairsDtype !== 'F16' && pairsDtype !== 'BF16') throw new EngineError('BAD_INPUT', `--pairs-dtype must be f32, f16 or bf16, got ${JSON.stringify(args['pairs-dtype'])}`);
  const { streaming, memoryBudget } = runtimeOptions(args);
  const out = required(args, 'out');
  const ggufType = args.gguf === undefined ? undefined : parseGgufExportType(args.gguf, '--gguf');
  if (ggufType && (replacement === 'LINEAR' || replacement === 'FFN')) {
    throw new EngineError('BAD_INPUT', `--gguf: a ${replacement} replacement cannot be expressed in llama.cpp's llama graph; GGUF export takes none, swiglu and layer`);
  }
  const training: Record<string, number | undefined> = {
    epochs: optionalNumber('epochs'),
    minSteps: optionalNumber('min-steps'),
    warmupSteps: optionalNumber('warmup-steps'),
    learningRate: optionalNumber('lr', false),
    minLearningRate: optionalNumber('min-lr', false),
    weightDecay: optionalNumber('weight-decay', false),
    gradClip: optionalNumber('grad-clip', false),
    gradAccum: optionalNumber('grad-accum'),
    checkpointEvery: optionalNumber('checkpoint-every'),
  };
  const healingOptions = ['heal-steps', 'heal-lr', 'heal-patience'] as const;
  const stray = healingOptions.find((name) => args[name] !== undefined);
  if (!args.heal && stray) throw new EngineError('BAD_INPUT', `--${stray} needs --heal`);
  if (args.heal && args.sweep !== undefined) throw new EngineError('BAD_INPUT', '--heal does not go with --sweep: the candidates of a sweep are not healed');
  const healing = args.heal
    ? {
        ...DEFAULT_HEALING,
        steps: optionalNumber('heal-steps') ?? DEFAULT_HEALING.steps,
        learningRate: optionalNumber('heal-lr', false) ?? DEFAULT_HEALING.learningRate,
        patience: optionalNumber('heal-patience') ?? DEFAULT_HEALING.patience,
        // Healing validates on the windows the MSE stage held out.
        validationFraction: optionalNumber('val-fraction', false) ?? DEFAULT_HEALING.validationFraction,
      }
    : null;
  let lastReported = 0;
  const onProgress = (event: PruneEvent & { candidateId?: string }) => {
    // Training reports every step; print one line in ten (and the last).
    if (event.training && event.training.step % 10 !== 0 && event.training.step !== event.training.totalSteps && event.training.step - lastReported < 10) return;
    if (event.training) lastReported = event.training.step;
    progress(`${event.stage.toLowerCase()}${event.candidateId ? ` [${event.candidateId}]` : ''}: ${event.message}`);
  };
  // What a sweep and a single prune read alike from the command line.
  const common = {
    modelPath: required(args, 'model'),
    tokenizerPath: args.tokenizer,
    dataPath: required(args, 'data'),
    workDir: args['work-dir'] ?? `${out.replace(/\/+$/, '')}.work`,
    samples: optionalNumber('samples'),
    seqLen: optionalNumber('seq-len'),
    batchSize: optionalNumber('batch-size'),
    valFraction: optionalNumber('val-fraction', false),
    seed: optionalNumber('seed'),
    pairsDtype,
    streaming,
    memoryBudget,
    evalWindows: optionalNumber('eval-windows'),
    evaluation: { texts: args.text ?? [], tasks: args.mc ?? [], limit: optionalNumber('limit') },
    training: Object.fromEntries(Object.entries(training).filter(([, value]) => value !== undefined)),
    onProgress,
  } satisfies Partial<PruneOptions>;
  if (args.sweep !== undefined) {
    const summary = await sweep({
      ...common,
      candidatesDir: out,
      sweep: {
        blockSizes: parseSweepSizes(args.sweep),
        topStarts: optionalNumber('top-starts') ?? 1,
        replacements: (args.kinds ?? 'layer').split(',').map((kind) => kind.trim().toUpperCase() as ReplacementKind),
        iterative: false,
      },
      maxCandidates: planBoundsFromEnv().maxSweepCandidates,
    });
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const summary = await prune({
    ...common,
    outDir: out,
    layers: fromCandidate?.candidate.blockSize ?? optionalNumber('layers'),
    start: fromCandidate?.candidate.start ?? optionalNumber('start'),
    targetSparsity: optionalNumber('target-sparsity', false),
    trained: fromCandidate?.trained,
    replacement,
    healing,
  });
  if (!ggufType) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const modelPath = required(args, 'model');
  progress(`export: model.gguf (${ggufType})`);
  const gguf = exportGguf(out, join(out, 'model.gguf'), { type: ggufType, tokenizerGguf: GgufFile.isGguf(modelPath) ? modelPath : undefined });
  process.stdout.write(`${JSON.stringify({ ...summary, gguf }, null, 2)}\n`);
}

async function exportGgufCommand(args: Args): Promise<void> {
  const type = parseGgufExportType(args.type ?? 'f16', '--type');
  const summary = exportGguf(required(args, 'model'), required(args, 'out'), { type });
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

async function evalCommand(args: Args): Promise<void> {
  await runEvalCommand({
    model: required(args, 'model'),
    compare: args.compare,
    tokenizer: args.tokenizer,
    texts: args.text ?? [],
    tasks: args.mc ?? [],
    limit: args.limit === undefined ? undefined : numberOption(args, 'limit', 0),
    seqLen: args['seq-len'] === undefined ? undefined : numberOption(args, 'seq-len', 0),
    out: required(args, 'out'),
    progress,
  });
}

const COMMANDS: Record<string, (args: Args) => Promise<void>> = { inspect, convert, generate: generateCommand, importance, prune: pruneCommand, eval: evalCommand, 'export-gguf': exportGgufCommand };

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return command ? 0 : 1;
    }
    const run = COMMANDS[command];
    if (!run) throw new EngineError('BAD_INPUT', `unknown command ${JSON.stringify(command)}; commands: ${Object.keys(COMMANDS).join(', ')}`);
    let values: Args & { help?: boolean };
    try {
      ({ values } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: false }));
    } catch (error) {
      throw new EngineError('BAD_INPUT', (error as Error).message);
    }
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    await run(values);
    return 0;
  } catch (error) {
    const message = error instanceof EngineError ? error.message : `internal error: ${(error as Error).stack ?? error}`;
    process.stderr.write(`streamline-engine ${command ?? ''}: ${message}\n`);
    return 1;
  }
}
