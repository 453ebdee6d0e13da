// Register stories260K, profile its blocks, prune two layers with a LAYER replacement, and read the report.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StreamlineClient } from '@streamline/sdk';

// The shared model and data: ../shared beside the repository, unless STREAMLINE_SHARED names another folder.
// The gateway must allow them as sources (STREAMLINE_FILE_ROOTS, as in the README's first command).
const shared = process.env.STREAMLINE_SHARED ?? fileURLToPath(new URL('../../../shared/', import.meta.url));
const fileUri = (relative: string) => pathToFileURL(join(shared, relative)).href;
const client = new StreamlineClient({
  url: process.env.STREAMLINE_URL ?? 'http://localhost:4000/graphql',
  token: process.env.STREAMLINE_TOKEN, // sent as `Authorization: Bearer …` when set
});

const model = await client.registerModel({
  name: 'stories260K',
  source: fileUri('models/stories260K/stories260K.bin'),
  tokenizer: fileUri('models/stories260K/tok512.bin'),
});
console.log(`${model.name}: ${model.architecture}, ${model.numLayers} layers, ${model.numParameters} parameters`);

const calibration = { source: fileUri('data/text/tinystories_val_excerpt.txt'), samples: 8, seqLen: 64 };

// A dry run profiles every block size and stops: nothing is trained or written.
const profiles = await client.dryRun(model.id, calibration);
for (const profile of profiles.filter((p) => p.metric === 'COSINE')) {
  console.log(`block size ${profile.blockSize}: best start layer ${profile.best.startLayer} (cosine ${profile.best.score.toFixed(4)})`);
}

// The real plan: progress streams (and resumes by itself if the connection drops) until the plan ends.
const plan = await client.prune({ modelId: model.id, layersToPrune: 2, replacement: 'LAYER', calibration, training: { epochs: 2, batchSize: 4 } });
for await (const event of plan.progress()) {
  if (event.stage === 'TRAINING' && event.step === event.totalSteps) console.log(`trained: loss ${event.loss?.toFixed(4)}`);
}
const done = await plan.wait(); // rejects with PlanFailedError if the plan failed
console.log(`removed layers ${done.removedLayers.join(', ')}: ${done.originalParameters} → ${done.prunedParameters} parameters`);
console.log(`hidden-state cosine ${done.stability?.hiddenStateCosine?.toFixed(3)}, output ${done.outputUri}`);
await client.close();
