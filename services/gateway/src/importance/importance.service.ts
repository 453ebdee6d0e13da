import type { PruningPlan } from '../plans/plan.type.js';
import type { Db } from '../store/database.js';
import type { ImportanceStore, NewImportanceProfile } from './importance.store.js';
import { ImportanceMetric, type BlockScore, type LayerImportance } from './importance.type.js';

export class ImportanceService {
  constructor(private readonly store: ImportanceStore) {}

  /** `executor`: a transaction to write in (a finishing plan's). */
  save(profile: NewImportanceProfile, executor?: Db): Promise<LayerImportance> {
    return this.store.insert(profile, executor);
  }

  forModel(modelId: string): Promise<LayerImportance[]> {
    return this.store.listByModel(modelId);
  }

  forPlan(planId: string): Promise<LayerImportance[]> {
    return this.store.listByPlan(planId);
  }

  /** DataLoader batches: profiles of each model, of each plan. */
  forModels(modelIds: readonly string[]): Promise<Map<string, LayerImportance[]>> {
    return this.store.listByModels(modelIds);
  }

  forPlans(planIds: readonly string[]): Promise<Map<string, LayerImportance[]>> {
    return this.store.listByPlans(planIds);
  }

  /** The cosine profile for the block size `plan` pruned, among its profiles. */
  prunedBlockOf(plan: PruningPlan, profiles: readonly LayerImportance[]): LayerImportance | null {
    return profiles.find((p) => p.blockSize === plan.layersToPrune && p.metric === ImportanceMetric.COSINE) ?? null;
  }

  /** The plan's cosine profile for the block size it pruned. */
  async forPrunedBlock(plan: PruningPlan): Promise<LayerImportance | null> {
    const profiles = await this.store.listByPlan(plan.id);
    return profiles.find((p) => p.blockSize === plan.layersToPrune && p.metric === ImportanceMetric.COSINE) ?? null;
  }

  scores(profile: LayerImportance): BlockScore[] {
    return profile.startScores.map((score, start) => ({ startLayer: start, endLayer: start + profile.blockSize - 1, score }));
  }

  /** The block to prune: the most similar input and output for cosine; the least change for the distances. */
  best(profile: LayerImportance): BlockScore {
    const scores = this.scores(profile);
    const better = profile.metric === ImportanceMetric.COSINE ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
    return scores.reduce((best, candidate) => (better(candidate.score, best.score) ? candidate : best));
  }
}
