import { useEffect, useState } from 'react';
import { FINAL_STATUSES, ModelDocument, PlanDefaultsDocument, type ModelWithPlans } from '@streamline/sdk/browser';
import { ErrorMessage, fieldError } from '../components/ErrorMessage.js';
import { Heatmap } from '../components/Heatmap.js';
import { InfluenceBars } from '../components/InfluenceBars.js';
import { PlanTable } from '../components/PlanTable.js';
import { formatCount, formatTime } from '../format.js';
import { Link, navigate, planPath } from '../router.js';
import { useSession } from '../session.js';
import { useAction } from '../use-action.js';
import { useAsync } from '../use-async.js';
import { newest, useDryRunProfiles } from './dry-run-profiles.js';

export function ModelPage({ id }: { id: string }) {
  const { client } = useSession();
  const model = useAsync(() => client.query(ModelDocument, { id }), [client, id]);
  const plans = model.data?.model?.plans ?? [];
  const { dryRun, profiles } = useDryRunProfiles(plans);
  const running = newest(plans, (plan) => plan.dryRun && !FINAL_STATUSES.has(plan.status));

  // A dry run in progress: reload the page's data when it finishes.
  useEffect(() => {
    if (!running) return;
    let stopped = false;
    (async () => {
      try {
        for await (const update of client.planHandle(running.id).updates()) if (stopped || FINAL_STATUSES.has(update.status)) break;
      } catch {
        // the reload below shows the plan's state either way
      }
      if (!stopped) model.reload();
    })();
    return () => {
      stopped = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, running?.id]);

  if (model.error) return <ErrorMessage error={model.error} />;
  if (!model.data) return <p>Loading…</p>;
  const found = model.data.model;
  if (!found) return <ErrorMessage error={new Error(`model ${JSON.stringify(id)} not found`)} />;
  const numLayers = found.numLayers ?? 0;
  const influence = profiles.data?.find((p) => p.metric === 'BLOCK_INFLUENCE');
  return (
    <>
      <h1>{found.name}</h1>
      <dl className="facts">
        <dt>Architecture</dt>
        <dd>{found.architecture ?? '—'}</dd>
        <dt>Layers</dt>
        <dd>{found.numLayers ?? '—'}</dd>
        <dt>Hidden size</dt>
        <dd>{found.hiddenSize ?? '—'}</dd>
        <dt>Parameters</dt>
        <dd>{formatCount(found.numParameters)}</dd>
        <dt>Status</dt>
        <dd>{found.status}</dd>
        <dt>Source</dt>
        <dd className="wrap">{found.source}</dd>
      </dl>
      <p className="actions">
        <Link className="button" to={`/plans/new?model=${encodeURIComponent(id)}`}>
          New plan
        </Link>
        <Link className="button secondary" to={`/compare?model=${encodeURIComponent(id)}`}>
          Compare finished plans
        </Link>
      </p>
      <section aria-labelledby="importance-heading">
        <h2 id="importance-heading">Importance</h2>
        {dryRun ? (
          <p className="muted">
            From dry run <Link to={planPath(dryRun.id)}>{dryRun.id}</Link> of {formatTime(dryRun.finishedAt)}. Click a cell to plan
            that block.
          </p>
        ) : null}
        {running ? (
          <p role="status">
            Dry run <Link to={planPath(running.id)}>{running.id}</Link> is {running.status.toLowerCase()}
            {running.stage ? ` (${running.stage.toLowerCase()})` : ''}…
          </p>
        ) : null}
        <ErrorMessage error={profiles.error} />
        {profiles.data ? (
          <Heatmap
            profiles={profiles.data}
            numLayers={numLayers}
            onSelect={({ size, start }) => navigate(`/plans/new?model=${encodeURIComponent(id)}&size=${size}&start=${start}`)}
          />
        ) : null}
        <InfluenceBars profile={influence} />
        <DryRunForm model={found} onStarted={model.reload} />
      </section>
      <section aria-labelledby="plans-heading">
        <h2 id="plans-heading">Plans</h2>
        <PlanTable plans={plans} caption={`Plans of ${found.name}`} />
      </section>
    </>
  );
}

function DryRunForm({ model, onStarted }: { model: ModelWithPlans; onStarted: () => void }) {
  const { client } = useSession();
  const defaults = useAsync(() => client.query(PlanDefaultsDocument, {}), [client]);
  const [source, setSource] = useState('');
  const [samples, setSamples] = useState('');
  const [seqLen, setSeqLen] = useState('');
  const starting = useAction();
  const { error } = starting;
  const calibration = defaults.data?.planDefaults.calibration;
  const submit = starting.submit(async () => {
    await client.createPruningPlan({
      modelId: model.id,
      dryRun: true,
      layersToPrune: 1,
      ...(source.trim() ? { calibration: { source: source.trim(), ...(samples ? { samples: Number(samples) } : {}), ...(seqLen ? { seqLen: Number(seqLen) } : {}) } } : {}),
    });
    onStarted();
  });
  return (
    <form onSubmit={submit} className="form-grid" aria-labelledby="dry-run-heading">
      <h3 id="dry-run-heading">Measure importance (dry run)</h3>
      <div className="field">
        <label htmlFor="dry-source">Calibration text</label>
        <input id="dry-source" value={source} onChange={(e) => setSource(e.target.value)} aria-describedby="dry-source-hint" />
        <span className="hint" id="dry-source-hint">
          file:// or s3:// .txt or .jsonl; empty: the gateway's default calibration set
        </span>
        {fieldError(error, 'calibration') ? <span className="field-error">{fieldError(error, 'calibration')}</span> : null}
      </div>
      <div className="field">
        <label htmlFor="dry-samples">Samples</label>
        <input id="dry-samples" type="number" min={1} value={samples} placeholder={calibration ? String(calibration.samples) : ''} onChange={(e) => setSamples(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="dry-seq-len">Tokens per sample</label>
        <input id="dry-seq-len" type="number" min={1} value={seqLen} placeholder={calibration ? String(calibration.seqLen) : ''} onChange={(e) => setSeqLen(e.target.value)} />
      </div>
      <div className="actions">
        <button type="submit" disabled={starting.busy}>
          {starting.busy ? 'Starting…' : 'Run a dry run'}
        </button>
      </div>
      <ErrorMessage error={error} />
    </form>
  );
}
