/**
 * Runs in a worker thread (entered through inspect-thread.js): inspects the local model at
 * `workerData.path` with the engine and posts what it found, or the error it met, as plain data. The
 * architecture family (functions) stays behind: the gateway looks it up again by model type.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EngineError, inspectModel } from '../engine.js';
import type { ThreadAnswer } from './model-inspection.js';

function answer(): ThreadAnswer {
  try {
    const { family, ...info } = inspectModel((workerData as { path: string }).path);
    return { ok: true, info: { ...info, modelType: family.modelType } };
  } catch (error) {
    if (error instanceof EngineError) return { ok: false, engineCode: error.code, message: error.message };
    const { code, message } = error as NodeJS.ErrnoException;
    return { ok: false, errnoCode: typeof code === 'string' ? code : undefined, message: String(message) };
  }
}

parentPort!.postMessage(answer());
