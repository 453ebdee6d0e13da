/**
 * Runs in a worker thread (entered through inspect-thread.js) and posts its answer, or the error it met,
 * as plain data:
 * - `{ path }`: inspects the local model there with the engine. The architecture family (functions)
 *   stays behind: the gateway looks it up again by model type.
 * - `{ op: 'countWindows', … }`: counts a local text's evaluation windows as the engine's evaluation
 *   cuts them.
 * - `{ op: 'checkTask', … }`: reads a local multiple-choice task file through, as the engine's evaluation
 *   reads it, and answers its item count.
 * All use the engine's light entry (through ../engine.ts): no tensor library is loaded in the gateway.
 * With `confined`, the tenant's files are read inside the engine's withConfinedReads: each is checked
 * again by the real path of its open descriptor.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkMultipleChoiceTask, countHeldOutWindows, EngineError, inspectModel, loadTokenizer, realPathTest, withConfinedReads } from '../engine.js';
import { THREAD_READY, type ThreadAnswer, type ThreadRequest } from './model-inspection.js';

async function answer(request: ThreadRequest): Promise<ThreadAnswer> {
  try {
    if (request.op === 'countWindows') {
      const tokenizer = request.tokenizer === null ? null : await loadTokenizer(request.tokenizer);
      const count = await countHeldOutWindows(request.file, tokenizer, { seqLen: request.seqLen, wanted: request.wanted, vocabSize: request.vocabSize, calibration: request.calibration });
      return { ok: true, count };
    }
    if (request.op === 'checkTask') return { ok: true, items: await checkMultipleChoiceTask(request.file, request.limit) };
    const { family, ...info } = inspectModel(request.path);
    return { ok: true, info: { ...info, modelType: family.modelType } };
  } catch (error) {
    if (error instanceof EngineError) return { ok: false, engineCode: error.code, message: error.message };
    const { code, message } = error as NodeJS.ErrnoException;
    return { ok: false, errnoCode: typeof code === 'string' ? code : undefined, message: String(message) };
  }
}

function confinedAnswer(request: ThreadRequest): Promise<ThreadAnswer> {
  const { confined } = request;
  if (!confined) return answer(request);
  const allowed = realPathTest({ roots: confined.roots, denied: confined.denied });
  const refusal = (path: string) => new EngineError('BAD_INPUT', `${path} is not under the directories this gateway reads file:// sources from (STREAMLINE_FILE_ROOTS)`);
  return withConfinedReads({ inputs: confined.inputs, allowed, refusal }, () => answer(request));
}

parentPort!.postMessage(THREAD_READY);
parentPort!.postMessage(await confinedAnswer(workerData as ThreadRequest));
