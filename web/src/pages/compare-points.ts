/**
 * What the Compare page plots and lists: each finished plan's (or sweep candidate's) share of parameters
 * removed against perplexity, mean task accuracy or stability.
 */
import type { Plan } from '@streamline/sdk/browser';
import type { TradeoffPoint } from '../components/TradeoffChart.js';

export type Measure = 'perplexity' | 'accuracy' | 'stability';
/** Each measure of a pruned plan, and of the original model where the report has it (the chart's point at 0% removed). */
export const MEASURES: Record<Measure, { label: string; of: (plan: Plan) => number | null; original: (plan: Plan) => number | null }> = {
  perplexity: { label: 'perplexity', of: (plan) => plan.stability?.perplexity[0]?.pruned ?? null, original: (plan) => plan.stability?.perplexity[0]?.original ?? null },
  accuracy: {
    label: 'mean task accuracy',
    of: (plan) => mean(plan.stability?.tasks.map((t) => t.accuracyPruned) ?? []),
    original: (plan) => mean(plan.stability?.tasks.map((t) => t.accuracyOriginal) ?? []),
  },
  stability: { label: 'stability', of: (plan) => plan.stability?.stability ?? null, original: () => null },
};

export type Candidate = Plan['candidates'][number];
/** The same measures for a sweep candidate (its tasks' scores; stability as their mean). */
export const CANDIDATE_MEASURES: Record<Measure, { of: (c: Candidate) => number | null; original: (c: Candidate) => number | null }> = {
  perplexity: { of: (c) => c.perplexity ?? null, original: (c) => c.perplexityOriginal ?? null },
  accuracy: { of: (c) => mean(c.tasks.map((t) => t.accuracy)), original: (c) => mean(c.tasks.map((t) => t.accuracyOriginal)) },
  stability: { of: (c) => mean(c.tasks.map((t) => t.stability)), original: () => null },
};

/** A finished sweep's candidates as points: parameters removed against the chosen measure. */
export function candidatePoints(plan: Plan, measure: Measure): TradeoffPoint[] {
  return plan.candidates.flatMap((c) => {
    const value = CANDIDATE_MEASURES[measure].of(c);
    const removed = candidateRemoved(c);
    if (c.status !== 'DONE' || value === null || removed === null) return [];
    const kind = c.iterative ? 'one at a time' : c.replacement;
    return [{ id: `${plan.id}/${c.id}`, label: `${kind}, layers ${c.removedLayers.join(', ')}${c.pareto ? ' (Pareto)' : ''}`, removed, value }];
  });
}

/** One table row per finished plan, or per candidate of a sweep. */
export function tableRows(plans: readonly Plan[]): { plan: Plan; c: Candidate | null }[] {
  return plans.flatMap((plan): { plan: Plan; c: Candidate | null }[] => (plan.candidates.length ? plan.candidates.map((c) => ({ plan, c })) : [{ plan, c: null }]));
}

/** The share of parameters a candidate removes (null until it is measured). */
export function candidateRemoved(c: Candidate): number | null {
  return c.parametersAfter === null || c.parametersAfter === undefined ? null : 1 - c.parametersAfter / c.parametersBefore;
}

function mean(values: readonly number[]): number | null {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

