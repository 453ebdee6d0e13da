/** A model's importance profiles: those its newest finished dry run measured (Model page's heat map, New plan's picker). */
import { PlanDocument, type PlanSummary } from '@streamline/sdk/browser';
import { useSession } from '../session.js';
import { useAsync } from '../use-async.js';

/** The newest plan matching `keep`, by creation time. */
export function newest(plans: readonly PlanSummary[], keep: (plan: PlanSummary) => boolean): PlanSummary | undefined {
  return plans.filter(keep).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
}

/** The newest succeeded dry run among a model's plans, and its profiles (none while it has no such run). */
export function useDryRunProfiles(plans: readonly PlanSummary[]) {
  const { client } = useSession();
  const dryRun = newest(plans, (plan) => plan.dryRun && plan.status === 'SUCCEEDED');
  const profiles = useAsync(async () => (dryRun ? (await client.query(PlanDocument, { id: dryRun.id, eventsLimit: 1 })).plan?.profiles ?? [] : []), [client, dryRun?.id]);
  return { dryRun, profiles };
}
