/** A worker thread running the TensorFlow.js forward pass on the slices of batches it is sent. */
import { parentPort, workerData } from 'node:worker_threads';
import type { StorageDtype } from '../../formats/dtype.js';
import type { HostTensor } from '../../formats/host-tensor.js';
import { familyFor } from '../../models/families/index.js';
import type { LoadedModel } from '../../models/model.js';
import type { ForwardRequest, ForwardResult, TokenBatch } from '../runtime.js';
import { selectTfjsBackend } from './backend.js';
import { TfjsForward } from './tfjs-forward.js';

export type WorkerMessage = { type: 'ready' } | { type: 'forward'; batch: TokenBatch; request: ForwardRequest };
export type WorkerRequest = { id: number } & WorkerMessage;
export type WorkerReply = { id: number } & ({ result: ForwardResult } | { error: string });

interface ModelData {
  hfConfig: Record<string, unknown>;
  modelType: string;
  dtype: StorageDtype;
  weights: Map<string, HostTensor>;
  backend: string;
}

if (parentPort) {
  const port = parentPort;
  const data = workerData as ModelData;
  const ready = (async () => {
    await selectTfjsBackend(data.backend);
    const family = familyFor(data.modelType);
    const config = family.parseConfig(data.hfConfig, data.dtype);
    const model = { family, config, weights: data.weights } as unknown as LoadedModel;
    return TfjsForward.create(model);
  })();
  port.on('message', async (message: WorkerRequest) => {
    try {
      const runtime = await ready;
      if (message.type === 'ready') {
        data.weights.clear(); // uploaded to the backend; drop this thread's host copy
        port.postMessage({ id: message.id, result: {} } satisfies WorkerReply);
        return;
      }
      const result = await runtime.forward(message.batch, message.request);
      const transfers = [result.logits, result.hiddenStateCosines, ...(result.hiddenStates ?? [])].filter((t) => t !== undefined).map((t) => t.data.buffer as ArrayBuffer);
      port.postMessage({ id: message.id, result } satisfies WorkerReply, transfers);
    } catch (error) {
      port.postMessage({ id: message.id, error: (error as Error).message } satisfies WorkerReply);
    }
  });
}
