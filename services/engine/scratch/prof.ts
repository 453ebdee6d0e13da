import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHfFolder } from '../src/formats/hf-folder.js';
import { loadModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { makeBatch } from '../src/runtime/runtime.js';
import { familyFor } from '../src/models/families/index.js';
import { expectedWeightShapes } from '../src/models/weight-shapes.js';
import { ImportanceAccumulator } from '../src/importance.js';
const CONFIG = { model_type: 'llama', hidden_size: 512, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 4, intermediate_size: 1376, vocab_size: 32000, max_position_embeddings: 2048, rms_norm_eps: 1e-5 };
const dir = mkdtempSync(join(tmpdir(), 'prof-'));
const family = familyFor('llama');
const weights = new Map();
for (const [name, shape] of expectedWeightShapes(family, family.parseConfig(CONFIG, 'F32'))) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => (Math.random() - 0.5) * 0.06);
  weights.set(name, { shape, data });
}
writeHfFolder(dir, { config: CONFIG, weights, dtype: 'F32' });
const model = loadModel(dir);
const rt = await createRuntime(model, { runtime: (process.env.R as any) ?? 'onnx', workers: process.env.W ? Number(process.env.W) : undefined });
for (const B of (process.env.BS ?? '8,32').split(',').map(Number)) {
  const ids = Array.from({ length: B }, () => Array.from({ length: 128 }, () => Math.floor(Math.random() * 32000)));
  const batch = makeBatch(ids);
  let r = await rt.forward(batch, { hiddenStates: true });
  const N = Number(process.env.N ?? 3);
  let t = performance.now();
  for (let i = 0; i < N; i++) r = await rt.forward(batch, { hiddenStates: true });
  const dt = (performance.now() - t) / N / 1000;
  t = performance.now();
  const acc = new ImportanceAccumulator(8); acc.add(r.hiddenStates!, batch.attentionMask);
  const da = (performance.now() - t) / 1000;
  console.log(`B=${B}: forward ${dt.toFixed(3)} s = ${(B * 128 / dt).toFixed(0)} tok/s; accumulate ${da.toFixed(3)} s = ${(B * 128 / da).toFixed(0)} tok/s`);
}
await rt.dispose();
