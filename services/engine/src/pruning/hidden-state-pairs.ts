/**
 * Hidden-state pairs (h[s], h[s+n]) — the replacement's input and target — streamed to disk shards in
 * the working directory as the original model runs, never accumulated in memory, and read back one
 * sequence at a time for training. Each sequence is stored as its input rows then its target rows
 * ([length, d] each, float32 or float16); `pairs/manifest.json` says where every sequence is, and is
 * written last, so a collection cut short is never mistaken for a complete one.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFully } from '../formats/file-writes.js';
import { checkFreeSpace } from '../disk-space.js';
import { EngineError, throwIfCancelled } from '../errors.js';
import { readFully } from '../formats/file-reads.js';
import { BYTES_PER_ELEMENT, decodeToFloat32, encodeFromFloat32 } from '../formats/dtype.js';
import { isPassRuntime, makeBatch, type ForwardRuntime, type LayerProgress, type PassRuntime, type TokenBatch } from '../runtime/runtime.js';
import type { Block } from './block-choice.js';

export type PairDtype = 'F32' | 'F16' | 'BF16';

export interface StoredSequence {
  readonly split: 'train' | 'val';
  readonly shard: number;
  readonly byteOffset: number;
  readonly length: number;
}

export interface PairManifest {
  /** Identifies the model, block, samples and dtype the pairs came from; a different run recollects. */
  readonly key: string;
  readonly hiddenSize: number;
  readonly dtype: PairDtype;
  readonly block: Block;
  readonly shards: string[];
  readonly sequences: StoredSequence[];
  readonly bytes: number;
}

export interface CollectOptions {
  readonly dir: string;
  readonly key: string;
  readonly block: Block;
  readonly hiddenSize: number;
  readonly dtype: PairDtype;
  /** Indices of samples held out for validation. */
  readonly validation: ReadonlySet<number>;
  readonly batchSize: number;
  readonly shardBytes?: number;
  readonly onEstimate?: (bytes: number) => void;
  readonly onProgress?: (samplesDone: number, samples: number, bytesWritten: number) => void;
  /** Layer-streamed runtimes: after each layer of the pass. */
  readonly onLayer?: (progress: LayerProgress) => void;
  /** Layer-streamed runtimes: checkpoint the pass here, to resume it per layer. */
  readonly passDir?: string;
  readonly signal?: AbortSignal;
}

const MANIFEST = 'manifest.json';

export function pairBytes(tokens: number, hiddenSize: number, dtype: PairDtype): number {
  return 2 * tokens * hiddenSize * BYTES_PER_ELEMENT[dtype];
}

/** Reuses a complete collection with the same key; otherwise collects anew. */
export async function collectHiddenStatePairs(runtime: ForwardRuntime, samples: readonly (readonly number[])[], options: CollectOptions): Promise<PairManifest> {
  const existing = readManifest(options.dir);
  if (existing?.key === options.key) return existing;

  const { dir, block, hiddenSize: d, dtype } = options;
  const shardBytes = options.shardBytes ?? 64 * 1024 * 1024;
  const estimate = pairBytes(samples.reduce((n, s) => n + s.length, 0), d, dtype);
  options.onEstimate?.(estimate);
  checkFreeSpace(dir, estimate, 'collecting hidden-state pairs');
  if (isPassRuntime(runtime)) return collectInOnePass(runtime, samples, options, shardBytes);
  // The manifest goes first, so an interrupted collection is never taken for a complete one; shards are
  // opened for writing (truncated) in place, and files the new manifest does not name are removed after.
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, MANIFEST), { force: true });

  const shards: string[] = [];
  const sequences: StoredSequence[] = [];
  let fd = -1;
  let shardOffset = 0;
  let bytesWritten = 0;
  // A sequence never straddles two shards: a new shard starts before a sequence once the current one is full.
  const openShardIfFull = () => {
    if (fd >= 0 && shardOffset < shardBytes) return;
    if (fd >= 0) closeSync(fd);
    const name = `pairs-${String(shards.length).padStart(5, '0')}.bin`;
    fd = guardedWrite(dir, () => openSync(join(dir, name), 'w'));
    shards.push(name);
    shardOffset = 0;
  };
  const write = (bytes: Uint8Array) => {
    guardedWrite(dir, () => writeFully(fd, bytes));
    shardOffset += bytes.byteLength;
    bytesWritten += bytes.byteLength;
  };

  try {
    for (let first = 0; first < samples.length; first += options.batchSize) {
      throwIfCancelled(options.signal, 'hidden-state collection');
      const group = samples.slice(first, first + options.batchSize);
      const batch = makeBatch(group);
      const { hiddenStates } = await runtime.forward(batch, { hiddenStates: true });
      const inputs = hiddenStates![block.start].data;
      const targets = hiddenStates![block.start + block.size].data;
      group.forEach((sequence, b) => {
        const from = b * batch.seqLen * d;
        const to = from + sequence.length * d;
        openShardIfFull();
        sequences.push({ split: options.validation.has(first + b) ? 'val' : 'train', shard: shards.length - 1, byteOffset: shardOffset, length: sequence.length });
        write(encodeFromFloat32(inputs.subarray(from, to), dtype));
        write(encodeFromFloat32(targets.subarray(from, to), dtype));
      });
      options.onProgress?.(Math.min(first + options.batchSize, samples.length), samples.length, bytesWritten);
    }
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  for (const name of readdirSync(dir)) if (!shards.includes(name)) rmSync(join(dir, name), { force: true });
  const manifest: PairManifest = { key: options.key, hiddenSize: d, dtype, block, shards, sequences, bytes: bytesWritten };
  guardedWrite(dir, () => {
    writeFileSync(join(dir, `${MANIFEST}.tmp`), JSON.stringify(manifest));
    renameSync(join(dir, `${MANIFEST}.tmp`), join(dir, MANIFEST));
  });
  return manifest;
}

/**
 * On a layer-streamed runtime: one pass up to h[s+n] over every batch. The files' layout is known before
 * it starts (each sequence's place from its length), so h[s] and h[s+n] — which arrive a few layers apart
 * — are written straight to their places; the format is the one the per-batch collection writes.
 */
async function collectInOnePass(runtime: PassRuntime, samples: readonly (readonly number[])[], options: CollectOptions, shardBytes: number): Promise<PairManifest> {
  const { dir, block, hiddenSize: d, dtype } = options;
  const element = BYTES_PER_ELEMENT[dtype];
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, MANIFEST), { force: true });
  const shards: string[] = [];
  const sequences: StoredSequence[] = [];
  let shardOffset = shardBytes;
  samples.forEach((sample, i) => {
    if (shardOffset >= shardBytes) {
      shards.push(`pairs-${String(shards.length).padStart(5, '0')}.bin`);
      shardOffset = 0;
    }
    sequences.push({ split: options.validation.has(i) ? 'val' : 'train', shard: shards.length - 1, byteOffset: shardOffset, length: sample.length });
    shardOffset += 2 * sample.length * d * element;
  });
  const fds = shards.map((name) => guardedWrite(dir, () => openSync(join(dir, name), 'w')));
  let bytesWritten = 0;
  const batches: TokenBatch[] = [];
  for (let first = 0; first < samples.length; first += options.batchSize) batches.push(makeBatch(samples.slice(first, first + options.batchSize)));
  const targetState = block.start + block.size;
  let targetsDone = 0;
  try {
    await runtime.pass(
      batches,
      {
        lastState: targetState,
        signal: options.signal,
        keepStates: [block.start],
        checkpoint: options.passDir ? { dir: options.passDir, key: `${options.key}:pairs-pass` } : undefined,
      },
      {
        onLayer: options.onLayer,
        onHiddenState: (state, b, hidden) => {
          if (state !== block.start && state !== targetState) return;
          const T = batches[b].seqLen;
          for (let row = 0; row < batches[b].batchSize; row++) {
            const index = b * options.batchSize + row;
            const { shard, byteOffset, length } = sequences[index];
            const from = row * T * d;
            const bytes = encodeFromFloat32(hidden.data.subarray(from, from + length * d), dtype);
            const at = byteOffset + (state === targetState ? length * d * element : 0);
            guardedWrite(dir, () => writeFully(fds[shard], bytes, at));
            bytesWritten += bytes.byteLength;
          }
          if (state === targetState) {
            targetsDone += batches[b].batchSize;
            options.onProgress?.(targetsDone, samples.length, bytesWritten);
          }
        },
      },
    );
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
  for (const name of readdirSync(dir)) if (!shards.includes(name)) rmSync(join(dir, name), { force: true });
  const manifest: PairManifest = { key: options.key, hiddenSize: d, dtype, block, shards, sequences, bytes: sequences.reduce((n, s) => n + 2 * s.length * d * element, 0) };
  guardedWrite(dir, () => {
    writeFileSync(join(dir, `${MANIFEST}.tmp`), JSON.stringify(manifest));
    renameSync(join(dir, `${MANIFEST}.tmp`), join(dir, MANIFEST));
  });
  return manifest;
}

export function readManifest(dir: string): PairManifest | null {
  if (!existsSync(join(dir, MANIFEST))) return null;
  try {
    return JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8'));
  } catch {
    return null; // unreadable: collect again
  }
}

/** What training and the linear fit read: each stored sequence's inputs and targets, and the split it is in. */
export interface HiddenStatePairs {
  readonly hiddenSize: number;
  read(index: number): { inputs: Float32Array; targets: Float32Array; length: number };
  indices(split: 'train' | 'val'): number[];
  close(): void;
}

/** Reads one stored sequence's inputs and targets, widened to float32. */
export class PairReader implements HiddenStatePairs {
  private readonly fds: number[];

  constructor(
    private readonly dir: string,
    readonly manifest: PairManifest,
  ) {
    this.fds = manifest.shards.map((name) => openSync(join(dir, name), 'r'));
  }

  get hiddenSize(): number {
    return this.manifest.hiddenSize;
  }

  read(index: number): { inputs: Float32Array; targets: Float32Array; length: number } {
    const { shard, byteOffset, length } = this.manifest.sequences[index];
    const half = length * this.manifest.hiddenSize * BYTES_PER_ELEMENT[this.manifest.dtype];
    const bytes = readFully(this.fds[shard], new Uint8Array(2 * half), byteOffset, join(this.dir, this.manifest.shards[shard]), `hidden states end before byte ${byteOffset + 2 * half}`);
    return {
      inputs: decodeToFloat32(bytes.subarray(0, half), this.manifest.dtype),
      targets: decodeToFloat32(bytes.subarray(half), this.manifest.dtype),
      length,
    };
  }

  indices(split: 'train' | 'val'): number[] {
    const result: number[] = [];
    this.manifest.sequences.forEach((s, i) => s.split === split && result.push(i));
    return result;
  }

  close(): void {
    this.fds.forEach((fd) => closeSync(fd));
  }
}

/** Runs a write, turning a full disk or an unwritable directory into one clear error. */
export function guardedWrite<T>(dir: string, action: () => T): T {
  try {
    return action();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new EngineError('STORAGE', `the disk filled up while writing hidden-state pairs to ${dir}; free space or choose another --work-dir`);
    }
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
      throw new EngineError('STORAGE', `cannot write hidden-state pairs to ${dir}: ${code}`);
    }
    throw error;
  }
}
