/**
 * A (pruned) model as a GGUF file llama.cpp runs: llama.* metadata from its config (block_count is the
 * pruned layer count), llama.cpp's tensor names (the table in ./gguf-model.ts), q/k rows permuted as
 * convert_hf_to_gguf.py does, matrices in F16, BF16 or Q8_0 and 1-D tensors (norms) in F32, as the
 * converter keeps them. Tensors are read, encoded and written one at a time.
 *
 * The tokenizer: a GGUF source's (or `tokenizerGguf`'s) tokenizer.* keys are copied as they are; a
 * byte-level BPE tokenizer.json (GPT-2 style: SmolLM2's, or one the engine wrote from a GGUF) is written
 * as tokenizer.ggml.model "gpt2" with the pre-tokenizer name it matches (none matched: no tokenizer);
 * a llama2.c tokenizer.bin as tokenizer.ggml.model "llama". `tokenizer` in the result says which, or
 * null when the file has none.
 *
 * A model with a LINEAR or FFN replacement cannot be expressed in llama.cpp's llama graph: refused,
 * naming the kind. NONE, SWIGLU and LAYER exports are ordinary Llama layers.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EngineError } from '../errors.js';
import { MAX_TOKENIZER_BYTES, readWholeFile } from './file-reads.js';
import { inspectModel, readInsertedModuleDescription, type ModelInfo } from '../models/model.js';
import { openWeightReader } from '../models/weight-reader.js';
import { expectedWeightShapes } from '../models/weight-shapes.js';
import { ggufPreTokenizerName } from '../tokenizers/gguf-tokenizer.js';
import { Llama2cTokenizer } from '../tokenizers/llama2c-tokenizer.js';
import { GgufFile, type GgufMetadataEntry } from './gguf.js';
import { GgufWeights, llamaTensorMappings, permuteRotateHalfRowsToInterleaved } from './gguf-model.js';
import { writeGgufStreamed, type GgufTensorPlan } from './gguf-writer.js';

export type GgufExportType = 'F16' | 'BF16' | 'Q8_0';
export const GGUF_EXPORT_TYPES: readonly GgufExportType[] = ['F16', 'BF16', 'Q8_0'];

export interface GgufExportOptions {
  readonly type: GgufExportType;
  /** A GGUF file whose tokenizer.* metadata to copy (the source of a pruned GGUF model). */
  readonly tokenizerGguf?: string;
}

export interface GgufExportSummary {
  readonly path: string;
  readonly type: GgufExportType;
  readonly layers: number;
  readonly tensors: number;
  /** Where the tokenizer metadata came from, or null when the file has none. */
  readonly tokenizer: 'gguf' | 'tokenizer.json' | 'tokenizer.bin' | null;
}

/** llama.cpp's LLAMA_FTYPE of a file whose matrices are all `type`. */
const FILE_TYPE: Record<GgufExportType, number> = { F16: 1, Q8_0: 7, BF16: 32 };

export function parseGgufExportType(raw: string, option: string): GgufExportType {
  const type = raw.toUpperCase();
  if (!(GGUF_EXPORT_TYPES as readonly string[]).includes(type)) throw new EngineError('BAD_INPUT', `${option} must be f16, bf16 or q8_0, got ${JSON.stringify(raw)}`);
  return type as GgufExportType;
}

/** Writes the model at `modelPath` (a Hugging Face folder, a GGUF file or a llama2.c checkpoint) to `outFile` as GGUF. */
export function exportGguf(modelPath: string, outFile: string, options: GgufExportOptions): GgufExportSummary {
  const info = inspectModel(modelPath);
  checkExportable(info);
  const { config } = info;
  const metadata = new Map<string, GgufMetadataEntry>();
  const u32 = (key: string, value: number) => metadata.set(key, { type: 'UINT32', value });
  const f32 = (key: string, value: number) => metadata.set(key, { type: 'FLOAT32', value });
  metadata.set('general.architecture', { type: 'STRING', value: 'llama' });
  const name = typeof info.hfConfig._name_or_path === 'string' ? info.hfConfig._name_or_path : undefined;
  if (name) metadata.set('general.name', { type: 'STRING', value: name });
  u32('general.file_type', FILE_TYPE[options.type]);
  u32('llama.block_count', config.numLayers);
  u32('llama.context_length', config.maxPositionEmbeddings);
  u32('llama.embedding_length', config.hiddenSize);
  u32('llama.feed_forward_length', config.intermediateSize);
  u32('llama.attention.head_count', config.numAttentionHeads);
  u32('llama.attention.head_count_kv', config.numKeyValueHeads);
  if (config.headDim * config.numAttentionHeads !== config.hiddenSize) {
    u32('llama.attention.key_length', config.headDim);
    u32('llama.attention.value_length', config.headDim);
  }
  u32('llama.rope.dimension_count', config.headDim);
  f32('llama.rope.freq_base', config.ropeTheta);
  if (config.ropeScaling?.type === 'linear') {
    metadata.set('llama.rope.scaling.type', { type: 'STRING', value: 'linear' });
    f32('llama.rope.scaling.factor', config.ropeScaling.factor);
  }
  f32('llama.attention.layer_norm_rms_epsilon', config.normEps);
  u32('llama.vocab_size', config.vocabSize);
  const tokenizer = tokenizerMetadata(info, options.tokenizerGguf, metadata);

  const mappings = llamaTensorMappings(config.numLayers);
  const shapes = expectedWeightShapes(info.family, config);
  const plan: (GgufTensorPlan & { hfName: string })[] = [];
  for (const [hfName, shape] of shapes) {
    const mapping = mappings.get(hfName);
    if (!mapping) throw new EngineError('UNSUPPORTED_MODEL', `${info.path}: tensor ${hfName} has no llama.cpp counterpart`);
    // matrices in the asked type (F16 where Q8_0's blocks of 32 do not divide a row, as llama.cpp's converter does)
    const type = shape.length === 1 ? 'F32' : options.type === 'Q8_0' && shape[shape.length - 1] % 32 !== 0 ? 'F16' : options.type;
    plan.push({ name: mapping.ggufName, shape, type, hfName });
  }
  const permutation = new Map([...mappings].filter(([, m]) => m.permutation !== null).map(([hf, m]) => [m.ggufName, { hf, heads: m.permutation === 'attention-heads' ? config.numAttentionHeads : config.numKeyValueHeads }]));
  const hfNameOf = new Map(plan.map((t) => [t.name, t.hfName]));
  const read = openSource(info);
  try {
    writeGgufStreamed(outFile, metadata, plan, (ggufName) => {
      const tensor = read(hfNameOf.get(ggufName)!);
      const permute = permutation.get(ggufName);
      if (!permute) return tensor.data;
      const [rows, cols] = tensor.shape;
      return permuteRotateHalfRowsToInterleaved(tensor.data, permute.heads, rows / permute.heads, cols);
    });
  } finally {
    read.close();
  }
  return { path: outFile, type: options.type, layers: config.numLayers, tensors: plan.length, tokenizer };
}

function checkExportable(info: ModelInfo): void {
  const { config } = info;
  if (config.modelType !== 'llama') {
    throw new EngineError('UNSUPPORTED_MODEL', `${info.path}: GGUF export writes llama.cpp's llama architecture; model_type ${JSON.stringify(config.modelType)} is not supported`);
  }
  if (config.qkvBias || config.outputProjectionBias || config.mlpBias) throw new EngineError('UNSUPPORTED_MODEL', `${info.path}: GGUF export of a Llama with biases is not supported`);
  if (config.ropeScaling && config.ropeScaling.type !== 'linear') {
    throw new EngineError('UNSUPPORTED_MODEL', `${info.path}: GGUF export of rope scaling ${config.ropeScaling.type} is not supported (llama.cpp needs a rope_freqs tensor for it)`);
  }
  if (info.format === 'huggingface') {
    const inserted = readInsertedModuleDescription(info.path, config.numLayers);
    if (inserted) {
      throw new EngineError('UNSUPPORTED_MODEL', `${info.path}: the pruned model has a ${inserted.kind} replacement module, which llama.cpp's llama graph cannot express; GGUF export takes NONE, SWIGLU and LAYER replacements`);
    }
  }
}

type SourceReader = ((hfName: string) => { shape: readonly number[]; data: Float32Array }) & { close(): void };

function openSource(info: ModelInfo): SourceReader {
  if (info.format === 'gguf') {
    const weights = GgufWeights.open(info.path);
    return Object.assign((name: string) => weights.read(name), { close: () => weights.close() });
  }
  const reader = openWeightReader(info);
  return Object.assign((name: string) => reader.readFloat32(name), { close: () => reader.close() });
}

/** Adds the tokenizer.* keys; says where they came from. */
function tokenizerMetadata(info: ModelInfo, tokenizerGguf: string | undefined, metadata: Map<string, GgufMetadataEntry>): GgufExportSummary['tokenizer'] {
  const gguf = tokenizerGguf ?? (info.format === 'gguf' ? info.path : undefined);
  if (gguf) {
    const file = GgufFile.open(gguf);
    try {
      if (file.get('tokenizer.ggml.model') === undefined) throw new EngineError('BAD_INPUT', `${gguf} has no tokenizer metadata (tokenizer.ggml.model)`);
      for (const [key, entry] of file.metadata) if (key.startsWith('tokenizer.')) metadata.set(key, entry);
    } finally {
      file.close();
    }
    return 'gguf';
  }
  const dir = info.format === 'huggingface' ? info.path : dirname(info.path);
  const binPath = info.tokenizerPath && !info.tokenizerPath.endsWith('.json') ? info.tokenizerPath : existsSync(join(dir, 'tokenizer.bin')) ? join(dir, 'tokenizer.bin') : null;
  if (binPath && !existsSync(join(dir, 'tokenizer.json'))) {
    for (const [key, entry] of llama2cTokenizerMetadata(binPath, info.config.vocabSize)) metadata.set(key, entry);
    return 'tokenizer.bin';
  }
  const jsonPath = info.tokenizerPath?.endsWith('.json') ? info.tokenizerPath : existsSync(join(dir, 'tokenizer.json')) ? join(dir, 'tokenizer.json') : null;
  if (!jsonPath) return null;
  const entries = byteLevelBpeMetadata(jsonPath, info);
  if (!entries) return null;
  for (const [key, entry] of entries) metadata.set(key, entry);
  return 'tokenizer.json';
}

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  pre_tokenizer?: unknown;
}

/**
 * A byte-level BPE tokenizer.json as llama.cpp's gpt2 tokenizer metadata (convert_hf_to_gguf's
 * `_set_vocab_gpt2`): tokens by id, token types (1 normal, 3 control for special added tokens, 4
 * user-defined for other added tokens), merges "a b", BOS/EOS from config.json. Null for another kind.
 */
function byteLevelBpeMetadata(path: string, info: ModelInfo): [string, GgufMetadataEntry][] | null {
  let json: TokenizerJson;
  try {
    json = JSON.parse(readWholeFile(path, 'tokenizer', MAX_TOKENIZER_BYTES).toString('utf8')) as TokenizerJson;
  } catch {
    throw new EngineError('CORRUPT_FILE', `${path} is not valid JSON`);
  }
  const model = json.model;
  if (model?.type !== 'BPE' || !model.vocab || !model.merges || !JSON.stringify(json.pre_tokenizer ?? null).includes('ByteLevel')) return null;
  const size = info.config.vocabSize;
  const tokens: string[] = new Array(size);
  const types = new Int32Array(size).fill(1);
  for (const [token, id] of Object.entries(model.vocab)) if (id < size) tokens[id] = token;
  for (const added of json.added_tokens ?? []) {
    if (added.id >= size) continue;
    tokens[added.id] = added.content;
    types[added.id] = added.special ? 3 : 4;
  }
  for (let id = 0; id < size; id++) {
    if (tokens[id] === undefined) {
      tokens[id] = `[PAD${id}]`; // as the converter pads a vocabulary smaller than the embedding
      types[id] = 5; // UNUSED
    }
  }
  const pre = ggufPreTokenizerName(json.pre_tokenizer);
  if (pre === null) return null;
  const merges = model.merges.map((m) => (typeof m === 'string' ? m : m.join(' ')));
  const entries: [string, GgufMetadataEntry][] = [
    ['tokenizer.ggml.model', { type: 'STRING', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'STRING', value: pre }],
    ['tokenizer.ggml.tokens', { type: 'ARRAY', itemType: 'STRING', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'ARRAY', itemType: 'INT32', value: types }],
    ['tokenizer.ggml.merges', { type: 'ARRAY', itemType: 'STRING', value: merges }],
  ];
  const { bosTokenId, eosTokenId } = info.config;
  if (bosTokenId !== null) entries.push(['tokenizer.ggml.bos_token_id', { type: 'UINT32', value: bosTokenId }]);
  if (eosTokenId !== null) entries.push(['tokenizer.ggml.eos_token_id', { type: 'UINT32', value: eosTokenId }]);
  const configPath = join(dirname(path), 'tokenizer_config.json');
  if (existsSync(configPath)) {
    const addBos = (JSON.parse(readWholeFile(configPath, 'tokenizer config', MAX_TOKENIZER_BYTES).toString('utf8')) as { add_bos_token?: unknown }).add_bos_token;
    if (typeof addBos === 'boolean') entries.push(['tokenizer.ggml.add_bos_token', { type: 'BOOL', value: addBos }]);
  }
  return entries;
}

/**
 * A llama2.c tokenizer.bin (SentencePiece pieces, spaces for ▁, BOS/EOS as "\n<s>\n"/"\n</s>\n") as
 * llama.cpp's llama (SentencePiece) metadata: pieces with ▁ again, <unk>/<s>/</s>, scores, token types
 * (2 unknown, 3 control, 6 the byte pieces <0x00>..<0xFF> at 3..258, 1 the rest).
 */
function llama2cTokenizerMetadata(path: string, vocabSize: number): [string, GgufMetadataEntry][] {
  const tokenizer = Llama2cTokenizer.fromBytes(readWholeFile(path, 'tokenizer', MAX_TOKENIZER_BYTES), path);
  if (tokenizer.pieces.length !== vocabSize) throw new EngineError('BAD_INPUT', `${path} holds ${tokenizer.pieces.length} pieces but the model's vocabulary is ${vocabSize}`);
  const special = ['<unk>', '<s>', '</s>'];
  const tokens = tokenizer.pieces.map((piece, id) => special[id] ?? Buffer.from(piece, 'latin1').toString('utf8').replaceAll(' ', '\u2581'));
  const types = Int32Array.from(tokens, (token, id) => (id === 0 ? 2 : id < 3 ? 3 : /^<0x[0-9A-F]{2}>$/.test(token) ? 6 : 1));
  return [
    ['tokenizer.ggml.model', { type: 'STRING', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'ARRAY', itemType: 'STRING', value: tokens }],
    ['tokenizer.ggml.scores', { type: 'ARRAY', itemType: 'FLOAT32', value: Float32Array.from(tokenizer.scores) }],
    ['tokenizer.ggml.token_type', { type: 'ARRAY', itemType: 'INT32', value: types }],
    ['tokenizer.ggml.unknown_token_id', { type: 'UINT32', value: 0 }],
    ['tokenizer.ggml.bos_token_id', { type: 'UINT32', value: 1 }],
    ['tokenizer.ggml.eos_token_id', { type: 'UINT32', value: 2 }],
  ];
}
