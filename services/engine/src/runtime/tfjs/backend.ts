/**
 * TensorFlow.js backend selection: `tensorflow` (tfjs-node-gpu or tfjs-node, native libtensorflow — only
 * installable where the install can download it, i.e. the engine images), else `wasm` (SIMD, one thread
 * per process in Node), else the pure-JS `cpu` backend. STREAMLINE_BACKEND=tensorflow|wasm|cpu overrides.
 */
import * as tf from '@tensorflow/tfjs-core';
import { EngineError } from '../../errors.js';

export type TfjsBackendName = 'tensorflow' | 'wasm' | 'cpu';
const ORDER: TfjsBackendName[] = ['tensorflow', 'wasm', 'cpu'];

let selected: Promise<TfjsBackendName> | null = null;

/** Registers and activates the best available backend once per process (or thread). */
export function selectTfjsBackend(requested = process.env.STREAMLINE_BACKEND): Promise<TfjsBackendName> {
  selected ??= (async () => {
    if (requested && !ORDER.includes(requested as TfjsBackendName)) {
      throw new EngineError('BAD_INPUT', `STREAMLINE_BACKEND=${requested} is not a backend; accepted: ${ORDER.join(', ')}`);
    }
    const candidates = requested ? [requested as TfjsBackendName] : ORDER;
    const failures: string[] = [];
    for (const name of candidates) {
      try {
        await registerBackend(name);
        if (await tf.setBackend(name)) {
          await tf.ready();
          return name;
        }
        failures.push(`${name}: setBackend failed`);
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    throw new EngineError('BAD_INPUT', `no TensorFlow.js backend could start (${failures.join('; ')})`);
  })();
  return selected;
}

async function registerBackend(name: TfjsBackendName): Promise<void> {
  if (name === 'tensorflow') {
    // Not dependencies of this package: the GPU image installs tfjs-node-gpu, a CPU image may add tfjs-node.
    const packages = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];
    for (const pkg of packages) {
      try {
        await import(pkg);
        return;
      } catch {
        // try the next one
      }
    }
    throw new Error(`neither ${packages.join(' nor ')} is installed`);
  }
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  else await import('@tensorflow/tfjs-backend-cpu');
}
