import { useState } from 'react';
import { ModelDocument, ModelsDocument, PlanDocument, type Plan } from '@streamline/sdk/browser';
import { ErrorMessage } from '../components/ErrorMessage.js';
import { TradeoffChart, type TradeoffPoint } from '../components/TradeoffChart.js';
import { formatNumber, formatPercent } from '../format.js';
import { Link, navigate } from '../router.js';
import { useSession } from '../session.js';
import { useAsync } from '../use-async.js';

type Measure = 'perplexity' | 'accuracy' | 'stability';
/** Each measure of a pruned plan, and of the original model where the report has it (the chart's point at 0% removed). */
const MEASURES: Record<Measure, { label: string; of: (plan: Plan) => number | null; original: (plan: Plan) => number | null }> = {
  perplexity: { label: 'perplexity', of: (plan) => plan.stability?.perplexity[0]?.pruned ?? null, original: (plan) => plan.stability?.perplexity[0]?.original ?? null },
  accuracy: {
    label: 'mean task accuracy',
    of: (plan) => mean(plan.stability?.tasks.map((t) => t.accuracyPruned) ?? []),
    original: (plan) => mean(plan.stability?.tasks.map((t) => t.accuracyOriginal) ?? []),
  },
  stability: { label: 'stability', of: (plan) => plan.stability?.stability ?? null, original: () => null },
};

function mean(values: readonly number[]): number | null {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

/** `/compare?model=<id>` (its finished plans) or `/compare?plans=<id>,<id>`. */
export function ComparePage({ query }: { query: URLSearchParams }) {
  const { client } = useSession();
  const modelId = query.get('model');
  const planIds = query.get('plans')?.split(',').filter(Boolean) ?? null;
  const models = useAsync(() => client.query(ModelsDocument, {}), [client]);
  const [measure, setMeasure] = useState<Measure>('perplexity');
  const plans = useAsync(async () => {
    const ids = planIds ?? (modelId ? ((await client.query(ModelDocument, { id: modelId })).model?.plans ?? []).filter((p) => !p.dryRun && p.status === 'SUCCEEDED').map((p) => p.id) : []);
    const loaded = await Promise.all(ids.map(async (id) => (await client.query(PlanDocument, { id, eventsLimit: 1 })).plan));
    return loaded.filter((plan): plan is Plan => plan !== null && plan.status === 'SUCCEEDED' && !plan.dryRun);
  }, [client, modelId, query.get('plans')]);
  const points: TradeoffPoint[] = (plans.data ?? []).flatMap((plan) => {
    const value = MEASURES[measure].of(plan);
    const removed = plan.stability?.parameterReduction;
    return value === null || removed === undefined || removed === null ? [] : [{ id: plan.id, label: `${plan.replacement}, ${plan.layersToPrune} layers`, removed, value }];
  });
  // the original model, as the first plan measured it (plans on different data would disagree here)
  const original = plans.data?.[0] ? MEASURES[measure].original(plans.data[0]) : null;
  if (points.length && original !== null) points.unshift({ id: 'original', label: 'original model', removed: 0, value: original });
  return (
    <>
      <h1>Compare plans</h1>
      <div className="form-grid">
        <div className="field">
          <label htmlFor="compare-model">Model</label>
          <select id="compare-model" value={modelId ?? ''} onChange={(e) => navigate(`/compare?model=${encodeURIComponent(e.target.value)}`)}>
            <option value="">Choose a model…</option>
            {models.data?.models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="compare-measure">Measure</label>
          <select id="compare-measure" value={measure} onChange={(e) => setMeasure(e.target.value as Measure)}>
            {Object.entries(MEASURES).map(([key, { label }]) => (
              <option key={key} value={key}>
                {label}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorMessage error={plans.error} />
      {plans.data ? <TradeoffChart points={points} measure={MEASURES[measure].label} /> : null}
      {plans.data?.length ? (
        <div className="scroll" tabIndex={0} aria-label="Finished plans, scrollable">
          <table>
            <caption>Finished plans</caption>
            <thead>
              <tr>
                <th scope="col">Plan</th>
                <th scope="col">Replacement</th>
                <th scope="col">Removed layers</th>
                <th scope="col">Parameters removed</th>
                <th scope="col">Perplexity</th>
                <th scope="col">Accuracy</th>
                <th scope="col">Stability</th>
              </tr>
            </thead>
            <tbody>
              {plans.data.map((plan) => (
                <tr key={plan.id}>
                  <td>
                    <Link to={`/plans/${encodeURIComponent(plan.id)}`}>{plan.id}</Link>
                  </td>
                  <td>{plan.replacement}</td>
                  <td>{plan.removedLayers.join(', ')}</td>
                  <td>{formatPercent(plan.stability?.parameterReduction)}</td>
                  <td>{formatNumber(MEASURES.perplexity.of(plan), 3)}</td>
                  <td>{formatPercent(MEASURES.accuracy.of(plan))}</td>
                  <td>{formatNumber(MEASURES.stability.of(plan))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : plans.data ? (
        <p>No finished plans to compare{modelId ? '' : ': choose a model'}.</p>
      ) : null}
    </>
  );
}
