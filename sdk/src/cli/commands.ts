/**
 * The CLI's commands, each a thin layer over the SDK: parse options, call the client, print. With --json
 * a command writes exactly one JSON document to stdout; progress and diagnostics go to stderr.
 */
import type { StreamlineClient } from '../client.js';
import type { CreatePruningPlanInput, Plan, PlanStatus, ReplacementKind, Role, SweepInput } from '../types.js';
import { duration, jsonForDisplay } from './format.js';
import { heatmap } from './heatmap.js';
import { ProgressLine } from './progress-line.js';
import { doctor } from './doctor.js';
import { type ConnectionSettings, UsageError } from './settings.js';
import { candidatesCsv, candidatesTable, tradeoffChart } from './sweep-views.js';
import { downloadsView, modelsTable, modelView, newTokenView, plansTable, planView, reportView, tenantsTable, tokensTable } from './views.js';

export interface CommandContext {
  readonly client: StreamlineClient;
  /** The gateway's URL and the token, with where each came from. */
  readonly settings: ConnectionSettings;
  readonly json: boolean;
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: readonly string[];
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
}

/** A command's option names beyond the global ones (--url, --token, --json, --help). */
export type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

export interface Command {
  readonly usage: string;
  readonly options: OptionSpec;
  /** Resolves to the exit status. */
  run(ctx: CommandContext): Promise<number>;
}

const REPLACEMENTS: readonly ReplacementKind[] = ['NONE', 'LINEAR', 'FFN', 'SWIGLU', 'LAYER'];
const STATUSES: readonly PlanStatus[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
const ROLES: readonly Role[] = ['MEMBER', 'ADMIN'];

export const COMMANDS: Record<string, Command> = {
  'models register': {
    usage: 'models register --name NAME (--source URI | --from-plan PLAN_ID) [--tokenizer URI]',
    options: { name: { type: 'string' }, source: { type: 'string' }, 'from-plan': { type: 'string' }, tokenizer: { type: 'string' } },
    async run(ctx) {
      const source = optional(ctx, 'source');
      const fromPlan = optional(ctx, 'from-plan');
      if ((source === undefined) === (fromPlan === undefined)) throw new UsageError('give exactly one of --source URI and --from-plan PLAN_ID (a SUCCEEDED plan whose output becomes the model)');
      const name = required(ctx, 'name');
      const tokenizer = optional(ctx, 'tokenizer');
      const model = await ctx.client.registerModel(source !== undefined ? { name, source, tokenizer } : { name, fromPlan, tokenizer });
      return print(ctx, model, () => modelsTable([model]));
    },
  },
  'models list': {
    usage: 'models list',
    options: {},
    async run(ctx) {
      const models = await ctx.client.models();
      return print(ctx, models, () => modelsTable(models));
    },
  },
  'models show': {
    usage: 'models show MODEL_ID',
    options: {},
    async run(ctx) {
      const model = await ctx.client.model(id(ctx, 'MODEL_ID'));
      return print(ctx, model, () => modelView(model));
    },
  },
  'models delete': {
    usage: 'models delete MODEL_ID [--force]   (--force: cancel its running plans, delete it with every plan and their outputs)',
    options: { force: { type: 'boolean' } },
    async run(ctx) {
      const modelId = id(ctx, 'MODEL_ID');
      const force = Boolean(ctx.values.force);
      // Counted before, to say what went: the gateway answers only whether the model was deleted.
      const plans = force ? (await ctx.client.model(modelId)).plans : [];
      const active = plans.filter((plan) => plan.status === 'QUEUED' || plan.status === 'RUNNING').length;
      const deleted = await ctx.client.deleteModel(modelId, { force });
      return print(ctx, { id: modelId, deleted, deletedPlans: plans.length, cancelledPlans: active }, () =>
        plans.length ? `deleted model ${modelId} with ${plans.length} plan(s) (${active} cancelled first), their outputs and work folders` : `deleted model ${modelId}`,
      );
    },
  },
  'plans create': {
    usage:
      'plans create --model ID (--layers N | --sparsity F) [--replacement NONE|LINEAR|FFN|SWIGLU|LAYER] [--start-layer S]\n' +
      '             --calibration URI [--samples N] [--seq-len L] [--epochs E] [--min-steps N] [--batch-size B] [--learning-rate LR] [--seed S]\n' +
      '             [--eval-task URI]... [--dry-run] [--watch]\n' +
      '  a sweep:   plans create --model ID --sweep 1..3 [--top-starts 1] [--kinds layer,swiglu] [--iterative] --calibration URI ... [--watch [--csv]]',
    options: {
      model: { type: 'string' },
      layers: { type: 'string' },
      sparsity: { type: 'string' },
      replacement: { type: 'string' },
      'start-layer': { type: 'string' },
      calibration: { type: 'string' },
      samples: { type: 'string' },
      'seq-len': { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      'learning-rate': { type: 'string' },
      'min-steps': { type: 'string' },
      seed: { type: 'string' },
      'eval-task': { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      watch: { type: 'boolean' },
      sweep: { type: 'string' },
      'top-starts': { type: 'string' },
      kinds: { type: 'string' },
      iterative: { type: 'boolean' },
      csv: { type: 'boolean' },
    },
    async run(ctx) {
      const plan = await ctx.client.createPruningPlan(planInput(ctx));
      if (ctx.values.watch) return watch(ctx, plan.id);
      return print(ctx, plan, () => planView(plan));
    },
  },
  'plans candidates': {
    usage: 'plans candidates PLAN_ID [--csv]   (a sweep\'s candidates: a table and the trade-off chart, or CSV)',
    options: { csv: { type: 'boolean' } },
    async run(ctx) {
      const plan = await ctx.client.plan(id(ctx, 'PLAN_ID'), { eventsLimit: 1 });
      if (ctx.values.csv && !ctx.json) return print(ctx, plan.candidates, () => candidatesCsv(plan.candidates));
      return print(ctx, plan.candidates, () => (plan.candidates.length ? sweepView(plan) : `plan ${plan.id} has no candidates (${plan.status})`));
    },
  },
  'plans export-candidate': {
    usage: 'plans export-candidate PLAN_ID CANDIDATE_ID [--watch]   (publish a sweep candidate\'s checkpoint from its trained weights)',
    options: { watch: { type: 'boolean' } },
    async run(ctx) {
      const [planId, candidateId] = ids(ctx, 'PLAN_ID', 'CANDIDATE_ID');
      const plan = await ctx.client.exportCandidate(planId, candidateId);
      if (ctx.values.watch) return watch(ctx, plan.id);
      return print(ctx, plan, () => planView(plan));
    },
  },
  'plans cancel-candidate': {
    usage: 'plans cancel-candidate PLAN_ID CANDIDATE_ID   (one candidate of a running sweep; the others go on)',
    options: {},
    async run(ctx) {
      const [planId, candidateId] = ids(ctx, 'PLAN_ID', 'CANDIDATE_ID');
      const plan = await ctx.client.cancelCandidate(planId, candidateId);
      return print(ctx, plan, () => `cancelling candidate ${candidateId} of plan ${planId}`);
    },
  },
  'plans list': {
    usage: `plans list [--status ${STATUSES.join('|')}]`,
    options: { status: { type: 'string' } },
    async run(ctx) {
      const status = optional(ctx, 'status');
      const plans = await ctx.client.plans(status === undefined ? undefined : oneOf('--status', status.toUpperCase(), STATUSES));
      return print(ctx, plans, () => plansTable(plans));
    },
  },
  'plans show': {
    usage: 'plans show PLAN_ID',
    options: {},
    async run(ctx) {
      const plan = await ctx.client.plan(id(ctx, 'PLAN_ID'));
      return print(ctx, plan, () => planView(plan));
    },
  },
  'plans cancel': {
    usage: 'plans cancel PLAN_ID',
    options: {},
    async run(ctx) {
      const plan = await ctx.client.cancelPlan(id(ctx, 'PLAN_ID'));
      return print(ctx, plan, () => planView(plan));
    },
  },
  'plans retry': {
    usage: 'plans retry PLAN_ID [--watch]   (a new plan with the settings of a FAILED or CANCELLED one)',
    options: { watch: { type: 'boolean' } },
    async run(ctx) {
      const plan = await ctx.client.retryPlan(id(ctx, 'PLAN_ID'));
      if (ctx.values.watch) return watch(ctx, plan.id);
      return print(ctx, plan, () => planView(plan));
    },
  },
  'plans downloads': {
    usage: 'plans downloads PLAN_ID [--expires SECONDS]   (pre-signed URLs of an output in S3; default 3600 s, at most 7 days)',
    options: { expires: { type: 'string' } },
    async run(ctx) {
      const planId = id(ctx, 'PLAN_ID');
      const raw = optional(ctx, 'expires');
      const seconds = raw === undefined ? undefined : Number(raw);
      if (seconds !== undefined && !Number.isInteger(seconds)) throw new UsageError(`--expires must be a whole number of seconds, not ${JSON.stringify(raw)}`);
      const [downloads, plan] = await Promise.all([ctx.client.downloads(planId, seconds), ctx.client.plan(planId, { eventsLimit: 1 })]);
      return print(ctx, downloads, () => downloadsView(planId, plan.outputUri ?? null, downloads));
    },
  },
  'plans watch': {
    usage: 'plans watch PLAN_ID',
    options: {},
    run: (ctx) => watch(ctx, id(ctx, 'PLAN_ID')),
  },
  'importance show': {
    usage: 'importance show PLAN_ID [--metric COSINE|ANGULAR_DISTANCE|BLOCK_INFLUENCE]',
    options: { metric: { type: 'string' } },
    async run(ctx) {
      const plan = await ctx.client.plan(id(ctx, 'PLAN_ID'));
      const metric = oneOf('--metric', (optional(ctx, 'metric') ?? 'COSINE').toUpperCase(), ['COSINE', 'ANGULAR_DISTANCE', 'BLOCK_INFLUENCE'] as const);
      const profiles = plan.profiles.filter((p) => p.metric === metric);
      return print(ctx, profiles, () => heatmap(profiles, { color: colourful(ctx.stdout) }));
    },
  },
  'tenants list': {
    usage: 'tenants list   (admins of the default tenant: every tenant; anyone else: their own)',
    options: {},
    async run(ctx) {
      const tenants = await ctx.client.tenants();
      return print(ctx, tenants, () => tenantsTable(tenants));
    },
  },
  'tenants create': {
    usage: 'tenants create --name NAME   (admins of the default tenant; then `tokens create --tenant ID` gives it a token)',
    options: { name: { type: 'string' } },
    async run(ctx) {
      const tenant = await ctx.client.createTenant(required(ctx, 'name'));
      return print(ctx, tenant, () => `created tenant ${tenant.name} (${tenant.id}); give it a token: streamline tokens create --tenant ${tenant.id} --role ADMIN`);
    },
  },
  'tokens list': {
    usage: "tokens list [--tenant TENANT_ID]   (admins: a tenant's API tokens, never their values)",
    options: { tenant: { type: 'string' } },
    async run(ctx) {
      const tokens = await ctx.client.apiTokens(optional(ctx, 'tenant'));
      return print(ctx, tokens, () => tokensTable(tokens));
    },
  },
  'tokens create': {
    usage: `tokens create --tenant TENANT_ID [--role ${ROLES.join('|')}] [--expires-in-days N]   (the token is printed this once)`,
    options: { tenant: { type: 'string' }, role: { type: 'string' }, 'expires-in-days': { type: 'string' } },
    async run(ctx) {
      const role = optional(ctx, 'role');
      const token = await ctx.client.createApiToken(required(ctx, 'tenant'), {
        role: role === undefined ? undefined : oneOf('--role', role.toUpperCase(), ROLES),
        expiresInDays: integer(ctx, 'expires-in-days'),
      });
      return print(ctx, token, () => newTokenView(token));
    },
  },
  'tokens revoke': {
    usage: 'tokens revoke TOKEN_ID   (refused from now on, on every replica)',
    options: {},
    async run(ctx) {
      const token = await ctx.client.revokeApiToken(id(ctx, 'TOKEN_ID'));
      return print(ctx, token, () => `revoked API token ${token.id} (${token.role} of tenant ${token.tenant.name}) at ${token.revokedAt}`);
    },
  },
  doctor: {
    usage: 'doctor   (is the gateway reachable, the token valid, a worker connected, the storage writable?)',
    options: {},
    async run(ctx) {
      const checks = await doctor(ctx.client, ctx.settings);
      print(ctx, checks, () => checks.map((check) => `${check.status.padEnd(4)}  ${check.name.padEnd(8)}  ${check.detail}`).join('\n'));
      return checks.some((check) => check.status === 'fail') ? 1 : 0;
    },
  },
  'report show': {
    usage: 'report show PLAN_ID',
    options: {},
    async run(ctx) {
      const plan = await ctx.client.plan(id(ctx, 'PLAN_ID'));
      return print(ctx, plan.stability, () => reportView(plan));
    },
  },
};

/** Follows a plan to its end: progress on stderr, then the finished plan; non-zero unless it SUCCEEDED. */
async function watch(ctx: CommandContext, planId: string): Promise<number> {
  const handle = ctx.client.planHandle(planId);
  const line = new ProgressLine(ctx.stderr);
  let plan: Plan;
  try {
    for await (const event of handle.progress()) line.update(event);
    plan = await handle.details();
  } finally {
    line.finish();
  }
  line.end(plan.status, plan.progress);
  if (plan.candidates.length && ctx.values.csv && !ctx.json) print(ctx, plan, () => candidatesCsv(plan.candidates));
  else if (plan.candidates.length) print(ctx, plan, () => sweepView(plan));
  else if (plan.sweepEstimate) print(ctx, plan, () => `${planView(plan)}\n${sweepEstimateView(plan.sweepEstimate!)}`);
  else print(ctx, plan, () => `${planView(plan)}${plan.stability ? `\n\n${reportView(plan)}` : ''}`);
  if (plan.status === 'SUCCEEDED') return 0;
  ctx.stderr.write(`streamline: plan ${plan.id} ${plan.status}${plan.error ? `: ${plan.error}` : ''}\n`);
  return 1;
}

function sweepEstimateView(estimate: NonNullable<Plan['sweepEstimate']>): string {
  return `  sweep estimate  ${estimate.candidates} candidates, roughly ${duration(estimate.seconds)} (tasks not counted), ${(estimate.hiddenStateBytes / 2 ** 20).toFixed(1)} MiB of hidden states`;
}

/** A finished sweep: what it is, its candidates, the chart, and how to export one. */
function sweepView(plan: Plan): string {
  const front = plan.candidates.filter((c) => c.pareto).length;
  return [
    `plan ${plan.id}  ${plan.status}  sweep of ${plan.candidates.length} candidates, ${front} on the Pareto front (*)`,
    `  model  ${plan.model.name} (${plan.model.id})`,
    `  export one with: streamline plans export-candidate ${plan.id} CANDIDATE`,
    '',
    candidatesTable(plan.candidates),
    '',
    tradeoffChart(plan.candidates),
  ].join('\n');
}

/** `--sweep 1..3` (a range) or `--sweep 1,2,4` (a list) with `--top-starts` and `--kinds layer,swiglu`. */
export function sweepInput(ctx: CommandContext): SweepInput {
  const raw = required(ctx, 'sweep');
  const range = /^(\d+)\.\.(\d+)$/.exec(raw);
  let blockSizes: number[];
  if (range) {
    const [from, to] = [Number(range[1]), Number(range[2])];
    if (from < 1 || to < from) throw new UsageError(`--sweep: ${JSON.stringify(raw)} is not a range FROM..TO with 1 <= FROM <= TO`);
    blockSizes = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  } else {
    blockSizes = raw.split(',').map((part) => Number(part.trim()));
    if (blockSizes.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--sweep: ${JSON.stringify(raw)} is not a range (1..3) or a list of block sizes (1,2,4)`);
  }
  const kinds = (optional(ctx, 'kinds') ?? 'LAYER').split(',').map((kind) => oneOf('--kinds', kind.trim().toUpperCase(), REPLACEMENTS));
  return { blockSizes, topStarts: integer(ctx, 'top-starts') ?? 1, replacements: kinds, iterative: Boolean(ctx.values.iterative) };
}

function planInput(ctx: CommandContext): CreatePruningPlanInput {
  const layers = optional(ctx, 'layers');
  const sparsity = optional(ctx, 'sparsity');
  const sweep = optional(ctx, 'sweep') === undefined ? undefined : sweepInput(ctx);
  if (sweep) {
    for (const flag of ['layers', 'sparsity', 'start-layer', 'replacement']) if (optional(ctx, flag) !== undefined) throw new UsageError(`--${flag} does not go with --sweep (a sweep chooses its blocks; give the kinds with --kinds)`);
  } else if ((layers === undefined) === (sparsity === undefined)) throw new UsageError('give exactly one of --layers N and --sparsity F');
  const training = {
    epochs: integer(ctx, 'epochs'),
    minSteps: integer(ctx, 'min-steps'),
    batchSize: integer(ctx, 'batch-size'),
    learningRate: number(ctx, 'learning-rate'),
    seed: integer(ctx, 'seed'),
  };
  const tasks = ctx.values['eval-task'] as string[] | undefined;
  return {
    modelId: required(ctx, 'model'),
    ...(sweep ? { sweep } : {}),
    layersToPrune: integer(ctx, 'layers'),
    targetSparsity: number(ctx, 'sparsity'),
    replacement: oneOf('--replacement', (optional(ctx, 'replacement') ?? 'LAYER').toUpperCase(), REPLACEMENTS),
    startLayer: integer(ctx, 'start-layer'),
    dryRun: Boolean(ctx.values['dry-run']),
    calibration: { source: required(ctx, 'calibration'), samples: integer(ctx, 'samples'), seqLen: integer(ctx, 'seq-len') },
    // Only what was given: the gateway fills in its defaults for the rest.
    ...(Object.values(training).some((v) => v !== undefined) ? { training: withoutUndefined(training) } : {}),
    ...(tasks?.length ? { evaluation: { tasks } } : {}),
  };
}

function print(ctx: CommandContext, value: unknown, text: () => string): number {
  ctx.stdout.write(ctx.json ? `${jsonForDisplay(value)}\n` : `${text()}\n`);
  return 0;
}

function colourful(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR;
}

function optional(ctx: CommandContext, name: string): string | undefined {
  const value = ctx.values[name];
  return typeof value === 'string' ? value : undefined;
}

function required(ctx: CommandContext, name: string): string {
  const value = optional(ctx, name);
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function ids(ctx: CommandContext, ...what: string[]): string[] {
  const values = ctx.positionals;
  if (values.length < what.length) throw new UsageError(`${what[values.length]} is required`);
  if (values.length > what.length) throw new UsageError(`unexpected argument ${JSON.stringify(values[what.length])}`);
  return [...values];
}

function id(ctx: CommandContext, what: string): string {
  const [value, ...extra] = ctx.positionals;
  if (!value) throw new UsageError(`${what} is required`);
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  return value;
}

function number(ctx: CommandContext, name: string): number | undefined {
  const value = optional(ctx, name);
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new UsageError(`--${name}: ${JSON.stringify(value)} is not a number`);
  return parsed;
}

function integer(ctx: CommandContext, name: string): number | undefined {
  const parsed = number(ctx, name);
  if (parsed !== undefined && !Number.isInteger(parsed)) throw new UsageError(`--${name}: ${parsed} is not an integer`);
  return parsed;
}

function oneOf<T extends string>(flag: string, value: string, accepted: readonly T[]): T {
  if (!(accepted as readonly string[]).includes(value)) throw new UsageError(`${flag}: ${JSON.stringify(value)} is not one of ${accepted.join(', ')}`);
  return value as T;
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
