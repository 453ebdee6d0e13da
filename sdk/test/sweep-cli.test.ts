/**
 * Sweeps from the SDK and the `streamline` CLI (a real process) against a live gateway with a real
 * worker on stories260K: `plans create --sweep 1..3 --top-starts 2 --kinds layer,linear --watch` prints
 * the candidates' table and the trade-off chart, `plans candidates --csv` the CSV, and the SDK's
 * sweep() and exportCandidate() return the same candidates and a pruned checkpoint.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useGateway } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { candidatesCsv, candidateLabel, tradeoffChart } from '../src/cli/sweep-views.js';
import type { PlanCandidate } from '../src/index.js';


const candidate = (id: string, after: number, perplexity: number, pareto: boolean): PlanCandidate => ({
  id, status: 'DONE', start: 2, blockSize: 1, replacement: 'LAYER', iterative: false, removedLayers: [2], parametersBefore: 1000, parametersAfter: after,
  perplexityOriginal: 4, perplexity, trainingLoss: 0.1, validationLoss: 0.2, pareto, tasks: [],
});

describe('sweep views', () => {
  it('charts each candidate at its place, the front in capitals, the original as =', () => {
    const chart = tradeoffChart([candidate('a', 900, 5, true), candidate('b', 800, 9, false), candidate('c', 700, 8, true)], { width: 31, height: 5 });
    const rows = chart.split('\n').slice(1, 6);
    expect(rows[0]).toMatch(/^9\.00 \|\s{20}b$/); // 20 % removed of a 30 % axis: column 20
    expect(rows[4]).toMatch(/^4\.00 \|=$/);
    expect(chart).toContain('C'); // 30 % removed, on the front: the right edge
    expect(rows.join('\n')).toMatch(/A/);
    expect(chart.split('\n').at(-1)).toMatch(/0%\s+30\.0%$/);
    expect(candidateLabel(0)).toBe('a');
    expect(candidateLabel(26)).toBe('aa');
  });

  it('writes CSV with one row per candidate', () => {
    const csv = candidatesCsv([candidate('n1-s2-layer', 900, 5, true)]).split('\n');
    expect(csv[0]).toBe('id,status,start,block_size,replacement,iterative,removed_layers,parameters_before,parameters_after,perplexity_original,perplexity,training_loss,validation_loss,pareto');
    expect(csv[1]).toBe('n1-s2-layer,DONE,2,1,LAYER,false,2,1000,900,4,5,0.1,0.2,true');
  });
});

describe.runIf(runWithShared)('sweeps from the SDK and the CLI', () => {
  const live = useGateway({ workers: 1 });

  const streamline = (...args: string[]) => live.cli(...args);

  it('sweeps block sizes 1–3 with a table, a chart and CSV, and exports a candidate', async () => {
    const client = live.client();
    const model = await client.registerModel({ name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const calibration = ['--calibration', TINYSTORIES_URI, '--samples', '8', '--seq-len', '64', '--min-steps', '4', '--batch-size', '4'];
    const run = await streamline('plans', 'create', '--model', model.id, '--sweep', '1..3', '--top-starts', '2', '--kinds', 'layer,linear', ...calibration, '--watch');
    expect(run.status, run.stderr).toBe(0);
    // 3 sizes × 2 starts × 2 kinds, in the table, with the front marked; then the chart.
    const rows = run.stdout.split('\n').filter((line) => /^[a-l]\s+n\d-s\d-(layer|linear)\s+DONE/.test(line));
    expect(rows).toHaveLength(12);
    expect(rows.some((row) => row.trimEnd().endsWith('*'))).toBe(true);
    expect(run.stdout).toMatch(/perplexity \(up(, log scale)?\) vs parameters removed \(right\)/);
    expect(run.stdout).toMatch(/\+-{20,}/);
    const planId = /plan ([0-9a-f-]{36})/.exec(run.stdout)![1];

    const csv = await streamline('plans', 'candidates', planId, '--csv');
    expect(csv.status, csv.stderr).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^id,status,start,block_size,/);
    expect(lines).toHaveLength(13);

    // The SDK sees the same candidates, and exports one.
    const plan = await client.plan(planId);
    expect(plan.candidates.map((c) => c.id).sort()).toEqual(lines.slice(1).map((l) => l.split(',')[0]).sort());
    const chosen = plan.candidates.find((c) => c.pareto && c.replacement === 'LINEAR')!;
    const exported = await client.planHandle((await client.exportCandidate(planId, chosen.id)).id).wait();
    expect(exported).toMatchObject({ status: 'SUCCEEDED', removedLayers: chosen.removedLayers, prunedParameters: chosen.parametersAfter });
    const again = await client.sweep({ modelId: model.id, calibration: { source: TINYSTORIES_URI, samples: 8, seqLen: 64 }, training: { minSteps: 4, batchSize: 4 }, sweep: { blockSizes: [2], replacements: ['NONE'] } });
    expect(again.candidates).toHaveLength(1);
    expect(again.candidates[0]).toMatchObject({ blockSize: 2, replacement: 'NONE', status: 'DONE', trainingLoss: null });
  }, 600_000);
});
