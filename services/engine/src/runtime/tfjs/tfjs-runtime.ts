/**
 * TensorFlow.js as a ForwardRuntime. The wasm backend runs one thread per process in Node, so with
 * `workers` > 1 each batch is split along its batch dimension across that many worker threads, each with
 * its own backend and its own copy of the weights.
 */
import { Worker } from 'node:worker_threads';
import type { HostTensor } from '../../formats/host-tensor.js';
import type { LoadedModel } from '../../models/model.js';
import type { ForwardRequest, ForwardResult, ForwardRuntime, TokenBatch } from '../runtime.js';
import { selectTfjsBackend } from './backend.js';
import { TfjsForward } from './tfjs-forward.js';
import type { WorkerMessage, WorkerReply } from './tfjs-worker.js';

export async function createTfjsRuntime(model: LoadedModel, workers: number): Promise<ForwardRuntime> {
  const backend = await selectTfjsBackend();
  if (workers === 1 || backend === 'tensorflow') return TfjsForward.create(model); // native TF threads itself
  return TfjsWorkerPool.start(model, workers, backend);
}

class TfjsWorkerPool implements ForwardRuntime {
  readonly name = 'tfjs' as const;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: ForwardResult) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly workers: Worker[],
    readonly description: string,
  ) {
    for (const worker of workers) {
      worker.on('message', (reply: WorkerReply) => {
        const waiter = this.pending.get(reply.id);
        if (!waiter) return;
        this.pending.delete(reply.id);
        if ('error' in reply) waiter.reject(new Error(reply.error));
        else waiter.resolve(reply.result);
      });
      worker.on('error', (error) => this.failAll(error));
    }
  }

  static async start(model: LoadedModel, count: number, backend: string): Promise<TfjsWorkerPool> {
    const source = new URL(import.meta.url).pathname.endsWith('.ts') ? 'tfjs-worker-ts.mjs' : 'tfjs-worker.js';
    const { hfConfig, config, weights } = model;
    const workers = Array.from(
      { length: count },
      () =>
        new Worker(new URL(`./${source}`, import.meta.url), {
          workerData: { hfConfig, modelType: config.modelType, dtype: config.dtype, weights, backend },
        }),
    );
    const pool = new TfjsWorkerPool(workers, `tfjs ${backend} ×${count} worker threads`);
    await Promise.all(workers.map((_, i) => pool.call(i, { type: 'ready' })));
    return pool;
  }

  async forward(batch: TokenBatch, request: ForwardRequest): Promise<ForwardResult> {
    // Contiguous slices of the batch, at most one per worker.
    const per = Math.ceil(batch.batchSize / this.workers.length);
    const slices: TokenBatch[] = [];
    for (let start = 0; start < batch.batchSize; start += per) {
      const size = Math.min(per, batch.batchSize - start);
      const from = start * batch.seqLen;
      const to = (start + size) * batch.seqLen;
      slices.push({ batchSize: size, seqLen: batch.seqLen, inputIds: batch.inputIds.slice(from, to), attentionMask: batch.attentionMask.slice(from, to) });
    }
    const parts = await Promise.all(slices.map((slice, i) => this.call(i, { type: 'forward', batch: slice, request })));
    return {
      logits: request.logits ? concatBatch(parts.map((p) => p.logits!)) : undefined,
      hiddenStates: request.hiddenStates ? parts[0].hiddenStates!.map((_, i) => concatBatch(parts.map((p) => p.hiddenStates![i]))) : undefined,
      hiddenStateCosines: request.hiddenStateCosines ? concatBatch(parts.map((p) => p.hiddenStateCosines!)) : undefined,
    };
  }

  private call(worker: number, message: WorkerMessage): Promise<ForwardResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[worker].postMessage({ ...message, id });
    });
  }

  private failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

function concatBatch(parts: HostTensor[]): HostTensor {
  if (parts.length === 1) return parts[0];
  const total = parts.reduce((sum, p) => sum + p.data.length, 0);
  const data = new Float32Array(total);
  let offset = 0;
  for (const part of parts) {
    data.set(part.data, offset);
    offset += part.data.length;
  }
  const batch = parts.reduce((sum, p) => sum + p.shape[0], 0);
  return { shape: [batch, ...parts[0].shape.slice(1)], data };
}
