/**
 * streamline-worker: an engine worker process. Settings from the environment:
 *   STREAMLINE_GATEWAY_URL   the gateway's GraphQL endpoint (default http://127.0.0.1:4000/graphql)
 *   STREAMLINE_WORKER_TOKEN  the worker token the gateway issued (required)
 *   STREAMLINE_DATA_DIR      work directories and outputs (default ./.streamline)
 *   STREAMLINE_WORKER_ID     default: hostname-pid
 * SIGTERM or SIGINT: the running plan checkpoints, its lease is released, and the process exits.
 */
import { hostname } from 'node:os';
import { GraphqlWorkerTransport } from './graphql-transport.js';
import { runWorker } from './worker.js';

export async function main(): Promise<number> {
  const token = process.env.STREAMLINE_WORKER_TOKEN;
  if (!token) {
    process.stderr.write('streamline-worker: STREAMLINE_WORKER_TOKEN is required (the gateway prints or stores the worker token)\n');
    return 1;
  }
  const workerId = process.env.STREAMLINE_WORKER_ID ?? `${hostname()}-${process.pid}`;
  const stop = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
  const log = (line: string) => process.stderr.write(`[worker ${workerId}] ${line}\n`);
  log('started');
  await runWorker({
    transport: new GraphqlWorkerTransport({ url: process.env.STREAMLINE_GATEWAY_URL ?? 'http://127.0.0.1:4000/graphql', token, workerId }),
    dataDir: process.env.STREAMLINE_DATA_DIR ?? './.streamline',
    signal: stop.signal,
    log,
  });
  log('stopped');
  return 0;
}
