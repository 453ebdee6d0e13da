/**
 * The watch's ETA on synthetic step times: a plan that profiles quickly (15 % in 5 s), trains 300
 * steps at 0.5 s each (15 % → 85 %), then assembles and evaluates (85 % → 100 % in 21 s). The old
 * estimate (progress since the watch began) grew through the first half of training; this one
 * falls by about a step's time per step, and lands within a few seconds of the truth.
 */
import { describe, expect, it } from 'vitest';
import { EtaEstimator, type EtaObservation } from '../src/cli/eta.js';

interface Tick {
  readonly at: number;
  readonly event: EtaObservation;
}

/** The synthetic plan's events with their times (ms); it ends at 5 + 150 + 21 = 176 s. */
function syntheticPlan(secondsPerStep = 0.5): Tick[] {
  const ticks: Tick[] = [];
  for (let i = 0; i <= 5; i++) ticks.push({ at: i * 1000, event: { progress: 0.03 * i, stage: 'PROFILING', step: null, totalSteps: null } });
  const trainStart = 5000;
  for (let step = 1; step <= 300; step++) {
    ticks.push({ at: trainStart + step * secondsPerStep * 1000, event: { progress: 0.15 + (0.7 * step) / 300, stage: 'TRAINING', step, totalSteps: 300 } });
  }
  const trainEnd = trainStart + 300 * secondsPerStep * 1000;
  ticks.push({ at: trainEnd + 1000, event: { progress: 0.88, stage: 'EVALUATING', step: null, totalSteps: null } });
  ticks.push({ at: trainEnd + 17_000, event: { progress: 0.97, stage: 'UPLOADING', step: null, totalSteps: null } });
  return ticks;
}

describe('EtaEstimator', () => {
  it('counts down through training by the measured step time, and converges on the time left', () => {
    const ticks = syntheticPlan();
    const end = 5000 + 150_000 + 21_000;
    const eta = new EtaEstimator();
    const during: { step: number; eta: number; truth: number }[] = [];
    for (const { at, event } of ticks) {
      eta.observe(event, at);
      const seconds = eta.seconds();
      if (event.stage === 'TRAINING' && event.step! >= 2) during.push({ step: event.step!, eta: seconds!, truth: (end - at) / 1000 });
    }
    // Never growing by more than rounding while the steps keep their pace.
    for (let i = 1; i < during.length; i++) expect(during[i].eta).toBeLessThanOrEqual(during[i - 1].eta + 1e-9);
    // Each step takes about a step's time off the estimate.
    expect(during[100].eta - during[101].eta).toBeCloseTo(0.5, 5);
    // Training's own part is exact from the second step on; the rest of the plan is extrapolated at the
    // profiling pace (5 s for 15 %: 5 s for the last 15 %, where the truth is 21 s), so the error stays
    // that 16 s difference and shrinks to none once training is done.
    for (const { eta: seconds, truth } of during) expect(Math.abs(seconds - truth)).toBeLessThanOrEqual(16.5);
    expect(during.at(-1)!.truth - during.at(-1)!.eta).toBeCloseTo(16, 0);
  });

  it('follows a change of pace within the stage (a slower machine)', () => {
    const eta = new EtaEstimator();
    for (const { at, event } of syntheticPlan(2)) {
      eta.observe(event, at);
      if (event.step === 150) {
        // 150 steps left at 2 s each, plus 15 % at the pace before training (5 s for the profile, and
        // the 2 s up to the first step, for 15.2 %: ≈ 7 s)
        expect(eta.seconds()).toBeGreaterThan(300 + 5);
        expect(eta.seconds()).toBeLessThan(300 + 7.5);
      }
    }
  });

  it('says nothing before there is a pace to measure, and nothing at 100 %', () => {
    const eta = new EtaEstimator();
    expect(eta.seconds()).toBeNull();
    eta.observe({ progress: 0.1, stage: 'PROFILING', step: null, totalSteps: null }, 0);
    expect(eta.seconds()).toBeNull();
    eta.observe({ progress: 0.2, stage: 'PROFILING', step: null, totalSteps: null }, 2000);
    expect(eta.seconds()).toBeCloseTo(16, 5); // 10 % per 2 s, 80 % left
    eta.observe({ progress: 1, stage: 'DONE', step: null, totalSteps: null }, 3000);
    expect(eta.seconds()).toBeNull();
  });
});
