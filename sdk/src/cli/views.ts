/** What each command prints without --json: models, plans, and a plan's stability report. */
import type { Model, ModelWithPlans, Plan, PlanSummary } from '../types.js';
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
    ...(model.error ? [`  error         ${model.error}`] : []),
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
  const lines = [
    `plan ${plan.id}  ${plan.status}${plan.stage ? ` (${plan.stage})` : ''}  ${percent(plan.progress, 0)}`,
    `  model           ${plan.model.name} (${plan.model.id})`,
    `  block           ${plan.layersToPrune} layer(s)${plan.startLayer !== null ? ` from layer ${plan.startLayer}` : ''}, replacement ${plan.replacement}${plan.dryRun ? ', dry run' : ''}`,
    `  removed layers  ${layers(plan.removedLayers)} (0-based)`,
    `  parameters      ${count(plan.originalParameters)} → ${count(plan.prunedParameters)}`,
    ...(plan.outputUri ? [`  output          ${plan.outputUri}`] : []),
    ...(plan.error ? [`  error           ${plan.error}`] : []),
  ];
  return lines.join('\n');
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
