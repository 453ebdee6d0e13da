/**
 * A sweep's candidates after the fact: cancelling one while the sweep runs, and exporting one — a new
 * plan that publishes the candidate's trained replacement as a pruned checkpoint, without training again
 * (its worker reads the weights the sweep published; see the engine's plan-runner.ts).
 */
import { parseCandidateId } from '../engine.js';
import { conflict, badInput } from '../errors.js';
import type { PlanLifecycle } from '../plans/plan.lifecycle.js';
import type { PlanService } from '../plans/plan.service.js';
import { PlanStatus, type PruningPlan } from '../plans/plan.type.js';

export class CandidateService {
  constructor(
    private readonly plans: PlanService,
    private readonly lifecycle: PlanLifecycle,
  ) {}

  /** A new QUEUED plan exporting a DONE candidate of one of the tenant's SUCCEEDED sweeps. */
  async export(planId: string, candidateId: string, tenantId: string): Promise<PruningPlan> {
    const sweep = await this.requireSweep(planId, tenantId);
    if (sweep.status !== PlanStatus.SUCCEEDED) throw conflict(`planId: plan ${planId} is ${sweep.status}; candidates are exported from a SUCCEEDED sweep`);
    const candidate = sweep.candidates.find((c) => c.id === candidateId);
    if (!candidate) throw badInput('candidateId', `${JSON.stringify(candidateId)} is not a candidate of plan ${planId}; its candidates are ${sweep.candidates.map((c) => c.id).join(', ')}`);
    if (candidate.status !== 'DONE') throw conflict(`candidateId: candidate ${candidateId} is ${candidate.status}; only DONE candidates can be exported`);
    const spec = {
      ...sweep.config,
      sweep: null,
      layersToPrune: candidate.blockSize,
      targetSparsity: null,
      estimatedSparsity: null,
      startLayer: candidate.start,
      replacement: candidate.replacement,
      dryRun: false,
      fromCandidate: { planId, candidateId },
    };
    return this.plans.enqueueSpec(sweep.modelId, spec, tenantId);
  }

  /** Marks one candidate of a QUEUED or RUNNING sweep cancelled; its worker skips or stops it, the others go on. */
  async cancel(planId: string, candidateId: string, tenantId: string): Promise<PruningPlan> {
    const sweep = await this.requireSweep(planId, tenantId);
    const spec = sweep.config.sweep!;
    const id = parseCandidateId(candidateId);
    const fits =
      id !== null && spec.blockSizes.includes(id.size) && ('iterative' in id ? spec.iterative : spec.replacements.some((kind) => kind.toLowerCase() === id.kind));
    if (!fits) {
      throw badInput(
        'candidateId',
        `${JSON.stringify(candidateId)} is not a candidate plan ${planId} makes: ids are n<size>-s<start>-<kind>${spec.iterative ? ' or n<size>-iterative' : ''} with size in ${spec.blockSizes.join(', ')} and kind in ${spec.replacements.map((k) => k.toLowerCase()).join(', ')}`,
      );
    }
    const updated = await this.lifecycle.cancelCandidate(planId, candidateId);
    if (!updated) throw conflict(`planId: plan ${planId} is ${(await this.plans.require(planId, 'planId', tenantId)).status}; candidates are cancelled while the sweep is QUEUED or RUNNING`);
    this.plans.publish(updated);
    return updated;
  }

  private async requireSweep(planId: string, tenantId: string): Promise<PruningPlan> {
    const plan = await this.plans.require(planId, 'planId', tenantId);
    if (!plan.config.sweep) throw badInput('planId', `plan ${planId} is not a sweep (it was created without input.sweep)`);
    return plan;
  }
}
