/** STREAMLINE_INSPECT_TIMEOUT_MS: the deadline of a model inspection (see model-inspection.ts). */
import { DEFAULT_INSPECT_TIMEOUT_MS, inspectInThreads } from './model-inspection.js';
import type { InspectModel } from './model.service.js';

export function inspectModelFromEnv(env: NodeJS.ProcessEnv): InspectModel {
  const raw = env.STREAMLINE_INSPECT_TIMEOUT_MS;
  if (raw === undefined || raw === '') return inspectInThreads({ timeoutMs: DEFAULT_INSPECT_TIMEOUT_MS });
  const timeoutMs = Number(raw);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new Error(`STREAMLINE_INSPECT_TIMEOUT_MS=${JSON.stringify(raw)} is not a whole number of milliseconds from 1 to 600000`);
  }
  return inspectInThreads({ timeoutMs });
}
