/**
 * Per-request batched loads of nested fields (DataLoader): every `model` of the plans in one response
 * is read in one query, every model's `plans` in one, and so on, so that `models { plans { model
 * events stability } }` costs a constant number of queries whatever the number of models and plans.
 *
 * One RequestLoaders per HTTP request or graphql-ws operation (made in the context, each loader only
 * when first used). Loaders batch but do not memoize (`cache: false`): a subscription's context lives
 * as long as the subscription, and each of its events must read what is stored then. Nested fields are
 * reached only from parents the tenant may see, so the batch reads filter by id, not by tenant.
 */
import DataLoader from 'dataloader';
import type { Services } from './context.js';
import { ErrorCode, GatewayError } from './errors.js';
import type { RequestDeadline } from './limits/http-transport.js';
import { SLICE_MS } from './limits/fair-execution.js';
import type { LayerImportance } from './importance/importance.type.js';
import type { Model } from './models/model.type.js';
import type { PruningPlan } from './plans/plan.type.js';
import type { ProgressEvent } from './progress/progress.type.js';
import type { StabilityReport } from './stability/stability.type.js';

/** Keys per query at most: a huge response is read in bounded queries, with other requests served between them. */
export const MAX_BATCH = 500;
const BATCH = { cache: false, maxBatchSize: MAX_BATCH } as const;

/** When the current run of batches began without a turn of the event loop; null: none since the last turn. */
let busySince: number | null = null;

/**
 * Resolves at once unless batches have run for SLICE_MS without a break (SQLite answers synchronously,
 * so a response of thousands of rows would otherwise be read in microtasks, holding every other request
 * up); then on a later turn of the event loop, as fair-execution.ts does for fields.
 */
async function takeTurn(): Promise<void> {
  const now = performance.now();
  if (busySince === null) {
    busySince = now;
    setImmediate(() => (busySince = null));
    return;
  }
  if (now - busySince < SLICE_MS) return;
  await new Promise((resolve) => setImmediate(resolve));
}

export class RequestLoaders {
  private modelLoader?: DataLoader<string, Model>;
  private plansOfModelLoader?: DataLoader<string, PruningPlan[]>;
  private importanceOfModelLoader?: DataLoader<string, LayerImportance[]>;
  private profilesOfPlanLoader?: DataLoader<string, LayerImportance[]>;
  private stabilityOfPlanLoader?: DataLoader<string, StabilityReport | null>;
  private readonly eventLoaders = new Map<string, DataLoader<string, ProgressEvent[]>>();

  /** `deadline`: the request's (HTTP); a batch after it is refused as the fields are (checkDeadline). */
  constructor(
    private readonly services: Services,
    private readonly deadline?: RequestDeadline,
  ) {}

  /** A loader whose batch function answers a map; keys it lacks get `missing(key)`. */
  private mapLoader<V>(load: (keys: readonly string[]) => Promise<Map<string, V>>, missing: (key: string) => V | Error): DataLoader<string, V> {
    return new DataLoader<string, V>(async (keys) => {
      await takeTurn();
      this.deadline?.check();
      const found = await load([...new Set(keys)]);
      return keys.map((key) => (found.has(key) ? found.get(key)! : missing(key)));
    }, BATCH);
  }

  /** A plan's model (NOT_FOUND, as before, should it be gone). */
  get model(): DataLoader<string, Model> {
    return (this.modelLoader ??= this.mapLoader(
      (ids) => this.services.models.getMany(ids),
      (id) => new GatewayError(ErrorCode.NOT_FOUND, `modelId: model ${JSON.stringify(id)} not found`, { field: 'modelId' }),
    ));
  }

  get plansOfModel(): DataLoader<string, PruningPlan[]> {
    return (this.plansOfModelLoader ??= this.mapLoader((ids) => this.services.plans.listByModels(ids), () => []));
  }

  get importanceOfModel(): DataLoader<string, LayerImportance[]> {
    return (this.importanceOfModelLoader ??= this.mapLoader((ids) => this.services.importance.forModels(ids), () => []));
  }

  get profilesOfPlan(): DataLoader<string, LayerImportance[]> {
    return (this.profilesOfPlanLoader ??= this.mapLoader((ids) => this.services.importance.forPlans(ids), () => []));
  }

  get stabilityOfPlan(): DataLoader<string, StabilityReport | null> {
    return (this.stabilityOfPlanLoader ??= this.mapLoader((ids) => this.services.stability.forPlans(ids), () => null));
  }

  /** A plan's events with these arguments; plans asked with the same `after` and `limit` share a query. */
  events(after: number | null | undefined, limit: number | null | undefined): DataLoader<string, ProgressEvent[]> {
    const key = `${after ?? ''}/${limit ?? ''}`;
    let loader = this.eventLoaders.get(key);
    if (!loader) {
      loader = this.mapLoader((ids) => this.services.plans.eventsOfMany(ids, after, limit), () => []);
      this.eventLoaders.set(key, loader);
    }
    return loader;
  }
}
