import { useState } from 'react';
import { ModelDocument, ModelsDocument, PlanDocument, type Plan } from '@streamline/sdk/browser';
import { CANDIDATE_MEASURES, candidatePoints, candidateRemoved, MEASURES, tableRows, type Measure } from './compare-points.js';
import { ErrorMessage } from '../components/ErrorMessage.js';
import { ScrollTable } from '../components/Table.js';
import { TradeoffChart, type TradeoffPoint } from '../components/TradeoffChart.js';
import { formatNumber, formatPercent } from '../format.js';
import { Link, navigate, planPath } from '../router.js';
import { useSession } from '../session.js';
import { useAsync } from '../use-async.js';

/** `/compare?model=<id>` (its finished plans, a sweep's candidates each a point) or `/compare?plans=<id>,<id>`. */
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
    if (plan.candidates.length) return candidatePoints(plan, measure);
    const value = MEASURES[measure].of(plan);
    const removed = plan.stability?.parameterReduction;
    return value === null || removed === undefined || removed === null ? [] : [{ id: plan.id, label: `${plan.replacement}, ${plan.layersToPrune} layers`, removed, value }];
  });
  // the original model, as the first plan measured it (plans on different data would disagree here)
  const first = plans.data?.[0];
  const firstCandidate = first?.candidates.find((c) => c.status === 'DONE');
  const original = !first ? null : firstCandidate ? CANDIDATE_MEASURES[measure].original(firstCandidate) : MEASURES[measure].original(first);
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
        <ScrollTable
          label="Finished plans"
          caption="Finished plans and sweep candidates"
          columns={['Plan', 'Replacement', 'Removed layers', 'Parameters removed', 'Perplexity', 'Accuracy', 'Stability']}
        >
          {tableRows(plans.data).map(({ plan, c }) =>
            c ? (
              <tr key={`${plan.id}/${c.id}`}>
                <td>
                  <Link to={planPath(plan.id)}>{`${plan.id} · ${c.id}`}</Link>
                </td>
                <td>{c.iterative ? 'one at a time' : c.replacement}</td>
                <td>{c.removedLayers.join(', ')}</td>
                <td>{formatPercent(candidateRemoved(c))}</td>
                <td>{formatNumber(CANDIDATE_MEASURES.perplexity.of(c), 3)}</td>
                <td>{formatPercent(CANDIDATE_MEASURES.accuracy.of(c))}</td>
                <td>{formatNumber(CANDIDATE_MEASURES.stability.of(c))}</td>
              </tr>
            ) : (
              <tr key={plan.id}>
                <td>
                  <Link to={planPath(plan.id)}>{plan.id}</Link>
                </td>
                <td>{plan.replacement}</td>
                <td>{plan.removedLayers.join(', ')}</td>
                <td>{formatPercent(plan.stability?.parameterReduction)}</td>
                <td>{formatNumber(MEASURES.perplexity.of(plan), 3)}</td>
                <td>{formatPercent(MEASURES.accuracy.of(plan))}</td>
                <td>{formatNumber(MEASURES.stability.of(plan))}</td>
              </tr>
            ),
          )}
        </ScrollTable>
      ) : plans.data ? (
        <p>No finished plans to compare{modelId ? '' : ': choose a model'}.</p>
      ) : null}
    </>
  );
}
