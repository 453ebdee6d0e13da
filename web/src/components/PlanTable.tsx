import type { PlanSummary } from '@streamline/sdk/browser';
import { formatTime } from '../format.js';
import { Link, planPath } from '../router.js';
import { ScrollTable } from './Table.js';

export function PlanTable({ plans, caption }: { plans: readonly PlanSummary[]; caption: string }) {
  if (plans.length === 0) return <p>No plans yet.</p>;
  return (
    <ScrollTable label={caption} caption={caption} columns={['Plan', 'Kind', 'Block', 'Status', 'Created']}>
      {plans.map((plan) => (
        <tr key={plan.id}>
          <td>
            <Link to={planPath(plan.id)}>{plan.id}</Link>
          </td>
          <td>{plan.dryRun ? 'dry run' : plan.replacement}</td>
          <td>{plan.dryRun ? 'every size' : plan.removedLayers.length ? `layers ${plan.removedLayers.join(', ')}` : `${plan.layersToPrune} layers`}</td>
          <td>
            <span className={`status status-${plan.status.toLowerCase()}`}>{plan.status}</span>
          </td>
          <td>{formatTime(plan.createdAt)}</td>
        </tr>
      ))}
    </ScrollTable>
  );
}
