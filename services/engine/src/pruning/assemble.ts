/**
 * Putting the pruned model together and writing it out — without materialising it: the pruned model is
 * a view of the source's weights (layers renumbered, the block's left out) plus the replacement in
 * memory, which forward passes read layer by layer and the export copies tensor by tensor.
 *
 * NONE, SWIGLU and LAYER become a plain Hugging Face checkpoint: the block's layers removed, the
 * replacement (if any) as a decoder layer where the block began — SWIGLU as a layer whose attention
 * projections are all zero, so it computes x + MLP(norm(x)) — the rest renumbered, `num_hidden_layers`
 * updated, weights in the source dtype (copied as stored, never widened and narrowed again), sharded with
 * model.safetensors.index.json when the source is sharded (shards no larger than the source's largest),
 * tokenizer files copied.
 *
 * LINEAR and FFN cannot be expressed as a decoder layer; they use the engine's extension: the same
 * plain checkpoint without the block, plus `replacement.safetensors` (in the source dtype) and, in
 * `streamline.json`, `"replacementModule": {"kind", "position", "file"}` — the module runs on the
 * residual stream just before decoder layer `position` of the pruned model (after the last layer when
 * position = num_hidden_layers). `loadModel` reads it back; transformers would load the checkpoint
 * without the module.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EngineError } from '../errors.js';
import { BYTES_PER_ELEMENT, encodeFromFloat32, type StorageDtype } from '../formats/dtype.js';
import { GgufFile } from '../formats/gguf.js';
import { elementCount, type HostTensor } from '../formats/host-tensor.js';
import { writeSafetensorsStreamed, type TensorToStream } from '../formats/safetensors.js';
import { hasBias, layerPrefix, type ArchitectureFamily, type LayerPart, type ModelConfig } from '../models/architecture.js';
import type { ModelInfo } from '../models/model.js';
import { RenamedWeightReader } from '../models/weight-reader.js';
import { expectedWeightShapes } from '../models/weight-shapes.js';
import type { StreamedModel } from '../runtime/onnx/streamed-forward.js';
import type { Block } from './block-choice.js';
import { relativeName } from './replacement.js';
import { INSERTED_TENSOR_NAMES, type InsertedModule, type ReplacementKind } from './replacement-kinds.js';
import { ggufTokenizerFiles } from '../tokenizers/gguf-tokenizer.js';

export const MANIFEST_FILE = 'streamline.json';
export const REPLACEMENT_FILE = 'replacement.safetensors';
const SHARD_INDEX = 'model.safetensors.index.json';

export interface PrunedLayout {
  readonly block: Block;
  readonly kind: ReplacementKind;
  readonly numLayers: number;
  readonly hfConfig: Record<string, unknown>;
  /** For each layer of the pruned model: the source layer it is, or null for the replacement layer. */
  readonly layerSources: readonly (number | null)[];
  /** SWIGLU / LAYER: the replacement as a decoder layer's tensors, named relative to the layer prefix. */
  readonly replacementLayer: ReadonlyMap<string, HostTensor> | null;
  readonly inserted: InsertedModule | null;
}

const ATTENTION_PARTS: LayerPart[] = ['q', 'k', 'v', 'o'];

export function prunedLayout(
  source: { readonly family: ArchitectureFamily; readonly config: ModelConfig; readonly hfConfig: Record<string, unknown> },
  block: Block,
  kind: ReplacementKind,
  replacement: ReadonlyMap<string, HostTensor> | null,
): PrunedLayout {
  const { family, config } = source;
  const asLayer = kind === 'SWIGLU' || kind === 'LAYER';
  const layerSources: (number | null)[] = [];
  for (let original = 0; original < config.numLayers; original++) {
    if (original === block.start && asLayer) layerSources.push(null);
    if (original < block.start || original >= block.start + block.size) layerSources.push(original);
  }
  const numLayers = layerSources.length;
  const inserted: InsertedModule | null = kind === 'LINEAR' || kind === 'FFN' ? { kind, position: block.start, weights: replacement! } : null;
  return {
    block,
    kind,
    numLayers,
    hfConfig: { ...source.hfConfig, num_hidden_layers: numLayers },
    layerSources,
    replacementLayer: asLayer ? replacementLayer(family, config, kind, replacement!) : null,
    inserted,
  };
}

/**
 * The model without `removed` (0-based original layers, any set) and nothing in their place: what
 * removing layers one at a time gives (sweep.ts's iterative candidates). A plain checkpoint.
 */
export function layoutWithoutLayers(source: { readonly config: ModelConfig; readonly hfConfig: Record<string, unknown> }, removed: readonly number[]): PrunedLayout {
  const gone = new Set(removed);
  const layerSources = Array.from({ length: source.config.numLayers }, (_, i) => i).filter((i) => !gone.has(i));
  const first = Math.min(...removed);
  return {
    block: { start: first, size: removed.length },
    kind: 'NONE',
    numLayers: layerSources.length,
    hfConfig: { ...source.hfConfig, num_hidden_layers: layerSources.length },
    layerSources,
    replacementLayer: null,
    inserted: null,
  };
}

/** The replacement's tensors as one decoder layer, named relative to the layer prefix. */
function replacementLayer(family: ArchitectureFamily, config: ModelConfig, kind: ReplacementKind, replacement: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  const layer = new Map(replacement);
  if (kind === 'LAYER') return layer;
  // SWIGLU: an attention sublayer that adds nothing (zero projections), norm weights of one.
  const shapes = expectedWeightShapes(family, { ...config, numLayers: 1 });
  const prefix = layerPrefix(family, 0);
  const d = config.hiddenSize;
  layer.set(relativeName(family, 'attentionNorm', 'weight'), { shape: [d], data: new Float32Array(d).fill(1) });
  for (const part of ATTENTION_PARTS) {
    for (const tensorKind of ['weight', 'bias'] as const) {
      if (tensorKind === 'bias' && !hasBias(family, config, part)) continue;
      const name = relativeName(family, part, tensorKind);
      const shape = shapes.get(`${prefix}${name}`)!;
      layer.set(name, { shape, data: new Float32Array(elementCount(shape)) });
    }
  }
  return layer;
}

/** The pruned model as forward passes and the export read it: the source's weights under the new layer numbers. */
export function prunedStreamedModel(source: StreamedModel, layout: PrunedLayout): StreamedModel {
  const { family } = source;
  const pattern = new RegExp(`^${escape(family.weights.layerPrefix).replace('\\{i\\}', '(\\d+)')}(.*)$`);
  const overlay = new Map<string, HostTensor>();
  layout.layerSources.forEach((from, layer) => {
    if (from === null) for (const [name, tensor] of layout.replacementLayer!) overlay.set(`${layerPrefix(family, layer)}${name}`, tensor);
  });
  const sourceName = (name: string): string | null => {
    const match = pattern.exec(name);
    if (!match) return name;
    const from = layout.layerSources[Number(match[1])];
    return from === null || from === undefined ? null : `${layerPrefix(family, from)}${match[2]}`;
  };
  return {
    family,
    config: { ...source.config, numLayers: layout.numLayers },
    weights: new RenamedWeightReader(source.weights, sourceName, overlay),
    ...(layout.inserted ? { inserted: layout.inserted } : {}),
  };
}

/** Parameters of the pruned model, the inserted module included. */
export function prunedParameters(pruned: StreamedModel): number {
  let total = 0;
  for (const shape of expectedWeightShapes(pruned.family, pruned.config).values()) total += elementCount(shape);
  for (const tensor of pruned.inserted?.weights.values() ?? []) total += tensor.data.length;
  return total;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'tokenizer.bin', 'vocab.json', 'merges.txt', 'generation_config.json'];
const TORCH_DTYPE: Record<StorageDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export interface ExportOptions {
  /** Largest shard; default: the source's largest shard when it is sharded, else one file. */
  readonly maxShardBytes?: number;
  /** After each tensor written. */
  readonly onTensor?: (name: string, bytesWritten: number, totalBytes: number) => void;
}

/**
 * Writes the pruned model to `outDir`, tensor by tensor from the source's files, through a temporary
 * sibling directory renamed at the end: a failed export leaves nothing at `outDir`, and the source model is
 * only ever read.
 */
export function exportPrunedModel(
  outDir: string,
  source: ModelInfo,
  pruned: StreamedModel,
  layout: PrunedLayout,
  tokenizerPath: string | null,
  manifest: Record<string, unknown>,
  options: ExportOptions = {},
): void {
  if (existsSync(outDir) && readdirSync(outDir).length > 0) {
    throw new EngineError('BAD_INPUT', `output directory ${outDir} already exists and is not empty; choose a new --out or remove it`);
  }
  mkdirSync(dirname(outDir), { recursive: true });
  const tmp = `${outDir}.tmp-${process.pid}-${Date.now()}`;
  const dtype = source.config.dtype;
  try {
    mkdirSync(tmp, { recursive: true });
    writeWeights(tmp, source, pruned, dtype, options);
    writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...layout.hfConfig, torch_dtype: TORCH_DTYPE[dtype] }, null, 2));
    if (layout.inserted) {
      const weights = layout.inserted.weights;
      const names = INSERTED_TENSOR_NAMES[layout.inserted.kind];
      writeSafetensorsStreamed(
        join(tmp, REPLACEMENT_FILE),
        names.map((name) => ({ name, shape: weights.get(name)!.shape, dtype })),
        (name) => encodeFromFloat32(weights.get(name)!.data, dtype),
      );
    }
    if (source.format === 'huggingface') {
      for (const file of TOKENIZER_FILES) if (existsSync(join(source.path, file))) copyFileSync(join(source.path, file), join(tmp, file));
    }
    if (tokenizerPath && GgufFile.isGguf(tokenizerPath)) {
      // a GGUF model's tokenizer is in its metadata: written out as tokenizer files, not the whole model
      for (const [name, bytes] of Object.entries(ggufTokenizerFiles(tokenizerPath))) writeFileSync(join(tmp, name), bytes);
    } else if (tokenizerPath && !existsSync(join(tmp, basename(tokenizerPath)))) {
      copyFileSync(tokenizerPath, join(tmp, tokenizerPath.endsWith('.json') ? 'tokenizer.json' : 'tokenizer.bin'));
    }
    const replacement = layout.inserted ? { kind: layout.inserted.kind, position: layout.inserted.position, file: REPLACEMENT_FILE } : null;
    writeFileSync(join(tmp, MANIFEST_FILE), `${JSON.stringify({ ...manifest, replacementModule: replacement }, null, 2)}\n`);
    rmSync(outDir, { recursive: true, force: true });
    renameSync(tmp, outDir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new EngineError('STORAGE', `the disk filled up while writing ${outDir}; nothing was left there`);
    throw error;
  }
}

/** The source's largest shard, when it is sharded (the output is then sharded alike). */
function sourceShardBytes(source: ModelInfo): number | null {
  if (source.format !== 'huggingface' || !existsSync(join(source.path, SHARD_INDEX))) return null;
  const files = readdirSync(source.path).filter((name) => name.endsWith('.safetensors'));
  return Math.max(...files.map((name) => statSync(join(source.path, name)).size));
}

function writeWeights(dir: string, source: ModelInfo, pruned: StreamedModel, dtype: StorageDtype, options: ExportOptions): void {
  const maxShard = options.maxShardBytes ?? sourceShardBytes(source) ?? Infinity;
  const tensors: TensorToStream[] = [...expectedWeightShapes(pruned.family, pruned.config)].map(([name, shape]) => ({ name, shape, dtype }));
  const shards: TensorToStream[][] = [[]];
  let size = 0;
  let total = 0;
  for (const tensor of tensors) {
    const bytes = elementCount(tensor.shape) * BYTES_PER_ELEMENT[dtype];
    if (size > 0 && size + bytes > maxShard) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(tensor);
    size += bytes;
    total += bytes;
  }
  let written = 0;
  const bytesOf = (name: string) => {
    const raw = pruned.weights.readRaw(name);
    // A source in another dtype (an F32 llama2.c file read as F32) is already in `dtype`; narrow otherwise.
    const bytes = raw.dtype === dtype ? raw.bytes : encodeFromFloat32(pruned.weights.readFloat32(name).data, dtype);
    written += bytes.byteLength;
    options.onTensor?.(name, written, total);
    return bytes;
  };
  const metadata = { format: 'pt' };
  if (shards.length === 1) {
    writeSafetensorsStreamed(join(dir, 'model.safetensors'), shards[0], bytesOf, metadata);
    return;
  }
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    writeSafetensorsStreamed(join(dir, file), shard, bytesOf, metadata);
    for (const { name } of shard) weightMap[name] = file;
  });
  writeFileSync(join(dir, SHARD_INDEX), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
