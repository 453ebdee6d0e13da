import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { FINAL_STATUSES, NetworkError, PlanDocument, PlanDownloadsDocument, PlanEventsDocument, type Plan, type PlanSummary, type ProgressEvent } from '@streamline/sdk/browser';
import { ErrorMessage } from '../components/ErrorMessage.js';
import { LossChart, type LossPoint } from '../components/LossChart.js';
import { ScrollTable } from '../components/Table.js';
import { formatCount, formatDuration, formatNumber, formatPercent, formatTime } from '../format.js';
import { Link, modelPath } from '../router.js';
import { useSession } from '../session.js';
import { useAction } from '../use-action.js';
import { useAsync } from '../use-async.js';
import { reportCsv, reportJson, saveBlob } from './report-files.js';

const STAGES = ['LOADING', 'PROFILING', 'COLLECTING', 'TRAINING', 'ASSEMBLING', 'EVALUATING', 'UPLOADING', 'DONE'] as const;
const EVENTS_PAGE = 1000;

/**
 * One plan, live: its stored events first, then `planProgress` from the last sequence number seen —
 * again from there after a dropped connection, so no point of the loss curve is lost or drawn twice.
 */
function useLivePlan(id: string) {
  const { client } = useSession();
  const [plan, setPlan] = useState<Plan | null>(null);
  const [events, setEvents] = useState<ProgressEvent[]>([]);
  const [error, setError] = useState<Error | null>(null);
  const [connection, setConnection] = useState<'live' | 'reconnecting' | 'closed'>('closed');
  const lastSeq = useRef(0);

  const load = useCallback(async () => {
    try {
      const { plan: loaded } = await client.query(PlanDocument, { id, eventsLimit: 1 });
      if (!loaded) throw new Error(`plan ${JSON.stringify(id)} not found`);
      // every stored event after the last one held, a page at a time (the whole loss curve, however long)
      for (;;) {
        const page = (await client.query(PlanEventsDocument, { id, after: lastSeq.current, limit: EVENTS_PAGE })).plan?.events ?? [];
        if (page.length === 0) break;
        setEvents((previous) => mergeEvents(previous, page));
        lastSeq.current = page[page.length - 1].seq;
        if (page.length < EVENTS_PAGE) break;
      }
      setPlan(loaded);
      return loaded;
    } catch (caught) {
      setError(caught as Error);
      return null;
    }
  }, [client, id]);

  useEffect(() => {
    let stopped = false;
    const handle = client.planHandle(id);
    (async () => {
      const first = await load();
      if (!first || FINAL_STATUSES.has(first.status)) return;
      // status changes (stage, progress, final status) beside the event stream
      void (async () => {
        try {
          for await (const update of handle.updates()) {
            if (stopped) return;
            setPlan((previous) => (previous ? { ...previous, ...(update as PlanSummary) } : previous));
            if (FINAL_STATUSES.has(update.status)) break;
          }
        } catch {
          // the progress loop below reconnects; its end reloads the plan
        }
      })();
      while (!stopped) {
        try {
          setConnection('live');
          for await (const event of handle.progress({ afterSeq: lastSeq.current })) {
            if (stopped) return;
            lastSeq.current = event.seq;
            setEvents((previous) => [...previous, event]);
          }
          break; // the plan ended
        } catch (caught) {
          if (!(caught instanceof NetworkError)) {
            setError(caught as Error);
            break;
          }
          setConnection('reconnecting');
          await new Promise((resolve) => setTimeout(resolve, 2000));
        }
      }
      setConnection('closed');
      if (!stopped) await load();
    })();
    return () => {
      stopped = true;
    };
  }, [client, id, load]);

  return { plan, events, error, connection, reload: load };
}

function mergeEvents(have: readonly ProgressEvent[], more: readonly ProgressEvent[]): ProgressEvent[] {
  const bySeq = new Map(have.map((e) => [e.seq, e]));
  for (const e of more) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

export function PlanPage({ id }: { id: string }) {
  const { client } = useSession();
  const { plan, events, error, connection, reload } = useLivePlan(id);
  const cancelling = useAction();
  const points = useMemo<LossPoint[]>(
    () => events.filter((e) => e.stage === 'TRAINING' && e.step !== null && (e.loss !== null || e.validationLoss !== null)).map((e) => ({ step: e.step!, loss: e.loss, validationLoss: e.validationLoss })),
    [events],
  );
  if (error && !plan) return <ErrorMessage error={error} />;
  if (!plan) return <p>Loading…</p>;
  const running = !FINAL_STATUSES.has(plan.status);
  const latest = events[events.length - 1];
  const tokensPerSecond = [...events].reverse().find((e) => e.tokensPerSecond !== null)?.tokensPerSecond ?? null;
  const elapsed = plan.startedAt ? ((plan.finishedAt ? Date.parse(plan.finishedAt) : Date.now()) - Date.parse(plan.startedAt)) / 1000 : 0;
  const eta = running && plan.progress > 0.01 ? (elapsed * (1 - plan.progress)) / plan.progress : NaN;
  const seenStages = new Set(events.map((e) => e.stage));
  const cancel = () =>
    cancelling.run(async () => {
      await client.cancelPlan(plan.id);
      await reload();
    });
  return (
    <>
      <h1>
        {plan.dryRun ? 'Dry run' : 'Plan'} {plan.id}
      </h1>
      <p>
        Model <Link to={modelPath(plan.model.id)}>{plan.model.name}</Link> ·{' '}
        {plan.dryRun
          ? 'profiles every block size'
          : `${plan.replacement} replacement · ${plan.removedLayers.length ? `removes layers ${plan.removedLayers.join(', ')}` : `${plan.layersToPrune} layer${plan.layersToPrune === 1 ? '' : 's'}`}`}
      </p>
      <p className="plan-status" data-events={events.length} data-last-seq={latest?.seq ?? 0}>
        Status: <strong className={`status status-${plan.status.toLowerCase()}`} data-testid="plan-status">{plan.status}</strong>
        {plan.stage ? <> · stage {plan.stage}</> : null}
        {running ? <span className="muted"> · updates {connection === 'live' ? 'live' : connection === 'reconnecting' ? 'reconnecting…' : 'paused'}</span> : null}
      </p>
      <div className="progress-row">
        <label htmlFor="plan-progress">Progress</label>
        <progress id="plan-progress" max={1} value={plan.progress} />
        <span>
          {formatPercent(plan.progress, 0)}
          {Number.isFinite(eta) ? ` · about ${formatDuration(eta)} left` : ''}
          {plan.startedAt ? ` · ${formatDuration(elapsed)} elapsed` : ''}
        </span>
      </div>
      <ol className="timeline" aria-label="Stages">
        {STAGES.map((stage) => {
          const state = plan.stage === stage && running ? 'current' : seenStages.has(stage) || (plan.status === 'SUCCEEDED' && stage === 'DONE') ? 'done' : 'pending';
          return (
            <li key={stage} className={`stage-${state}`} aria-current={state === 'current' ? 'step' : undefined}>
              {stage.toLowerCase()}
              <span className="visually-hidden"> ({state})</span>
            </li>
          );
        })}
      </ol>
      {running ? (
        <p>
          <button type="button" className="danger" onClick={cancel}>
            Cancel plan
          </button>
        </p>
      ) : null}
      <ErrorMessage error={cancelling.error ?? error} />
      {!plan.dryRun ? (
        <section aria-labelledby="loss-heading">
          <h2 id="loss-heading">Training</h2>
          <p>
            Tokens/s: {tokensPerSecond === null ? '—' : Math.round(tokensPerSecond).toLocaleString()}
            {latest?.step !== null && latest?.totalSteps ? ` · step ${latest.step} of ${latest.totalSteps}` : ''}
          </p>
          <LossChart points={points} />
        </section>
      ) : null}
      {plan.status === 'FAILED' || plan.status === 'CANCELLED' ? <Failure plan={plan} events={events} /> : null}
      {plan.status === 'SUCCEEDED' && !plan.dryRun ? <Report plan={plan} /> : null}
      {plan.status === 'SUCCEEDED' && plan.dryRun ? (
        <p>
          See the heat map on the <Link to={modelPath(plan.model.id)}>model's page</Link>.
        </p>
      ) : null}
    </>
  );
}

function Failure({ plan, events }: { plan: Plan; events: readonly ProgressEvent[] }) {
  return (
    <section aria-labelledby="failure-heading">
      <h2 id="failure-heading">{plan.status === 'FAILED' ? 'Why it failed' : 'Cancelled'}</h2>
      {plan.error ? (
        <p className="error">
          {plan.errorCode ? <strong>{plan.errorCode}: </strong> : null}
          {plan.error}
        </p>
      ) : null}
      <h3>Last events</h3>
      <ol className="events">
        {events.slice(-8).map((e) => (
          <li key={e.seq}>
            {formatTime(e.at)} · {e.stage.toLowerCase()} {e.message ?? ''}
          </li>
        ))}
      </ol>
    </section>
  );
}

function Report({ plan }: { plan: Plan }) {
  const report = plan.stability;
  return (
    <section aria-labelledby="report-heading">
      <h2 id="report-heading">Stability report</h2>
      <dl className="facts">
        <dt>Parameters</dt>
        <dd>
          {formatCount(plan.originalParameters)} → {formatCount(plan.prunedParameters)} ({formatPercent(report?.parameterReduction)} fewer)
        </dd>
        <dt>Stability</dt>
        <dd>{formatNumber(report?.stability)}</dd>
        <dt>Hidden-state cosine</dt>
        <dd>{formatNumber(report?.hiddenStateCosine)}</dd>
      </dl>
      {report?.perplexity.length ? (
        <ScrollTable label="Perplexity" caption="Perplexity" columns={['Dataset', 'Tokens', 'Original', 'Pruned', 'Ratio']}>
          {report.perplexity.map((p) => (
            <tr key={p.dataset}>
              <td className="wrap">{p.dataset}</td>
              <td>{p.tokens}</td>
              <td>{formatNumber(p.original, 3)}</td>
              <td>{formatNumber(p.pruned, 3)}</td>
              <td>{p.original ? formatNumber(p.pruned / p.original, 3) : '—'}</td>
            </tr>
          ))}
        </ScrollTable>
      ) : null}
      {report?.tasks.length ? (
        <ScrollTable
          label="Tasks"
          caption="Multiple-choice tasks"
          columns={['Task', 'Items', 'Accuracy (original)', 'Accuracy (pruned)', 'Agreement', 'Stability']}
        >
          {report.tasks.map((t) => (
            <tr key={t.task}>
              <td className="wrap">{t.task}</td>
              <td>{t.samples}</td>
              <td>{formatPercent(t.accuracyOriginal)}</td>
              <td>{formatPercent(t.accuracyPruned)}</td>
              <td>{formatPercent(t.agreement)}</td>
              <td>{formatNumber(t.stability)}</td>
            </tr>
          ))}
        </ScrollTable>
      ) : null}
      <p className="actions">
        <button type="button" className="secondary" onClick={() => saveBlob(new Blob([reportJson(plan)], { type: 'application/json' }), `${plan.id}-report.json`)}>
          Download report (JSON)
        </button>
        <button type="button" className="secondary" onClick={() => saveBlob(new Blob([reportCsv(plan)], { type: 'text/csv' }), `${plan.id}-report.csv`)}>
          Download report (CSV)
        </button>
      </p>
      <OutputFiles plan={plan} />
    </section>
  );
}

interface OutputFile {
  readonly name: string;
  readonly size: number;
  readonly url: string;
}

/** S3 outputs: pre-signed URLs from the API. Local outputs: the gateway's /files route, with the token. */
function OutputFiles({ plan }: { plan: Plan }) {
  const { client, token } = useSession();
  const files = useAsync(async () => {
    if (!plan.outputUri) return null;
    if (plan.outputUri.startsWith('file://')) {
      const response = await fetch(`/files/${encodeURIComponent(plan.id)}/`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await response.json()) as { files?: OutputFile[]; errors?: { message: string }[] };
      if (!response.ok || !body.files) throw new Error(body.errors?.[0]?.message ?? `HTTP ${response.status}`);
      return { local: true, list: body.files };
    }
    const { plan: withDownloads } = await client.query(PlanDownloadsDocument, { id: plan.id });
    return { local: false, list: withDownloads?.downloads ?? [] };
  }, [client, token, plan.id, plan.outputUri]);
  const downloading = useAction();
  const download = (file: OutputFile) =>
    downloading.run(async () => {
      const response = await fetch(file.url, { headers: { authorization: `Bearer ${token}` } });
      if (!response.ok) throw new Error(`${file.name}: HTTP ${response.status}`);
      saveBlob(await response.blob(), file.name);
    });
  if (!plan.outputUri) return null;
  const listing = files.data;
  return (
    <>
      <h3>Output files</h3>
      <p className="muted wrap">{plan.outputUri}</p>
      <ErrorMessage error={downloading.error ?? files.error} />
      <ul className="files">
        {listing?.list.map((file) => (
          <li key={file.name}>
            {listing.local ? (
              <button type="button" className="link" onClick={() => download(file)}>
                {file.name}
              </button>
            ) : (
              <a href={file.url}>{file.name}</a>
            )}{' '}
            <span className="muted">({formatCount(file.size)}B)</span>
          </li>
        ))}
      </ul>
    </>
  );
}
