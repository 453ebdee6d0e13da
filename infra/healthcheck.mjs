#!/usr/bin/env node
// The images' Docker HEALTHCHECK (docker run, docker compose). Kubernetes ignores HEALTHCHECK and uses
// the probes in k8s/ instead. Plain Node, no dependencies, so it runs in every image as it is.
//
//   node infra/healthcheck.mjs http     the gateway answers GET http://127.0.0.1:$PORT/healthz with 2xx
//   node infra/healthcheck.mjs worker   a streamline-worker process is running (not a zombie)
//
// A worker has no HTTP port: whether it makes progress is what its lease and heartbeats tell the
// gateway, which requeues the plan of a worker that stopped heart-beating.
import { readdirSync, readFileSync } from 'node:fs';

const TIMEOUT_MS = 4000;

async function checkHttp() {
  const port = process.env.PORT || '4000';
  const url = `http://127.0.0.1:${port}/healthz`;
  let response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    const cause = error?.cause?.code ?? error?.cause?.message ?? error?.message;
    throw new Error(`${url}: ${cause}`);
  }
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return `${url} answered ${response.status}`;
}

function checkWorker() {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline;
    let stat;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // the process ended while we looked
    }
    if (!cmdline.some((arg) => arg.endsWith('streamline-worker') || arg.endsWith('streamline-worker.js'))) continue;
    // /proc/PID/stat: "pid (comm) state …"; comm may contain spaces and parentheses.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state !== 'Z' && state !== 'X') return `streamline-worker is running (pid ${entry}, state ${state})`;
  }
  throw new Error('no streamline-worker process is running');
}

const mode = process.argv[2];
try {
  if (mode === 'http') console.log(await checkHttp());
  else if (mode === 'worker') console.log(checkWorker());
  else throw new Error(`unknown mode ${JSON.stringify(mode)}; accepted: http, worker`);
} catch (error) {
  console.error(`unhealthy: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
