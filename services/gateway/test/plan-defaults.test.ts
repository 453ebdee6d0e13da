/**
 * What the New plan form reads before a plan exists: `planDefaults` serves the engine's contract
 * (PLAN_DEFAULTS) as it is, and `planEstimates` the engine's block arithmetic for each block size and
 * replacement kind; both to API tokens only, estimates for the tenant's own models only.
 */
import { describe, expect, it } from 'vitest';
import { PLAN_DEFAULTS } from '../src/engine.js';
import { data, failure, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI } from './fixtures/shared.js';
import { REGISTER } from './fixtures/workers.js';

const DEFAULTS = `{ planDefaults {
  calibration { samples seqLen }
  evaluationText { samples seqLen }
  training { epochs minSteps batchSize learningRate minLearningRate weightDecay warmupRatio gradientAccumulation maxGradNorm validationFraction seed checkpointEvery }
  healing { steps learningRate validationFraction patience }
} }`;
const ESTIMATES = `query ($modelId: ID!, $replacement: ReplacementKind) {
  planEstimates(modelId: $modelId, replacement: $replacement) { blockSize parametersBefore parametersAfter replacementParameters sparsity }
}`;

interface Estimate {
  blockSize: number;
  parametersBefore: number;
  parametersAfter: number;
  replacementParameters: number;
  sparsity: number;
}

describe('planDefaults', () => {
  const gateways = useGateways();

  it("answers the engine's defaults, and needs an API token", async () => {
    const gateway = await gateways.start();
    expect((await data(gateway.url, DEFAULTS)).planDefaults).toEqual(PLAN_DEFAULTS);
    expect((await failure(gateway.url, DEFAULTS, {}, { token: null })).code).toBe('UNAUTHENTICATED');
  });
});

describe.runIf(runWithShared)('planEstimates', () => {
  const gateways = useGateways();

  it('gives every block size of stories260K, net of the replacement, for its tenant only', async () => {
    const gateway = await gateways.start();
    const modelId = (await data(gateway.url, REGISTER, { input: { name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } })).registerModel.id;
    const estimates = async (replacement: string): Promise<Estimate[]> => (await data(gateway.url, ESTIMATES, { modelId, replacement })).planEstimates;
    const none = await estimates('NONE');
    const layer = await estimates('LAYER');
    expect(none.map((e) => e.blockSize)).toEqual([1, 2, 3, 4]);
    const perLayer = none[0].parametersBefore - none[0].parametersAfter;
    for (const e of none) {
      expect(e.parametersAfter).toBe(e.parametersBefore - e.blockSize * perLayer);
      expect(e.replacementParameters).toBe(0);
      expect(e.sparsity).toBeCloseTo(e.blockSize * perLayer / e.parametersBefore, 12);
    }
    // a LAYER replacement is one decoder layer: removing n layers with it removes n − 1 net
    expect(layer[0]).toMatchObject({ parametersAfter: layer[0].parametersBefore, replacementParameters: perLayer, sparsity: 0 });
    for (const e of layer.slice(1)) expect(e.parametersAfter).toBe(none[e.blockSize - 2].parametersAfter);
    // LINEAR: a d×d map and its bias (d = 64)
    expect((await estimates('LINEAR'))[0].replacementParameters).toBe(64 * 64 + 64);

    const other = await data(gateway.url, 'mutation { createTenant(name: "other") { id } }');
    const otherToken = (await data(gateway.url, 'mutation ($t: ID!) { createApiToken(tenantId: $t) { token } }', { t: other.createTenant.id })).createApiToken.token;
    // the other tenant learns nothing: the same answer as for an id that does not exist, the id aside
    const refused = await failure(gateway.url, ESTIMATES, { modelId }, { token: otherToken });
    const missing = await failure(gateway.url, ESTIMATES, { modelId: 'no-such-model' }, { token: otherToken });
    expect(refused.code).toBe('NOT_FOUND');
    expect(refused.message.replace(modelId, 'ID')).toBe(missing.message.replace('no-such-model', 'ID'));
  });
});
