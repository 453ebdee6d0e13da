/**
 * Putting the pruned model together and writing it out.
 *
 * NONE, SWIGLU and LAYER become a plain Hugging Face checkpoint: the block's layers removed, the
 * replacement (if any) as a decoder layer where the block began — SWIGLU as a layer whose attention
 * projections are all zero, so it computes x + MLP(norm(x)) — the rest renumbered, `num_hidden_layers`
 * updated, weights in the source dtype, tokenizer files copied.
 *
 * LINEAR and FFN cannot be expressed as a decoder layer; they use the engine's extension: the same
 * plain checkpoint without the block, plus `replacement.safetensors` and, in `streamline.json`,
 * `"replacement": {"kind", "position", "file"}` — the module runs on the residual stream just before
 * decoder layer `position` of the pruned model (after the last layer when position = num_hidden_layers).
 * `loadModel` reads it back; transformers would load the checkpoint without the module.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EngineError } from '../errors.js';
import { GgufFile } from '../formats/gguf.js';
import type { HostTensor } from '../formats/host-tensor.js';
import { writeHfFolder } from '../formats/hf-folder.js';
import { writeSafetensors } from '../formats/safetensors.js';
import { hasBias, layerPrefix, layerWeightName, type LayerPart } from '../models/architecture.js';
import type { LoadedModel } from '../models/model.js';
import type { Block } from './block-choice.js';
import { relativeName } from './replacement.js';
import { INSERTED_TENSOR_NAMES, type InsertedModule, type ReplacementKind } from './replacement-kinds.js';
import { ggufTokenizerFiles } from '../tokenizers/gguf-tokenizer.js';

export const MANIFEST_FILE = 'streamline.json';
export const REPLACEMENT_FILE = 'replacement.safetensors';

export interface PrunedModel {
  readonly hfConfig: Record<string, unknown>;
  readonly numLayers: number;
  readonly weights: Map<string, HostTensor>;
  readonly inserted: InsertedModule | null;
}

const ATTENTION_PARTS: LayerPart[] = ['q', 'k', 'v', 'o'];

export function assemblePrunedModel(model: LoadedModel, block: Block, kind: ReplacementKind, replacement: ReadonlyMap<string, HostTensor> | null): PrunedModel {
  const { family, config } = model;
  const asLayer = kind === 'SWIGLU' || kind === 'LAYER';
  const numLayers = config.numLayers - block.size + (asLayer ? 1 : 0);
  const layerPattern = new RegExp(`^${escape(family.weights.layerPrefix).replace('\\{i\\}', '(\\d+)')}(.*)$`);

  const weights = new Map<string, HostTensor>();
  // Non-layer tensors first, then layers in their new order (keeps shards and files readable).
  for (const [name, tensor] of model.weights) if (!layerPattern.test(name)) weights.set(name, tensor);
  const kept = (original: number) => original < block.start || original >= block.start + block.size;
  let next = 0;
  for (let original = 0; original < config.numLayers; original++) {
    if (original === block.start && asLayer) {
      for (const [name, tensor] of replacementLayer(model, kind, replacement!)) weights.set(`${layerPrefix(family, next)}${name}`, tensor);
      next++;
    }
    if (!kept(original)) continue;
    const prefix = layerPrefix(family, original);
    for (const [name, tensor] of model.weights) if (name.startsWith(prefix)) weights.set(`${layerPrefix(family, next)}${name.slice(prefix.length)}`, tensor);
    next++;
  }
  const inserted: InsertedModule | null = kind === 'LINEAR' || kind === 'FFN' ? { kind, position: block.start, weights: replacement! } : null;
  return { hfConfig: { ...model.hfConfig, num_hidden_layers: numLayers }, numLayers, weights, inserted };
}

/** The replacement's tensors as one decoder layer, named relative to the layer prefix. */
function replacementLayer(model: LoadedModel, kind: ReplacementKind, replacement: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  const layer = new Map(replacement);
  if (kind === 'LAYER') return layer;
  // SWIGLU: an attention sublayer that adds nothing (zero projections), norm weights of one.
  const { family, config } = model;
  const shapeOf = (part: LayerPart, tensorKind: 'weight' | 'bias') => model.weights.get(layerWeightName(family, 0, part, tensorKind))!.shape;
  const d = config.hiddenSize;
  layer.set(relativeName(family, 'attentionNorm', 'weight'), { shape: [d], data: new Float32Array(d).fill(1) });
  for (const part of ATTENTION_PARTS) {
    for (const tensorKind of ['weight', 'bias'] as const) {
      if (tensorKind === 'bias' && !hasBias(family, config, part)) continue;
      const shape = shapeOf(part, tensorKind);
      layer.set(relativeName(family, part, tensorKind), { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    }
  }
  return layer;
}

/** The pruned model as the engine runs it (for evaluation before or without export). */
export function prunedLoadedModel(source: LoadedModel, pruned: PrunedModel, path: string): LoadedModel {
  const config = { ...source.config, numLayers: pruned.numLayers };
  const numParameters = [...pruned.weights.values(), ...(pruned.inserted?.weights.values() ?? [])].reduce((n, t) => n + t.data.length, 0);
  return { ...source, path, config, hfConfig: pruned.hfConfig, weights: pruned.weights, replacement: pruned.inserted ?? undefined, numParameters };
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'tokenizer.bin', 'vocab.json', 'merges.txt', 'generation_config.json'];

/**
 * Writes the pruned model to `outDir` through a temporary sibling directory renamed at the end: a failed
 * export leaves nothing at `outDir`, and the source model is only ever read.
 */
export function exportPrunedModel(outDir: string, source: LoadedModel, pruned: PrunedModel, tokenizerPath: string | null, manifest: Record<string, unknown>): void {
  if (existsSync(outDir) && readdirSync(outDir).length > 0) {
    throw new EngineError('BAD_INPUT', `output directory ${outDir} already exists and is not empty; choose a new --out or remove it`);
  }
  mkdirSync(dirname(outDir), { recursive: true });
  const tmp = `${outDir}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeHfFolder(tmp, { config: pruned.hfConfig, weights: pruned.weights, dtype: source.config.dtype });
    if (pruned.inserted) {
      const names = INSERTED_TENSOR_NAMES[pruned.inserted.kind];
      writeSafetensors(join(tmp, REPLACEMENT_FILE), names.map((name) => ({ name, tensor: pruned.inserted!.weights.get(name)! })), source.config.dtype);
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
    const replacement = pruned.inserted ? { kind: pruned.inserted.kind, position: pruned.inserted.position, file: REPLACEMENT_FILE } : null;
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

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
