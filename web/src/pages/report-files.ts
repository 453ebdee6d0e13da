/** A finished plan's stability report as JSON or CSV files, and saving any Blob as a download. */
import type { Plan } from '@streamline/sdk/browser';

export function reportJson(plan: Plan): string {
  const { id, model, replacement, removedLayers, originalParameters, prunedParameters, stability } = plan;
  return `${JSON.stringify({ plan: id, model, replacement, removedLayers, originalParameters, prunedParameters, stability }, null, 2)}\n`;
}

const csvCell = (value: unknown) => {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** One row per measurement: perplexity per dataset, accuracy per task, and the plan-wide figures. */
export function reportCsv(plan: Plan): string {
  const rows: unknown[][] = [['measure', 'dataset_or_task', 'original', 'pruned', 'agreement', 'stability', 'samples_or_tokens']];
  const report = plan.stability;
  for (const p of report?.perplexity ?? []) rows.push(['perplexity', p.dataset, p.original, p.pruned, '', '', p.tokens]);
  for (const t of report?.tasks ?? []) rows.push(['accuracy', t.task, t.accuracyOriginal, t.accuracyPruned, t.agreement, t.stability, t.samples]);
  rows.push(['parameters', '', plan.originalParameters, plan.prunedParameters, '', '', '']);
  rows.push(['parameter_reduction', '', '', report?.parameterReduction, '', '', '']);
  rows.push(['stability', '', '', '', '', report?.stability, '']);
  rows.push(['hidden_state_cosine', '', '', report?.hiddenStateCosine, '', '', '']);
  return `${rows.map((row) => row.map(csvCell).join(',')).join('\n')}\n`;
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
