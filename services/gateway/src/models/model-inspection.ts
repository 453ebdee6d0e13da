/**
 * Model inspection off the event loop. Reading a local model's config.json and safetensors headers is
 * synchronous engine code over files a tenant chose; in the gateway's own thread a hostile file would
 * stall every request. Each inspection runs in a worker thread of its own, with a deadline
 * (STREAMLINE_INSPECT_TIMEOUT_MS, default 10 s) after which the thread is terminated and the caller
 * told so, a heap limit as a backstop, and at most two at a time; the event loop only waits for a message.
 * The same threads count the evaluation windows of a plan's local text files at creation (tokenizing
 * them is as synchronous as reading headers): `countWindowsInThreads`.
 */
import { Worker } from 'node:worker_threads';
import { EngineError, familyFor, type EngineErrorCode, type ModelInfo } from '../engine.js';
import type { WindowCount } from '../engine.js';

export const DEFAULT_INSPECT_TIMEOUT_MS = 10_000;
/**
 * How long a thread may take to load its code before the deadline above starts. Loading is the same
 * for every input (under tsx it compiles the engine's TypeScript, seconds on a busy machine), so it
 * must not count against the tenant's deadline; it is bounded apart so that a thread that never
 * starts still ends.
 */
const THREAD_START_TIMEOUT_MS = 120_000;
/**
 * Beside this file: in src/, inspect-thread.js is a bootstrap that registers tsx and loads
 * inspect-thread.ts; in a build (dist/), inspect-thread.js is inspect-thread.ts compiled, plain JS.
 * The thread inherits this process's node flags (--conditions=streamline-dist in a build).
 */
const THREAD_ENTRY = new URL('./inspect-thread.js', import.meta.url);

/**
 * Tenant files a thread reads, and the directories they must stay under: the thread reads inside the
 * engine's withConfinedReads, so a file swapped for a symlink after the gateway's check (by name) is
 * refused when it is opened (by descriptor).
 */
export interface ConfinedReads {
  readonly inputs: readonly string[];
  readonly roots: readonly string[];
  readonly denied: readonly string[];
}

/** What a thread is asked: inspect a model (`{ path }`, the original form), count a text's windows, or read a task file through. */
export type ThreadRequest = ({ op?: 'inspect'; path: string } | ({ op: 'countWindows' } & WindowCountRequest) | ({ op: 'checkTask' } & TaskCheckRequest)) & { readonly confined?: ConfinedReads };

/** A local multiple-choice task file, read as the engine's evaluation reads it, up to `limit` items. */
export interface TaskCheckRequest {
  readonly file: string;
  readonly limit: number;
  readonly confined?: ConfinedReads;
}

/** Resolves with the number of items read; rejects with the engine's error for a malformed file. */
export type CheckTask = (request: TaskCheckRequest) => Promise<number>;

/**
 * Evaluation windows of one local text file at its seq-len, read as the engine's evaluation reads it:
 * after the calibration windows when the file is the calibration file (same sha256), else from its first.
 */
export interface WindowCountRequest {
  readonly file: string;
  /** A llama2.c .bin or tokenizer.json; null: none known (a .jsonl of input_ids needs none). */
  readonly tokenizer: string | null;
  readonly seqLen: number;
  /** Windows wanted: the count stops there. */
  readonly wanted: number;
  readonly vocabSize: number;
  /** The plan's local calibration file, samples and seq-len; null when it is not local. */
  readonly calibration: { readonly path: string; readonly windows: number; readonly seqLen: number } | null;
  readonly confined?: ConfinedReads;
}

export type CountWindows = (request: WindowCountRequest) => Promise<WindowCount>;

/** What a thread posts first, once its code is loaded: the work's deadline starts then. */
export const THREAD_READY = 'ready';

/** What a thread posts back: ModelInfo without its family (functions do not cross threads), a window count, or the error. */
export type ThreadAnswer =
  | { ok: true; info: Omit<ModelInfo, 'family'> & { modelType: string } }
  | { ok: true; count: WindowCount }
  | { ok: true; items: number }
  | { ok: false; engineCode?: EngineErrorCode; errnoCode?: string; message: string };

export interface ThreadInspectionOptions {
  /** Deadline per inspection, from the moment the thread has loaded its code; default 10 s. */
  readonly timeoutMs?: number;
  /**
   * Heap limit of an inspection thread; default 1536 MB. A backstop only: the engine's own limits keep
   * an inspection's memory well under it (at most 100 MB of safetensors headers for all shards, about
   * 0.8 GB parsed; JSON files of at most 16 MB; a real model needs a few MB). Node terminates a thread
   * that reaches its limit only on a best-effort basis — some allocations abort the whole process
   * instead (nodejs/node#47224) — so the limit must never be what stops a hostile model.
   */
  readonly maxHeapMb?: number;
  /** Inspections running at once; more wait for a free slot. Default 2. */
  readonly concurrency?: number;
}

/** An InspectModel that inspects in worker threads (the gateway's default; tests may inject an in-process one). */
export function inspectInThreads(options: ThreadInspectionOptions = {}): (path: string, confined?: ConfinedReads) => Promise<ModelInfo> {
  const inspect = inThreads(options, 'inspecting the model', (request: { path: string; confined?: ConfinedReads }) => request, (answer) => ('info' in answer ? withFamily(answer.info) : undefined));
  return (path, confined) => inspect({ path, ...(confined && { confined }) });
}

/**
 * A CountWindows that counts in worker threads with a deadline (default 10 s) and a heap limit (default
 * 1536 MB). The caller bounds the file's size first (see plan.windows.ts); a count past the deadline or
 * the heap limit is a WindowCountStopped error, which the caller may treat as "not checked here".
 */
export function countWindowsInThreads(options: ThreadInspectionOptions = {}): CountWindows {
  return inThreads(options, 'counting the evaluation windows', (request: WindowCountRequest) => ({ op: 'countWindows', ...request }), (answer) => ('count' in answer ? answer.count : undefined));
}

/**
 * A CheckTask that reads task files in worker threads, with the same deadline and heap limit as the
 * others; a read past them is a ThreadStopped error (the caller may treat it as "not checked here").
 */
export function checkTasksInThreads(options: ThreadInspectionOptions = {}): CheckTask {
  return inThreads(options, 'reading the task file', (request: TaskCheckRequest) => ({ op: 'checkTask', ...request }), (answer) => ('items' in answer ? answer.items : undefined));
}

/** One kind of thread work: at most `concurrency` at a time, each with the deadline and heap limit; `pick` takes its answer. */
function inThreads<Request, Answer>(
  options: ThreadInspectionOptions,
  what: string,
  ask: (request: Request) => ThreadRequest,
  pick: (answer: Extract<ThreadAnswer, { ok: true }>) => Answer | undefined,
): (request: Request) => Promise<Answer> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_INSPECT_TIMEOUT_MS;
  const slots = new Slots(options.concurrency ?? 2);
  return async (request) => {
    const release = await slots.acquire();
    try {
      const answer = pick(await runInThread(ask(request), timeoutMs, options.maxHeapMb ?? 1536, what));
      if (answer === undefined) throw new Error(`the thread ${what} answered something else`);
      return answer;
    } finally {
      release();
    }
  };
}

/** A thread's work stopped by its deadline or its heap limit (not an answer about the input). */
export class ThreadStopped extends EngineError {}

function runInThread(request: ThreadRequest, timeoutMs: number, maxHeapMb: number, what: string): Promise<Extract<ThreadAnswer, { ok: true }>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(THREAD_ENTRY, { workerData: request, resourceLimits: { maxOldGenerationSizeMb: maxHeapMb } });
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
      void worker.terminate();
    };
    const stopAfter = (ms: number, message: string) =>
      setTimeout(() => settle(() => reject(new ThreadStopped('BAD_INPUT', message))), ms);
    let timer = stopAfter(THREAD_START_TIMEOUT_MS, `the thread ${what} did not start within ${THREAD_START_TIMEOUT_MS} ms and was stopped`);
    worker.on('message', (message: ThreadAnswer | typeof THREAD_READY) => {
      if (message === THREAD_READY) {
        clearTimeout(timer);
        timer = stopAfter(timeoutMs, `${what} took longer than ${timeoutMs} ms (STREAMLINE_INSPECT_TIMEOUT_MS) and was stopped`);
        return;
      }
      settle(() => (message.ok ? resolve(message) : reject(threadError(message))));
    });
    worker.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') settle(() => reject(new ThreadStopped('BAD_INPUT', `${what} needed more than ${maxHeapMb} MB of memory and was stopped`)));
      else settle(() => reject(error));
    });
    worker.once('exit', (code) => settle(() => reject(new Error(`the thread ${what} exited (${code}) without an answer`))));
  });
}

function withFamily({ modelType, ...info }: Extract<ThreadAnswer, { info: unknown }>['info']): ModelInfo {
  return { ...info, family: familyFor(modelType) };
}

function threadError(answer: Extract<ThreadAnswer, { ok: false }>): Error {
  if (answer.engineCode) return new EngineError(answer.engineCode, answer.message);
  return Object.assign(new Error(answer.message), answer.errnoCode ? { code: answer.errnoCode } : {});
}

/** A counting semaphore: `acquire` resolves with the function that gives the slot back. */
class Slots {
  private readonly waiting: (() => void)[] = [];
  private free: number;

  constructor(count: number) {
    this.free = Math.max(1, count);
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
