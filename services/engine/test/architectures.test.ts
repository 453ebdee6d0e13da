/**
 * Every supported family, in every storage dtype, sharded and not: both runtimes agree with an
 * independent naive forward pass (and so with each other) on a right-padded batch.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { StorageDtype } from '../src/formats/dtype.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { OnnxForward } from '../src/runtime/onnx/onnx-forward.js';
import { makeBatch, type RuntimeName } from '../src/runtime/runtime.js';
import { maxDifference } from './fixtures/compare.js';
import { referenceForward } from './fixtures/reference-forward.js';
import { TINY_CONFIGS, writeTinyModel } from './fixtures/tiny-models.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const SEQUENCES = [
  [1, 5, 9, 33, 2, 17, 60, 8, 41],
  [1, 12, 7, 7, 63, 30],
];
const CASES: { dtype: StorageDtype; maxShardBytes?: number }[] = [{ dtype: 'F32' }, { dtype: 'F16', maxShardBytes: 16 * 1024 }, { dtype: 'BF16' }];

describe.each(Object.keys(TINY_CONFIGS))('%s', (modelType) => {
  describe.each(CASES)('$dtype (shard limit $maxShardBytes)', ({ dtype, maxShardBytes }) => {
    let model: LoadedModel;
    const load = () => {
      if (!model) {
        const dir = writeTinyModel(modelType, { dtype, maxShardBytes });
        dirs.push(dir);
        model = loadModel(dir);
      }
      return model;
    };

    it('reads the config and dtype', () => {
      const { config } = load();
      expect(config.modelType).toBe(modelType);
      expect(config.dtype).toBe(dtype);
      expect(config.numLayers).toBe(3);
    });

    it.each<RuntimeName>(['onnx', 'tfjs'])('%s matches the reference forward pass', async (runtimeName) => {
      const m = load();
      const runtime = await createRuntime(m, { runtime: runtimeName });
      try {
        const result = await runtime.forward(makeBatch(SEQUENCES), { logits: true, hiddenStates: true, hiddenStateCosines: true });
        expect(result.hiddenStates).toHaveLength(m.config.numLayers + 1);
        SEQUENCES.forEach((ids, b) => {
          const reference = referenceForward(m, ids);
          reference.hidden.forEach((rows, layer) => expect(maxDifference(result.hiddenStates![layer], b, rows)).toBeLessThan(1e-4));
          expect(maxDifference(result.logits!, b, reference.logits)).toBeLessThan(1e-4);
          const states = m.config.numLayers + 1;
          ids.forEach((_, t) => {
            for (let i = 0; i < states; i++) {
              for (let j = 0; j < states; j++) {
                const expected = cosine(reference.hidden[i][t], reference.hidden[j][t]);
                expect(result.hiddenStateCosines!.data[((b * result.hiddenStateCosines!.shape[1] + t) * states + i) * states + j]).toBeCloseTo(expected, 5);
              }
            }
          });
        });
      } finally {
        await runtime.dispose();
      }
    });
  });
});

function cosine(a: Float64Array, b: Float64Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

describe('ONNX weights as external data', () => {
  it('gives the same logits as inline initializers', async () => {
    const dir = writeTinyModel('llama', { seed: 11 });
    dirs.push(dir);
    const model = loadModel(dir);
    const inline = new OnnxForward(model);
    const external = new OnnxForward(model, { externalDataBytes: 0 });
    try {
      const batch = makeBatch(SEQUENCES);
      const [a, b] = [await inline.forward(batch, { logits: true }), await external.forward(batch, { logits: true })];
      expect(Array.from(b.logits!.data)).toEqual(Array.from(a.logits!.data));
    } finally {
      await Promise.all([inline.dispose(), external.dispose()]);
    }
  });
});
