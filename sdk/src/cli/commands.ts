/**
 * The CLI's commands, each a thin layer over the SDK: parse options, call the client, print. With --json
 * a command writes exactly one JSON document to stdout; progress and diagnostics go to stderr.
 */
import type { StreamlineClient } from '../client.js';
import type { CreatePruningPlanInput, Plan, PlanStatus, ReplacementKind, Role } from '../types.js';
import { jsonForDisplay } from './format.js';
import { heatmap } from './heatmap.js';
import { ProgressLine } from './progress-line.js';
import { doctor } from './doctor.js';
import { type ConnectionSettings, UsageError } from './settings.js';
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
      '             --calibration URI [--samples N] [--seq-len L] [--epochs E] [--batch-size B] [--learning-rate LR]\n' +
      '             [--eval-task URI]... [--dry-run] [--watch]',
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
      'eval-task': { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      watch: { type: 'boolean' },
    },
    async run(ctx) {
      const plan = await ctx.client.createPruningPlan(planInput(ctx));
      if (ctx.values.watch) return watch(ctx, plan.id);
      return print(ctx, plan, () => planView(plan));
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
  print(ctx, plan, () => `${planView(plan)}${plan.stability ? `\n\n${reportView(plan)}` : ''}`);
  if (plan.status === 'SUCCEEDED') return 0;
  ctx.stderr.write(`streamline: plan ${plan.id} ${plan.status}${plan.error ? `: ${plan.error}` : ''}\n`);
  return 1;
}

function planInput(ctx: CommandContext): CreatePruningPlanInput {
  const layers = optional(ctx, 'layers');
  const sparsity = optional(ctx, 'sparsity');
  if ((layers === undefined) === (sparsity === undefined)) throw new UsageError('give exactly one of --layers N and --sparsity F');
  const training = {
    epochs: integer(ctx, 'epochs'),
    batchSize: integer(ctx, 'batch-size'),
    learningRate: number(ctx, 'learning-rate'),
  };
  const tasks = ctx.values['eval-task'] as string[] | undefined;
  return {
    modelId: required(ctx, 'model'),
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
