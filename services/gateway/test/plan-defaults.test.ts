/** `planDefaults` serves the engine's contract (PLAN_DEFAULTS) as it is, to API tokens only. */
import { describe, expect, it } from 'vitest';
import { PLAN_DEFAULTS } from '../src/engine.js';
import { data, failure, useGateways } from './fixtures/gateway.js';

const QUERY = `{ planDefaults {
  calibration { samples seqLen }
  evaluationText { samples seqLen }
  training { epochs minSteps batchSize learningRate minLearningRate weightDecay warmupRatio gradientAccumulation maxGradNorm validationFraction seed checkpointEvery }
} }`;

describe('planDefaults', () => {
  const gateways = useGateways();

  it("answers the engine's defaults, and needs an API token", async () => {
    const gateway = await gateways.start();
    expect((await data(gateway.url, QUERY)).planDefaults).toEqual(PLAN_DEFAULTS);
    expect((await failure(gateway.url, QUERY, {}, { token: null })).code).toBe('UNAUTHENTICATED');
  });
});
