import type { PlanSummary } from '@streamline/sdk/browser';
import { formatTime } from '../format.js';
import { Link } from '../router.js';

export function PlanTable({ plans, caption }: { plans: readonly PlanSummary[]; caption: string }) {
  if (plans.length === 0) return <p>No plans yet.</p>;
  return (
    <div className="scroll" tabIndex={0} aria-label={`${caption}, scrollable`}>
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Plan</th>
            <th scope="col">Kind</th>
            <th scope="col">Block</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {plans.map((plan) => (
            <tr key={plan.id}>
              <td>
                <Link to={`/plans/${encodeURIComponent(plan.id)}`}>{plan.id}</Link>
              </td>
              <td>{plan.dryRun ? 'dry run' : plan.replacement}</td>
              <td>{plan.dryRun ? 'every size' : plan.removedLayers.length ? `layers ${plan.removedLayers.join(', ')}` : `${plan.layersToPrune} layers`}</td>
              <td>
                <span className={`status status-${plan.status.toLowerCase()}`}>{plan.status}</span>
              </td>
              <td>{formatTime(plan.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
