/**
 * TensorFlow.js with gradients: tfjs-core alone registers none; the @tensorflow/tfjs bundle registers
 * them all. Training code awaits this before computing any gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectTfjsBackend, type TfjsBackendName } from './backend.js';

let ready: Promise<TfjsBackendName> | null = null;

export function tfjsForTraining(): Promise<TfjsBackendName> {
  ready ??= (async () => {
    await import('@tensorflow/tfjs');
    const backend = await selectTfjsBackend();
    await tf.setBackend(backend); // importing the bundle may have switched to one of its own backends
    return backend;
  })();
  return ready;
}
