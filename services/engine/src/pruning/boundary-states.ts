/**
 * A sweep's hidden states: every boundary h[s] that some candidate reads (its block's input h[s] or
 * target h[s+n]) written to disk once, in one pass of the original model over the calibration data —
 * not once per candidate — then read back as the (h[s], h[s+n]) pairs of any block between two of them.
 *
 * One file per boundary (`h-<s>.bin`); sequence i sits at the same byte offset in every file (its
 * tokens × d elements, float32 or float16), so a pair is two reads. `manifest.json` is written last, so
 * a collection cut short is never taken for a complete one; a complete one with the same key is reused.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFully } from '../formats/file-writes.js';
import { checkFreeSpace } from '../disk-space.js';
import { throwIfCancelled } from '../errors.js';
import { readFully } from '../formats/file-reads.js';
import { BYTES_PER_ELEMENT, decodeToFloat32, encodeFromFloat32 } from '../formats/dtype.js';
import { isPassRuntime, makeBatch, type ForwardRuntime, type LayerProgress, type TokenBatch } from '../runtime/runtime.js';
import type { Block } from './block-choice.js';
import { guardedWrite, type HiddenStatePairs, type PairDtype } from './hidden-state-pairs.js';

export interface BoundaryManifest {
  /** Identifies the model, samples, split and dtype; a different run collects again. */
  readonly key: string;
  readonly hiddenSize: number;
  readonly dtype: PairDtype;
  /** The boundaries stored, ascending (h[0] = the embeddings). */
  readonly boundaries: number[];
  readonly sequences: { readonly split: 'train' | 'val'; readonly byteOffset: number; readonly length: number }[];
  /** Bytes in all boundary files together. */
  readonly bytes: number;
}

export interface BoundaryCollectOptions {
  readonly dir: string;
  readonly key: string;
  readonly boundaries: readonly number[];
  readonly hiddenSize: number;
  readonly dtype: PairDtype;
  /** Indices of samples held out for validation. */
  readonly validation: ReadonlySet<number>;
  readonly batchSize: number;
  readonly onEstimate?: (bytes: number) => void;
  readonly onProgress?: (samplesDone: number, samples: number) => void;
  readonly onLayer?: (progress: LayerProgress) => void;
  /** Layer-streamed runtimes: checkpoint the pass here, to resume it per layer. */
  readonly passDir?: string;
  readonly signal?: AbortSignal;
}

const MANIFEST = 'manifest.json';
const fileOf = (boundary: number) => `h-${boundary}.bin`;

/** Bytes the boundaries of `tokens` calibration tokens take on disk (the dry run's estimate too). */
export function boundaryBytes(tokens: number, boundaries: number, hiddenSize: number, dtype: PairDtype): number {
  return tokens * boundaries * hiddenSize * BYTES_PER_ELEMENT[dtype];
}

export async function collectBoundaryStates(runtime: ForwardRuntime, samples: readonly (readonly number[])[], options: BoundaryCollectOptions): Promise<BoundaryManifest> {
  const existing = readBoundaryManifest(options.dir);
  if (existing?.key === options.key) return existing;
  const { dir, hiddenSize: d, dtype } = options;
  const boundaries = [...new Set(options.boundaries)].sort((a, b) => a - b);
  const element = BYTES_PER_ELEMENT[dtype];
  let offset = 0;
  const sequences = samples.map((sample, i) => {
    const sequence = { split: options.validation.has(i) ? ('val' as const) : ('train' as const), byteOffset: offset, length: sample.length };
    offset += sample.length * d * element;
    return sequence;
  });
  const bytes = offset * boundaries.length;
  options.onEstimate?.(bytes);
  mkdirSync(dir, { recursive: true });
  checkFreeSpace(dir, bytes, 'collecting the sweep hidden states');
  rmSync(join(dir, MANIFEST), { force: true });
  const fds = new Map(boundaries.map((s) => [s, guardedWrite(dir, () => openSync(join(dir, fileOf(s)), 'w'))]));
  // Rows of one batch's h[state] go straight to each sequence's place in that boundary's file.
  const write = (state: number, first: number, batch: TokenBatch, hidden: Float32Array) => {
    const fd = fds.get(state);
    if (fd === undefined) return;
    for (let row = 0; row < batch.batchSize; row++) {
      const { byteOffset, length } = sequences[first + row];
      const from = row * batch.seqLen * d;
      const encoded = encodeFromFloat32(hidden.subarray(from, from + length * d), dtype);
      guardedWrite(dir, () => writeFully(fd, encoded, byteOffset));
    }
  };
  const batches: TokenBatch[] = [];
  for (let first = 0; first < samples.length; first += options.batchSize) batches.push(makeBatch(samples.slice(first, first + options.batchSize)));
  const last = boundaries[boundaries.length - 1];
  try {
    if (isPassRuntime(runtime)) {
      let done = 0;
      await runtime.pass(
        batches,
        {
          lastState: last,
          signal: options.signal,
          keepStates: boundaries.filter((s) => s !== last),
          checkpoint: options.passDir ? { dir: options.passDir, key: `${options.key}:boundaries-pass` } : undefined,
        },
        {
          onLayer: options.onLayer,
          onHiddenState: (state, b, hidden) => {
            write(state, b * options.batchSize, batches[b], hidden.data);
            if (state === last) options.onProgress?.((done += batches[b].batchSize), samples.length);
          },
        },
      );
    } else {
      for (const [b, batch] of batches.entries()) {
        throwIfCancelled(options.signal, 'hidden-state collection');
        const { hiddenStates } = await runtime.forward(batch, { hiddenStates: true });
        for (const s of boundaries) write(s, b * options.batchSize, batch, hiddenStates![s].data);
        options.onProgress?.(Math.min((b + 1) * options.batchSize, samples.length), samples.length);
      }
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  const files = boundaries.map(fileOf);
  for (const name of readdirSync(dir)) if (!files.includes(name)) rmSync(join(dir, name), { force: true, recursive: true });
  const manifest: BoundaryManifest = { key: options.key, hiddenSize: d, dtype, boundaries, sequences, bytes };
  guardedWrite(dir, () => {
    writeFileSync(join(dir, `${MANIFEST}.tmp`), JSON.stringify(manifest));
    renameSync(join(dir, `${MANIFEST}.tmp`), join(dir, MANIFEST));
  });
  return manifest;
}

function readBoundaryManifest(dir: string): BoundaryManifest | null {
  if (!existsSync(join(dir, MANIFEST))) return null;
  try {
    return JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8'));
  } catch {
    return null; // unreadable: collect again
  }
}

/** The (h[s], h[s+n]) pairs of one block, read from the stored boundaries. */
export class BoundaryPairs implements HiddenStatePairs {
  private readonly inputPath: string;
  private readonly targetPath: string;
  private readonly input: number;
  private readonly target: number;

  constructor(
    private readonly dir: string,
    private readonly manifest: BoundaryManifest,
    block: Block,
  ) {
    const { start, size } = block;
    for (const s of [start, start + size]) {
      if (!manifest.boundaries.includes(s)) throw new Error(`h[${s}] was not collected (boundaries ${manifest.boundaries.join(', ')})`);
    }
    this.inputPath = join(dir, fileOf(start));
    this.targetPath = join(dir, fileOf(start + size));
    this.input = openSync(this.inputPath, 'r');
    this.target = openSync(this.targetPath, 'r');
  }

  get hiddenSize(): number {
    return this.manifest.hiddenSize;
  }

  read(index: number): { inputs: Float32Array; targets: Float32Array; length: number } {
    const { byteOffset, length } = this.manifest.sequences[index];
    const bytes = length * this.manifest.hiddenSize * BYTES_PER_ELEMENT[this.manifest.dtype];
    return { inputs: this.readRows(this.input, this.inputPath, byteOffset, bytes), targets: this.readRows(this.target, this.targetPath, byteOffset, bytes), length };
  }

  indices(split: 'train' | 'val'): number[] {
    const result: number[] = [];
    this.manifest.sequences.forEach((s, i) => s.split === split && result.push(i));
    return result;
  }

  close(): void {
    closeSync(this.input);
    closeSync(this.target);
  }

  private readRows(fd: number, path: string, byteOffset: number, byteLength: number): Float32Array {
    const bytes = readFully(fd, new Uint8Array(byteLength), byteOffset, path, `hidden states end before byte ${byteOffset + byteLength}`);
    return decodeToFloat32(bytes, this.manifest.dtype);
  }
}
