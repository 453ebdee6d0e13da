/**
 * streamline-worker: an engine worker process. Settings from the environment:
 *   STREAMLINE_GATEWAY_URL   the gateway's GraphQL endpoint (default http://127.0.0.1:4000/graphql)
 *   STREAMLINE_WORKER_TOKEN  a worker token the gateway accepts (its STREAMLINE_WORKER_TOKEN or one of STREAMLINE_WORKER_TOKENS; required)
 *   STREAMLINE_DATA_DIR      work directories, the download cache, and (by default) outputs (default ./.streamline)
 *   STREAMLINE_STORAGE       s3://bucket/prefix keeps checkpoints and outputs in S3 (default: the data directory)
 *   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, STREAMLINE_S3_FORCE_PATH_STYLE
 *                            S3 access, for STREAMLINE_STORAGE and s3:// inputs; HF_TOKEN, HF_ENDPOINT for hf://
 *   STREAMLINE_WORKER_ID     default: hostname-pid
 * SIGTERM or SIGINT: the running plan checkpoints, its lease is released, and the process exits.
 * A claim written in another plan contract version than this worker's is released unrun, and the process
 * exits with status 3 and a message saying which side to upgrade (see PlanContractMismatch).
 */
import { hostname } from 'node:os';
import { EngineError } from '../errors.js';
import { openObjectStore, type ObjectStore } from '../storage/object-store.js';
import { GraphqlWorkerTransport } from './graphql-transport.js';
import { PlanContractMismatch, runWorker } from './worker.js';

/** The exit status of a worker that met a plan in another plan contract version. */
export const EXIT_CONTRACT_MISMATCH = 3;

export async function main(): Promise<number> {
  const token = process.env.STREAMLINE_WORKER_TOKEN;
  if (!token) {
    process.stderr.write(
      'streamline-worker: STREAMLINE_WORKER_TOKEN is required. It is a secret you choose and give to both sides: start the gateway with ' +
        'STREAMLINE_WORKER_TOKEN=<secret> (or add it to STREAMLINE_WORKER_TOKENS), and this worker with the same value. A gateway started ' +
        'without one makes a random token for its own local workers and never shows it (docs/troubleshooting.md, "Attach another worker").\n',
    );
    return 1;
  }
  const workerId = process.env.STREAMLINE_WORKER_ID ?? `${hostname()}-${process.pid}`;
  const stop = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
  const log = (line: string) => process.stderr.write(`[worker ${workerId}] ${line}\n`);
  const dataDir = process.env.STREAMLINE_DATA_DIR ?? './.streamline';
  let store: ObjectStore;
  try {
    // Settings and credentials from the environment only; the store's messages never contain them.
    store = await openObjectStore({ dataDir, env: process.env, log });
  } catch (error) {
    if (!(error instanceof EngineError)) throw error;
    process.stderr.write(`streamline-worker: STREAMLINE_STORAGE: ${error.message}\n`);
    return 1;
  }
  log(`started; checkpoints and outputs in ${store.uri}`);
  try {
    await runWorker({
      transport: new GraphqlWorkerTransport({ url: process.env.STREAMLINE_GATEWAY_URL ?? 'http://127.0.0.1:4000/graphql', token, workerId, stop: stop.signal }),
      dataDir,
      signal: stop.signal,
      log,
      store,
      storageEnv: process.env,
    });
  } catch (error) {
    if (!(error instanceof PlanContractMismatch)) throw error;
    store.destroy?.();
    process.stderr.write(`streamline-worker: ${error.message}\n`);
    return EXIT_CONTRACT_MISMATCH;
  }
  store.destroy?.();
  log('stopped');
  return 0;
}
