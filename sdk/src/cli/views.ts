/** What each command prints without --json: models, plans, a plan's stability report and its downloads. */
import type { ApiToken, Model, ModelWithPlans, NewApiToken, OutputDownload, Plan, PlanSummary, Tenant } from '../types.js';
import { count, fixed, layers, percent, table } from './format.js';

export function modelsTable(models: readonly Model[]): string {
  if (!models.length) return '(no models)';
  return table(
    ['ID', 'NAME', 'ARCH', 'LAYERS', 'HIDDEN', 'PARAMETERS', 'STATUS'],
    models.map((m) => [m.id, m.name, m.architecture ?? '—', count(m.numLayers), count(m.hiddenSize), count(m.numParameters), m.status]),
  );
}

export function modelView(model: ModelWithPlans): string {
  const lines = [
    `model ${model.id}  ${model.name}  ${model.status}`,
    `  source        ${model.source}`,
    ...(model.tokenizer ? [`  tokenizer     ${model.tokenizer}`] : []),
    `  architecture  ${model.architecture ?? '—'}, ${count(model.numLayers)} layers, hidden size ${count(model.hiddenSize)}, ${count(model.numParameters)} parameters`,
    ...(model.error ? [`  error         ${model.errorCode ? `${model.errorCode}: ` : ''}${model.error}`] : []),
  ];
  if (model.plans.length) lines.push('', plansTable(model.plans));
  return lines.join('\n');
}

export function plansTable(plans: readonly PlanSummary[]): string {
  if (!plans.length) return '(no plans)';
  return table(
    ['ID', 'MODEL', 'STATUS', 'STAGE', 'PROGRESS', 'REPLACEMENT', 'REMOVED', 'CREATED'],
    plans.map((p) => [p.id, p.model.name, p.status, p.stage ?? '—', percent(p.progress, 0), p.dryRun ? 'dry run' : p.replacement, layers(p.removedLayers), p.createdAt]),
  );
}

export function planView(plan: Plan | PlanSummary): string {
  const from = plan.startLayer !== null ? ` from layer ${plan.startLayer}` : '';
  const lines = [
    `plan ${plan.id}  ${plan.status}${plan.stage ? ` (${plan.stage})` : ''}  ${percent(plan.progress, 0)}`,
    `  model           ${plan.model.name} (${plan.model.id})`,
    ...(plan.dryRun
      ? [`  block           ${plan.layersToPrune} layer(s)${from}, dry run (nothing trained or removed)`, `  would remove    ${wouldRemove(plan)}`]
      : [
          `  block           ${plan.layersToPrune} layer(s)${from}, replacement ${plan.replacement}`,
          `  removed layers  ${layers(plan.removedLayers)} (0-based)`,
          `  parameters      ${count(plan.originalParameters)} → ${count(plan.prunedParameters)}`,
        ]),
    ...(plan.outputUri ? [`  output          ${plan.outputUri}`] : []),
    ...(plan.error ? [`  error           ${plan.errorCode ? `${plan.errorCode}: ` : ''}${plan.error}`] : []),
  ];
  return lines.join('\n');
}

/** A dry run's answer: the most redundant block of its size by cosine (the block a real plan would remove). */
function wouldRemove(plan: Plan | PlanSummary): string {
  const profile = 'profiles' in plan ? plan.profiles.find((p) => p.metric === 'COSINE' && p.blockSize === plan.layersToPrune) : undefined;
  if (!profile?.best) return plan.status === 'SUCCEEDED' ? '— (no profile of this block size)' : '— (known when the profile is done)';
  const { startLayer, endLayer, score } = profile.best;
  const chosen = plan.startLayer !== null ? plan.startLayer : startLayer;
  const chosenScore = profile.scores.find((s) => s.startLayer === chosen)?.score ?? score;
  const last = chosen + plan.layersToPrune - 1;
  const block = last === chosen ? `layer ${chosen}` : `layers ${chosen}-${last}`;
  const why = plan.startLayer !== null ? `the start layer asked for; best is ${startLayer}-${endLayer}` : 'most redundant block of this size';
  return `${block} (0-based; cosine ${fixed(chosenScore)}, ${why})`;
}

export function reportView(plan: Plan): string {
  const report = plan.stability;
  if (!report) return `plan ${plan.id} has no stability report (${plan.status}${plan.dryRun ? ', dry run' : ''})`;
  const lines = [
    `stability report for plan ${plan.id} (removed layers ${layers(plan.removedLayers)}, replacement ${plan.replacement})`,
    '',
    table(
      ['METRIC', 'VALUE'],
      [
        ['stability', fixed(report.stability)],
        ['hidden-state cosine', fixed(report.hiddenStateCosine)],
        ['parameter reduction', percent(report.parameterReduction)],
        ['parameters', `${count(plan.originalParameters)} → ${count(plan.prunedParameters)}`],
      ],
    ),
  ];
  if (report.perplexity.length) {
    lines.push(
      '',
      table(
        ['PERPLEXITY ON', 'TOKENS', 'ORIGINAL', 'PRUNED', 'RATIO'],
        report.perplexity.map((p) => [p.dataset, count(p.tokens), fixed(p.original, 3), fixed(p.pruned, 3), fixed(p.pruned / p.original, 3)]),
      ),
    );
  }
  if (report.tasks.length) {
    lines.push(
      '',
      table(
        ['TASK', 'SAMPLES', 'ACC ORIGINAL', 'ACC PRUNED', 'AGREEMENT', 'STABILITY'],
        report.tasks.map((t) => [t.task, count(t.samples), percent(t.accuracyOriginal), percent(t.accuracyPruned), percent(t.agreement), fixed(t.stability)]),
      ),
    );
  }
  return lines.join('\n');
}

/** The output's files with their pre-signed URLs, or why there are none. */
export function downloadsView(planId: string, outputUri: string | null, downloads: readonly OutputDownload[] | null): string {
  if (!downloads) return `plan ${planId} has no downloadable output${outputUri ? ` (its output is at ${outputUri}, not in S3)` : ' (yet)'}`;
  const expires = downloads[0]?.expiresAt ? `; the URLs work until ${downloads[0].expiresAt}` : '';
  return [`output of plan ${planId}${expires}`, '', table(['FILE', 'SIZE', 'URL'], downloads.map((d) => [d.name, count(d.size), d.url]))].join('\n');
}

export function tokensTable(tokens: readonly ApiToken[]): string {
  if (!tokens.length) return '(no API tokens)';
  return table(
    ['ID', 'ROLE', 'TENANT', 'ORIGIN', 'CREATED', 'LAST USED', 'EXPIRES', 'REVOKED'],
    tokens.map((t) => [t.id, t.role, t.tenant.name, t.origin, t.createdAt, t.lastUsedAt ?? '—', t.expiresAt ?? 'never', t.revokedAt ?? '—']),
  );
}

export function newTokenView(token: NewApiToken): string {
  return [
    `API token ${token.id}  ${token.role} of tenant ${token.tenant.name} (${token.tenant.id}), expires ${token.expiresAt ?? 'never'}`,
    'shown only this once; keep it:',
    '',
    `    ${token.token}`,
  ].join('\n');
}

export function tenantsTable(tenants: readonly Tenant[]): string {
  if (!tenants.length) return '(no tenants)';
  return table(['ID', 'NAME', 'CREATED'], tenants.map((t) => [t.id, t.name, t.createdAt]));
}
