/**
 * Engine worker processes on this machine, started and stopped by the gateway (STREAMLINE_WORKERS):
 * they speak the worker API over loopback like any other worker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface LocalWorker {
  readonly id: string;
  readonly process: ChildProcess;
}

/** Engine worker processes on this machine, speaking the worker API over loopback like any other worker. */
export function startLocalWorkers(
  count: number,
  settings: { url: string; workerToken: string; dataDir: string; log: (message: string) => void; storage: NodeJS.ProcessEnv },
): LocalWorker[] {
  const entry = workerEntry();
  return Array.from({ length: count }, (_, i) => {
    const id = `local-${process.pid}-${i + 1}`;
    // workers get the worker token, never the first admin token
    const { STREAMLINE_ADMIN_TOKEN: _adminToken, STREAMLINE_STORAGE: _storage, ...inherited } = process.env;
    const child = spawn(process.execPath, entry, {
      env: {
        ...inherited,
        ...settings.storage,
        STREAMLINE_GATEWAY_URL: settings.url,
        STREAMLINE_WORKER_TOKEN: settings.workerToken,
        STREAMLINE_DATA_DIR: settings.dataDir,
        STREAMLINE_WORKER_ID: id,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('exit', (code, signal) => settings.log(`local worker ${i + 1} exited (${signal ?? code})`));
    return { id, process: child };
  });
}

/**
 * The node arguments that start an engine worker the way this gateway runs. From TypeScript (tsx): the
 * engine's bin, which registers tsx itself. Built (this file is dist/workers/local-workers.js): the
 * engine's build, with this process's node flags (--conditions=streamline-dist among them), no tsx.
 */
function workerEntry(): string[] {
  const engineRoot = dirname(createRequire(import.meta.url).resolve('@streamline/engine/package.json'));
  if (import.meta.url.endsWith('.ts')) return [join(engineRoot, 'bin', 'streamline-worker.js')];
  return [...process.execArgv, join(engineRoot, 'dist', 'streamline-worker.js')];
}

/** The storage settings local workers share with this gateway: STREAMLINE_STORAGE and the S3/Hugging Face variables. */
export function workerStorageEnv(storage: string | undefined, env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const shared = Object.fromEntries(Object.entries(env ?? {}).filter(([name]) => /^(AWS_|HF_)/.test(name) || name === 'STREAMLINE_S3_FORCE_PATH_STYLE'));
  return storage ? { ...shared, STREAMLINE_STORAGE: storage } : shared;
}

/** SIGTERM, then SIGKILL if the process (a worker checkpointing, a gateway draining) has not exited within the grace period. */
export async function stopGracefully(child: ChildProcess, graceMs = 60_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
