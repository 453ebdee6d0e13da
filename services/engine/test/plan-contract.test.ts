/**
 * The plan contract's parsers: a spec, an assignment and a result that fit pass as they are; one that
 * does not is BAD_INPUT naming the field that is wrong. The wire form of a result admits null scores
 * (JSON's NaN), the checked form does not.
 */
import { describe, expect, it } from 'vitest';
import { parsePlanAssignment, parsePlanResult, parsePlanResultWire, parsePlanSpec, PLAN_SPEC_VERSION, type PlanResult } from '../src/contract/index.js';
import { EngineError } from '../src/errors.js';
import { testAssignment, testSpec } from './fixtures/plan-spec.js';

const spec = testSpec({
  model: '/models/tiny',
  calibration: { source: 'file:///data/calibration.jsonl', samples: 8, seqLen: 32 },
  training: { batchSize: 2, minSteps: 10 },
  evaluation: { perplexity: [{ source: 's3://bucket/held-out.txt', samples: 4, seqLen: 64 }], tasks: ['file:///data/copa.jsonl'], limit: 20 },
});

/** The BAD_INPUT error `parse` throws. */
function refusal(parse: () => unknown): EngineError {
  let error: unknown = null;
  try {
    parse();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(EngineError);
  expect((error as EngineError).code).toBe('BAD_INPUT');
  return error as EngineError;
}

describe('parsePlanSpec', () => {
  it('accepts a spec as the test fixture (and the gateway) writes it', () => {
    expect(parsePlanSpec(spec)).toEqual(spec);
    expect(parsePlanSpec(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
  });

  it('refuses an unknown field, naming where it is', () => {
    expect(refusal(() => parsePlanSpec({ ...spec, training: { ...spec.training, learningRateSchedule: 'cosine' } })).message).toMatch(
      /^the plan spec does not fit the plan contract: training: .*learningRateSchedule/,
    );
    expect(refusal(() => parsePlanSpec({ ...spec, extra: 1 })).message).toMatch(/\(top level\): .*extra/);
  });

  it('refuses another spec version', () => {
    expect(refusal(() => parsePlanSpec({ ...spec, version: PLAN_SPEC_VERSION - 1 })).message).toMatch(/: version: /);
  });

  it('refuses a replacement kind it does not know', () => {
    expect(refusal(() => parsePlanSpec({ ...spec, replacement: 'MLP' })).message).toMatch(/: replacement: /);
  });

  it('refuses a negative batch size, naming the field path; `what` says whose spec it is', () => {
    const message = refusal(() => parsePlanSpec({ ...spec, training: { ...spec.training, batchSize: -2 } }, 'plan p1')).message;
    expect(message).toMatch(/^plan p1 does not fit the plan contract: training\.batchSize: /);
  });
});

describe('parsePlanResultWire and parsePlanResult', () => {
  const result = (score: number | null) => ({
    outputUri: 'file:///data/outputs/p1',
    outcome: {
      dryRun: false,
      pruned: {
        block: { start: 1, size: 1 },
        removedLayers: [1],
        numParameters: { before: 1000, after: 800 },
        importance: { blockSize: 1, scores: [0.9, score, 0.95] },
        training: { steps: 10, resumedFromStep: null },
        stability: {
          perplexity: [{ dataset: 's3://bucket/held-out.txt', tokens: 252, original: 12.5, pruned: score, prunedBeforeHealing: 14.2 }],
          tasks: [],
          hiddenStateCosine: 0.98,
        },
      },
    },
  });

  it('accepts a finished result with finite scores in both forms', () => {
    const finite = result(0.5);
    expect(parsePlanResult(finite)).toEqual(finite);
    expect(parsePlanResultWire(finite)).toEqual(finite);
  });

  it('accepts null scores on the wire (JSON NaN) but not in the checked result', () => {
    const withNull = JSON.parse(JSON.stringify(result(Number.NaN)));
    const wire = parsePlanResultWire(withNull);
    expect('pruned' in wire.outcome && wire.outcome.pruned.stability.perplexity[0].pruned).toBeNull();
    const message = refusal(() => parsePlanResult(withNull)).message;
    expect(message).toMatch(/^the plan result does not fit the plan contract: /);
    expect(message).toContain('outcome.pruned.importance.scores.1');
    expect(message).toContain('outcome.pruned.stability.perplexity.0.pruned');
  });

  it('checks the outcome by its dryRun tag', () => {
    const dry: PlanResult = { outputUri: null, outcome: { dryRun: true, profile: { samples: 4, seqLen: 64, blocks: [], angularDistance: [], blockInfluence: [] } } };
    expect(parsePlanResult(dry)).toEqual(dry);
    expect(refusal(() => parsePlanResult({ outputUri: null, outcome: { dryRun: true, pruned: result(0.5).outcome.pruned } })).message).toMatch(/outcome\.profile/);
  });
});

describe('parsePlanAssignment', () => {
  const assignment = testAssignment({ model: 's3://bucket/models/tiny', tokenizer: 's3://bucket/models/tiny/tokenizer.json', calibration: spec.calibration });

  it('accepts an assignment as a claim carries it', () => {
    expect(parsePlanAssignment(JSON.parse(JSON.stringify(assignment)))).toEqual(assignment);
  });

  it('refuses one without a model, naming the field', () => {
    const { model: _model, ...withoutModel } = assignment;
    expect(refusal(() => parsePlanAssignment(withoutModel)).message).toMatch(/^the claimed plan's config does not fit the plan contract: model: /);
  });

  it('names a bad field of the spec inside it by its full path', () => {
    expect(refusal(() => parsePlanAssignment({ ...assignment, spec: { ...assignment.spec, calibration: { ...assignment.spec.calibration, seqLen: 1 } } })).message).toMatch(
      /: spec\.calibration\.seqLen: /,
    );
  });
});
