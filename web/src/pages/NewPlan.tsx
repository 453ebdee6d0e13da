import { useEffect, useState } from 'react';
import { ModelDocument, ModelsDocument, PlanDefaultsDocument, PlanEstimatesDocument, type CreatePruningPlanInput, type PlanDefaultsQuery, type PlanEstimatesQuery, type ReplacementKind, type TrainingInput } from '@streamline/sdk/browser';
import { ErrorMessage, fieldError } from '../components/ErrorMessage.js';
import { Heatmap, type BlockChoice } from '../components/Heatmap.js';
import { Table } from '../components/Table.js';
import { formatCount, formatPercent, layerSpan } from '../format.js';
import { navigate, planPath } from '../router.js';
import { useSession } from '../session.js';
import { useAction } from '../use-action.js';
import { useAsync } from '../use-async.js';
import { useDryRunProfiles } from './dry-run-profiles.js';

const KINDS: readonly { kind: ReplacementKind; what: string }[] = [
  { kind: 'LAYER', what: 'one decoder layer, initialised from the first pruned layer (the paper’s default)' },
  { kind: 'SWIGLU', what: 'a Llama MLP sublayer with its pre-norm and residual' },
  { kind: 'FFN', what: 'a two-layer MLP' },
  { kind: 'LINEAR', what: 'a d×d least-squares map (training-free)' },
  { kind: 'NONE', what: 'prune only' },
];

type TrainingDefaults = PlanDefaultsQuery['planDefaults']['training'];
type TrainingField = Exclude<keyof TrainingDefaults, '__typename'>;
const TRAINING_FIELDS: readonly { name: TrainingField; label: string; integer: boolean }[] = [
  { name: 'minSteps', label: 'Minimum optimizer steps', integer: true },
  { name: 'epochs', label: 'Epochs (empty: enough for the minimum steps)', integer: true },
  { name: 'batchSize', label: 'Batch size', integer: true },
  { name: 'gradientAccumulation', label: 'Gradient accumulation', integer: true },
  { name: 'learningRate', label: 'Learning rate', integer: false },
  { name: 'minLearningRate', label: 'Final learning rate', integer: false },
  { name: 'warmupRatio', label: 'Warm-up ratio', integer: false },
  { name: 'weightDecay', label: 'Weight decay', integer: false },
  { name: 'maxGradNorm', label: 'Gradient clipping norm', integer: false },
  { name: 'validationFraction', label: 'Validation fraction', integer: false },
  { name: 'checkpointEvery', label: 'Checkpoint every (steps)', integer: true },
  { name: 'seed', label: 'Seed', integer: true },
];

export function NewPlanPage({ query }: { query: URLSearchParams }) {
  const { client } = useSession();
  const models = useAsync(() => client.query(ModelsDocument, {}), [client]);
  const defaults = useAsync(() => client.query(PlanDefaultsDocument, {}), [client]);
  const [modelId, setModelId] = useState(query.get('model') ?? '');
  const model = useAsync(async () => (modelId ? (await client.query(ModelDocument, { id: modelId })).model : null), [client, modelId]);
  const { profiles } = useDryRunProfiles(model.data?.plans ?? []);

  const [by, setBy] = useState<'block' | 'sparsity'>('block');
  const [size, setSize] = useState(query.get('size') ?? '1');
  const [start, setStart] = useState(query.get('start') ?? '');
  const [sparsity, setSparsity] = useState('');
  const [kind, setKind] = useState<ReplacementKind>('LAYER');
  const [calibration, setCalibration] = useState({ source: '', samples: '', seqLen: '' });
  const [evaluation, setEvaluation] = useState({ perplexity: '', tasks: '' });
  const [training, setTraining] = useState<Record<TrainingField, string> | null>(null);
  const estimates = useAsync(async () => (modelId ? (await client.query(PlanEstimatesDocument, { modelId, replacement: kind })).planEstimates : []), [client, modelId, kind]);
  const starting = useAction();
  const { error } = starting;

  // Pre-fill the training settings with the API's defaults once they arrive.
  useEffect(() => {
    const values = defaults.data?.planDefaults.training;
    if (!values || training) return;
    setTraining(Object.fromEntries(TRAINING_FIELDS.map(({ name }) => [name, values[name] === null ? '' : String(values[name])])) as Record<TrainingField, string>);
  }, [defaults.data, training]);

  const submit = starting.submit(async () => {
    const trainingInput: TrainingInput = {};
    const defaultTraining = defaults.data?.planDefaults.training;
    for (const { name } of TRAINING_FIELDS) {
      const value = training?.[name] ?? '';
      // only what differs from the defaults: the plan's spec fills in the rest
      if (value === '' || (defaultTraining && String(defaultTraining[name]) === value)) continue;
      (trainingInput as Record<string, number>)[name] = Number(value);
    }
    const input: CreatePruningPlanInput = {
      modelId,
      replacement: kind,
      ...(by === 'block' ? { layersToPrune: Number(size), ...(start !== '' ? { startLayer: Number(start) } : {}) } : { targetSparsity: Number(sparsity) / 100 }),
      ...(calibration.source.trim()
        ? { calibration: { source: calibration.source.trim(), ...(calibration.samples ? { samples: Number(calibration.samples) } : {}), ...(calibration.seqLen ? { seqLen: Number(calibration.seqLen) } : {}) } }
        : {}),
      ...(evaluation.perplexity.trim() || evaluation.tasks.trim()
        ? {
            evaluation: {
              ...(evaluation.perplexity.trim() ? { perplexity: [{ source: evaluation.perplexity.trim() }] } : {}),
              ...(evaluation.tasks.trim() ? { tasks: evaluation.tasks.split(/\s+/).filter(Boolean) } : {}),
            },
          }
        : {}),
      ...(Object.keys(trainingInput).length ? { training: trainingInput } : {}),
    };
    const plan = await client.createPruningPlan(input);
    navigate(planPath(plan.id));
  });

  const numLayers = model.data?.numLayers ?? 0;
  const selected: BlockChoice | null = by === 'block' && start !== '' ? { size: Number(size), start: Number(start) } : null;
  const pick = (choice: BlockChoice) => {
    setBy('block');
    setSize(String(choice.size));
    setStart(String(choice.start));
  };
  const n = Number(size);
  const message = (field: string) => {
    const text = fieldError(error, field);
    return text ? <span className="field-error">{text}</span> : null;
  };
  return (
    <>
      <h1>New plan</h1>
      <form onSubmit={submit} className="plan-form">
        <fieldset>
          <legend>Model</legend>
          <div className="field">
            <label htmlFor="plan-model">Model</label>
            <select id="plan-model" value={modelId} onChange={(e) => setModelId(e.target.value)} required>
              <option value="">Choose a model…</option>
              {models.data?.models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name} ({m.numLayers ?? '?'} layers)
                </option>
              ))}
            </select>
            {message('modelId')}
          </div>
        </fieldset>
        <fieldset>
          <legend>Block to remove</legend>
          <div className="radios">
            <label>
              <input type="radio" name="by" checked={by === 'block'} onChange={() => setBy('block')} /> By block size and start
            </label>
            <label>
              <input type="radio" name="by" checked={by === 'sparsity'} onChange={() => setBy('sparsity')} /> By target sparsity
            </label>
          </div>
          {by === 'block' ? (
            <div className="form-grid">
              <div className="field">
                <label htmlFor="plan-size">Layers to remove</label>
                <input id="plan-size" type="number" min={1} max={Math.max(1, numLayers - 1)} value={size} onChange={(e) => setSize(e.target.value)} required />
                {message('layersToPrune')}
              </div>
              <div className="field">
                <label htmlFor="plan-start">Start layer</label>
                <input id="plan-start" type="number" min={0} value={start} onChange={(e) => setStart(e.target.value)} aria-describedby="plan-start-hint" />
                <span className="hint" id="plan-start-hint">
                  empty: the most redundant start, chosen by importance
                </span>
                {message('startLayer')}
              </div>
            </div>
          ) : (
            <div className="field">
              <label htmlFor="plan-sparsity">Target sparsity (% of parameters)</label>
              <input id="plan-sparsity" type="number" min={0.1} max={99} step="any" value={sparsity} onChange={(e) => setSparsity(e.target.value)} required />
              {message('targetSparsity')}
            </div>
          )}
          {by === 'block' && n >= 1 ? (
            <p className="estimate" role="status">
              Removes {start !== '' ? layerSpan(Number(start), n) : `${n} layer${n === 1 ? '' : 's'}`}
              {kind === 'LAYER' ? `; the replacement layer puts one back: ${n - 1} net` : ''}
              {numLayers ? ` — ${numLayers} → ${numLayers - n + (kind === 'LAYER' ? 1 : 0)} decoder layers` : ''}.
            </p>
          ) : null}
          <Estimates estimates={estimates.data ?? []} size={by === 'block' ? n : null} />
          {profiles.data && profiles.data.length ? <Heatmap profiles={profiles.data} numLayers={numLayers} selected={selected} onSelect={pick} /> : null}
        </fieldset>
        <fieldset>
          <legend>Replacement</legend>
          <div className="radios">
            {KINDS.map(({ kind: k, what }) => (
              <label key={k}>
                <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} /> <strong>{k}</strong> — {what}
              </label>
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>Data</legend>
          <div className="form-grid">
            <div className="field">
              <label htmlFor="plan-calibration">Calibration text</label>
              <input id="plan-calibration" value={calibration.source} onChange={(e) => setCalibration({ ...calibration, source: e.target.value })} aria-describedby="plan-calibration-hint" />
              <span className="hint" id="plan-calibration-hint">
                file:// or s3://; empty: the gateway's default
              </span>
              {message('calibration')}
            </div>
            <div className="field">
              <label htmlFor="plan-samples">Calibration samples</label>
              <input id="plan-samples" type="number" min={1} value={calibration.samples} placeholder={String(defaults.data?.planDefaults.calibration.samples ?? '')} onChange={(e) => setCalibration({ ...calibration, samples: e.target.value })} />
            </div>
            <div className="field">
              <label htmlFor="plan-seq-len">Tokens per sample</label>
              <input id="plan-seq-len" type="number" min={1} value={calibration.seqLen} placeholder={String(defaults.data?.planDefaults.calibration.seqLen ?? '')} onChange={(e) => setCalibration({ ...calibration, seqLen: e.target.value })} />
            </div>
            <div className="field">
              <label htmlFor="plan-perplexity">Perplexity text</label>
              <input id="plan-perplexity" value={evaluation.perplexity} onChange={(e) => setEvaluation({ ...evaluation, perplexity: e.target.value })} aria-describedby="plan-perplexity-hint" />
              <span className="hint" id="plan-perplexity-hint">
                empty: held-out calibration windows
              </span>
              {message('evaluation')}
            </div>
            <div className="field">
              <label htmlFor="plan-tasks">Multiple-choice tasks</label>
              <textarea id="plan-tasks" rows={2} value={evaluation.tasks} onChange={(e) => setEvaluation({ ...evaluation, tasks: e.target.value })} aria-describedby="plan-tasks-hint" />
              <span className="hint" id="plan-tasks-hint">
                .jsonl URIs, one per line
              </span>
            </div>
          </div>
        </fieldset>
        <fieldset>
          <legend>Training</legend>
          <p className="hint">Pre-filled with the API's defaults.</p>
          <div className="form-grid">
            {TRAINING_FIELDS.map(({ name, label, integer }) => (
              <div className="field" key={name}>
                <label htmlFor={`training-${name}`}>{label}</label>
                <input
                  id={`training-${name}`}
                  type="number"
                  step={integer ? 1 : 'any'}
                  value={training?.[name] ?? ''}
                  onChange={(e) => training && setTraining({ ...training, [name]: e.target.value })}
                />
                {message(`training.${name}`)}
              </div>
            ))}
          </div>
        </fieldset>
        <div className="actions">
          <button type="submit" disabled={starting.busy || !modelId}>
            {starting.busy ? 'Starting…' : 'Start plan'}
          </button>
        </div>
        <ErrorMessage error={error} />
      </form>
    </>
  );
}

type BlockEstimate = PlanEstimatesQuery['planEstimates'][number];

/** Parameters before and after for the chosen block size, or for every size when planning by sparsity. */
function Estimates({ estimates, size }: { estimates: readonly BlockEstimate[]; size: number | null }) {
  if (estimates.length === 0) return null;
  const chosen = size === null ? null : estimates.find((e) => e.blockSize === size);
  if (size !== null) {
    return chosen ? (
      <p className="estimate" role="status" data-testid="estimate">
        Parameters: {formatCount(chosen.parametersBefore)} → {formatCount(chosen.parametersAfter)} ({formatPercent(chosen.sparsity)} fewer
        {chosen.replacementParameters ? `, the replacement's ${formatCount(chosen.replacementParameters)} included` : ''}).
      </p>
    ) : null;
  }
  return (
    <Table caption="What each block size removes with this replacement" columns={['Layers', 'Parameters after', 'Sparsity']}>
      {estimates.map((e) => (
        <tr key={e.blockSize}>
          <td>{e.blockSize}</td>
          <td>{formatCount(e.parametersAfter)}</td>
          <td>{formatPercent(e.sparsity)}</td>
        </tr>
      ))}
    </Table>
  );
}
