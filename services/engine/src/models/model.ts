/**
 * Loading a model from disk: a Hugging Face folder (config.json + model.safetensors, or sharded with
 * model.safetensors.index.json), a llama2.c `.bin` checkpoint, or a GGUF file (recognised by its magic;
 * see ../formats/gguf-model.ts). `inspectModel` reads only the config and the safetensors (or GGUF)
 * headers; `loadModel` also reads every weight, widened (or dequantized) to float32, checked against the
 * shapes the config implies.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EngineError } from '../errors.js';
import { readWholeFile } from '../formats/file-reads.js';
import { isStorageDtype, type StorageDtype } from '../formats/dtype.js';
import { GgufFile } from '../formats/gguf.js';
import { describeGguf, GgufWeights } from '../formats/gguf-model.js';
import { checkFiniteWeights, elementCount, type HostTensor } from '../formats/host-tensor.js';
import { llama2cHfConfig, readLlama2cCheckpoint, readLlama2cHeader } from '../formats/llama2c-checkpoint.js';
import { MAX_HEADER_BYTES, SafetensorsFile } from '../formats/safetensors.js';
import type { ArchitectureFamily, ModelConfig } from './architecture.js';
import { familyFor } from './families/index.js';
import { countExpectedParameters, expectedWeightShapes } from './weight-shapes.js';
import { INSERTED_TENSOR_NAMES, type InsertedModule } from './inserted-module.js';

export type ModelFormat = 'huggingface' | 'llama2c' | 'gguf';

export interface ModelInfo {
  readonly path: string;
  readonly format: ModelFormat;
  readonly family: ArchitectureFamily;
  readonly config: ModelConfig;
  /** The Hugging Face config.json (converted, for llama2.c checkpoints); exports start from it. */
  readonly hfConfig: Record<string, unknown>;
  readonly numParameters: number;
  /** A tokenizer found beside the weights, when there is one (for GGUF: the file itself, when its metadata holds one). */
  readonly tokenizerPath: string | null;
}

export interface LoadedModel extends ModelInfo {
  readonly weights: ReadonlyMap<string, HostTensor>;
  /** A LINEAR or FFN replacement in the residual stream (the engine's extension format). */
  readonly replacement?: InsertedModule;
}

const SINGLE_FILE = 'model.safetensors';
const SHARD_INDEX = 'model.safetensors.index.json';

/** Reads what a model is without reading its weights. */
export function inspectModel(path: string): ModelInfo {
  if (!existsSync(path)) throw new EngineError('NOT_FOUND', `model not found: ${path}`);
  if (statSync(path).isFile() && GgufFile.isGguf(path)) return inspectGguf(path);
  if (statSync(path).isFile() && basename(path) !== 'config.json') {
    const header = readLlama2cHeader(path);
    const hfConfig = llama2cHfConfig(header);
    const family = familyFor(hfConfig.model_type);
    const config = family.parseConfig(hfConfig, 'F32');
    return { path, format: 'llama2c', family, config, hfConfig, numParameters: countParameters(family, config), tokenizerPath: findTokenizer(dirname(path), true) };
  }
  const dir = statSync(path).isFile() ? dirname(path) : path;
  const hfConfig = readConfigJson(dir);
  const family = familyFor(hfConfig.model_type); // refuse unknown architectures before touching weights
  const { files, close } = openSafetensors(dir);
  try {
    const embed = lookup(files, family.weights.embedTokens);
    const dtype = embed?.file.entry(embed.name).dtype ?? 'F32';
    if (!isStorageDtype(dtype)) throw new EngineError('UNSUPPORTED_MODEL', `${dir}: weights stored as ${dtype}; supported: F32, F16, BF16`);
    const config = family.parseConfig(hfConfig, dtype as StorageDtype);
    const numParameters = countParameters(family, config) + insertedModuleParameters(dir, config.numLayers);
    return { path: dir, format: 'huggingface', family, config, hfConfig, numParameters, tokenizerPath: findTokenizer(dir, false) };
  } finally {
    close();
  }
}

export function loadModel(path: string): LoadedModel {
  const info = inspectModel(path);
  const expected = expectedWeightShapes(info.family, info.config);
  const weights = new Map<string, HostTensor>();
  if (info.format === 'llama2c') {
    for (const [name, tensor] of readLlama2cCheckpoint(path).weights) weights.set(name, checkFiniteWeights(name, tensor));
  } else if (info.format === 'gguf') {
    const gguf = GgufWeights.open(info.path);
    try {
      for (const name of expected.keys()) weights.set(name, checkFiniteWeights(name, gguf.read(name)));
    } finally {
      gguf.close();
    }
  } else {
    const { files, close } = openSafetensors(info.path);
    try {
      for (const name of expected.keys()) {
        const found = lookup(files, name);
        if (found) weights.set(name, checkFiniteWeights(name, found.file.read(found.name)));
      }
    } finally {
      close();
    }
  }
  const replacement = info.format === 'huggingface' ? readInsertedModule(info.path, info.config.numLayers) : undefined;
  for (const [name, shape] of expected) {
    const tensor = weights.get(name);
    if (!tensor) throw new EngineError('CORRUPT_FILE', `${info.path}: missing tensor ${name} (expected shape [${shape.join(', ')}])`);
    if (tensor.shape.join() !== shape.join()) {
      throw new EngineError('CORRUPT_FILE', `${info.path}: tensor ${name} has shape [${tensor.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`);
    }
  }
  return { ...info, weights, replacement };
}

/** A GGUF file: its header only (metadata and tensor infos), never its tensor data. */
function inspectGguf(path: string): ModelInfo {
  const file = GgufFile.open(path);
  try {
    const { family, config, hfConfig } = describeGguf(file);
    const tokenizerPath = file.get('tokenizer.ggml.model') !== undefined ? path : null;
    return { path, format: 'gguf', family, config, hfConfig, numParameters: countParameters(family, config), tokenizerPath };
  } finally {
    file.close();
  }
}

function insertedModuleParameters(dir: string, numLayers: number): number {
  const description = readInsertedModuleDescription(dir, numLayers);
  if (!description) return 0;
  const file = SafetensorsFile.open(join(dir, description.file));
  try {
    return INSERTED_TENSOR_NAMES[description.kind].reduce((n, name) => n + elementCount(file.entry(name).shape), 0);
  } finally {
    file.close();
  }
}

/** A LINEAR or FFN replacement saved in the engine's extension format (see ../pruning/assemble.ts). */
export function readInsertedModule(dir: string, numLayers: number): InsertedModule | undefined {
  const description = readInsertedModuleDescription(dir, numLayers);
  if (!description) return undefined;
  const { kind, position, file } = description;
  const safetensors = SafetensorsFile.open(join(dir, file));
  try {
    const weights = new Map(INSERTED_TENSOR_NAMES[kind].map((name) => [name, checkFiniteWeights(name, safetensors.read(name))] as const));
    return { kind, position, weights };
  } finally {
    safetensors.close();
  }
}

export function readInsertedModuleDescription(dir: string, numLayers: number): { kind: InsertedModule['kind']; position: number; file: string } | null {
  const manifestPath = join(dir, 'streamline.json');
  if (!existsSync(manifestPath)) return null;
  let module: { kind?: unknown; position?: unknown; file?: unknown } | null;
  try {
    module = JSON.parse(readJsonText(manifestPath)).replacementModule ?? null;
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('CORRUPT_FILE', `${manifestPath} is not valid JSON`); // the parser's message quotes the file
  }
  if (!module) return null;
  const { kind, position, file } = module;
  if ((kind !== 'LINEAR' && kind !== 'FFN') || typeof position !== 'number' || position < 0 || position > numLayers || typeof file !== 'string') {
    throw new EngineError('CORRUPT_FILE', `${manifestPath}: replacementModule must be {kind: LINEAR|FFN, position: 0..${numLayers}, file}, got ${JSON.stringify(module)}`);
  }
  return { kind, position, file };
}

/** Parameters a model of this config has (arithmetic: nothing is built per layer; the config's sizes are bounded). */
export function countParameters(family: ArchitectureFamily, config: ModelConfig): number {
  return countExpectedParameters(family, config);
}

/** config.json, the shard index and streamline.json are small; a bigger one (or a FIFO, a device) is not read. */
const MAX_JSON_BYTES = 16 * 1024 * 1024;

function readJsonText(path: string): string {
  return readWholeFile(path, 'a JSON file of a model', MAX_JSON_BYTES).toString('utf8');
}

function readConfigJson(dir: string): Record<string, unknown> {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new EngineError('NOT_FOUND', `${dir} has no config.json (expected a Hugging Face model folder or a llama2.c .bin file)`);
  try {
    const json = JSON.parse(readJsonText(path));
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not a JSON object');
    return json;
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('CORRUPT_FILE', `${path} is not valid JSON`); // the parser's message quotes the file
  }
}

export interface OpenShards {
  /** Tensor name → the shard that holds it. */
  files: Map<string, SafetensorsFile>;
  close(): void;
}

export function openSafetensors(dir: string): OpenShards {
  const byName = new Map<string, SafetensorsFile>();
  const opened: SafetensorsFile[] = [];
  const close = () => opened.forEach((file) => file.close());
  // All shards' headers together stay within one header's limit (a real model's are a few MB): what
  // inspection parses, and holds, is bounded however many shards an index lists.
  let headerBudget = MAX_HEADER_BYTES;
  const openShard = (path: string) => {
    const file = SafetensorsFile.open(path, headerBudget);
    headerBudget -= file.headerBytes;
    opened.push(file);
    return file;
  };
  try {
    if (existsSync(join(dir, SHARD_INDEX))) {
      let weightMap: Record<string, string>;
      try {
        weightMap = JSON.parse(readJsonText(join(dir, SHARD_INDEX))).weight_map;
        if (typeof weightMap !== 'object' || weightMap === null) throw new Error('no weight_map object');
      } catch (error) {
        if (error instanceof EngineError) throw error;
        throw new EngineError('CORRUPT_FILE', `${join(dir, SHARD_INDEX)} is not a valid shard index (JSON with a weight_map)`);
      }
      const shards = new Map<string, SafetensorsFile>();
      for (const [name, shard] of Object.entries(weightMap)) {
        if (!shards.has(shard)) shards.set(shard, openShard(join(dir, shard)));
        const file = shards.get(shard)!;
        if (!file.has(name)) throw new EngineError('CORRUPT_FILE', `${SHARD_INDEX} places ${name} in ${shard}, which does not hold it`);
        byName.set(name, file);
      }
    } else if (existsSync(join(dir, SINGLE_FILE))) {
      const file = openShard(join(dir, SINGLE_FILE));
      for (const name of file.entries.keys()) byName.set(name, file);
    } else {
      throw new EngineError('NOT_FOUND', `${dir} has neither ${SINGLE_FILE} nor ${SHARD_INDEX}`);
    }
  } catch (error) {
    close();
    throw error;
  }
  return { files: byName, close };
}

/** Some checkpoints were saved from the base model and lack the leading `model.` of the names. */
export function lookup(files: ReadonlyMap<string, SafetensorsFile>, name: string): { file: SafetensorsFile; name: string } | null {
  for (const candidate of [name, name.replace(/^model\./, '')]) {
    const file = files.get(candidate);
    if (file) return { file, name: candidate };
  }
  return null;
}

function findTokenizer(dir: string, llama2c: boolean): string | null {
  if (!llama2c && existsSync(join(dir, 'tokenizer.json'))) return join(dir, 'tokenizer.json');
  if (existsSync(join(dir, 'tokenizer.bin'))) return join(dir, 'tokenizer.bin');
  if (llama2c) {
    const candidates = readdirSync(dir).filter((name) => /^tok.*\.bin$/.test(name));
    if (candidates.length === 1) return join(dir, candidates[0]);
  }
  return null;
}
