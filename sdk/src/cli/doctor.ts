/**
 * `streamline doctor`: the checks a newcomer needs before the first plan, each with what to do when it
 * fails. The gateway's probes (/healthz, /readyz) and /metrics answer without a token; the token is
 * checked with the `viewer` query, the storage with `storageHealth` (the operator's admin token only).
 */
import type { StreamlineClient } from '../client.js';
import { ForbiddenError } from '../errors.js';
import type { ConnectionSettings } from './settings.js';

export interface DoctorCheck {
  readonly name: 'gateway' | 'database' | 'token' | 'workers' | 'storage';
  /** skip: could not be checked with this token, or after an earlier failure. */
  readonly status: 'ok' | 'fail' | 'skip';
  readonly detail: string;
}

const PROBE_TIMEOUT_MS = 5000;

export async function doctor(client: StreamlineClient, settings: ConnectionSettings): Promise<DoctorCheck[]> {
  const origin = new URL(settings.url).origin;
  const checks: DoctorCheck[] = [];
  const health = await probe(`${origin}/healthz`);
  if (!health.ok) {
    checks.push({ name: 'gateway', status: 'fail', detail: `${origin}/healthz: ${health.error}; is the gateway running (npm start)? Its address: --url or STREAMLINE_URL (now ${settings.url}, from ${settings.urlFrom})` });
    for (const name of ['database', 'token', 'workers', 'storage'] as const) checks.push({ name, status: 'skip', detail: 'the gateway is not reachable' });
    return checks;
  }
  checks.push({ name: 'gateway', status: 'ok', detail: `${settings.url} answers` });

  const ready = await probe(`${origin}/readyz`);
  const readyBody = ready.body as { database?: string; error?: string } | null;
  checks.push(
    ready.ok
      ? { name: 'database', status: 'ok', detail: `ready (${readyBody?.database ?? 'database'})` }
      : { name: 'database', status: 'fail', detail: `/readyz: ${readyBody?.error ?? ready.error}; see the gateway's log` },
  );

  if (!settings.token) {
    checks.push({ name: 'token', status: 'fail', detail: 'no API token: give one with --token TOKEN or STREAMLINE_TOKEN=TOKEN (a fresh `npm start` prints the admin token once)' });
  } else {
    try {
      const viewer = await client.viewer();
      checks.push({ name: 'token', status: 'ok', detail: `${viewer.role} of tenant ${viewer.tenant.name} (from ${settings.tokenFrom})` });
    } catch (error) {
      checks.push({ name: 'token', status: 'fail', detail: `the token from ${settings.tokenFrom} was refused: ${(error as Error).message.replace(/: send Authorization.*$/, '')}` });
    }
  }

  const metrics = await probe(`${origin}/metrics`, 'text');
  const workers = typeof metrics.body === 'string' ? /^streamline_workers (\d+)/m.exec(metrics.body)?.[1] : undefined;
  if (workers === undefined) {
    checks.push({ name: 'workers', status: 'skip', detail: `/metrics did not say (${metrics.error ?? 'no streamline_workers'})` });
  } else if (Number(workers) > 0) {
    checks.push({ name: 'workers', status: 'ok', detail: `${workers} connected (running a plan, or asking this gateway for one within the last 30 s)` });
  } else {
    checks.push({
      name: 'workers',
      status: 'fail',
      detail: 'none: plans stay QUEUED until a worker claims them. `npm start` runs STREAMLINE_WORKERS local workers (default 1); see docs/troubleshooting.md to attach another',
    });
  }

  if (checks.find((check) => check.name === 'token')?.status !== 'ok') {
    checks.push({ name: 'storage', status: 'skip', detail: 'needs a valid token' });
  } else {
    try {
      const storage = await client.storageHealth();
      checks.push(
        storage.writable
          ? { name: 'storage', status: 'ok', detail: `${storage.location} is writable` }
          : { name: 'storage', status: 'fail', detail: `${storage.location} is not writable: ${storage.error}` },
      );
    } catch (error) {
      if (!(error instanceof ForbiddenError)) throw error;
      checks.push({ name: 'storage', status: 'skip', detail: "only the default tenant's admins (the operator) may check the gateway's storage" });
    }
  }
  return checks;
}

async function probe(url: string, as: 'json' | 'text' = 'json'): Promise<{ ok: boolean; body: unknown; error?: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const body = as === 'json' ? await response.json().catch(() => null) : await response.text();
    return { ok: response.ok, body, ...(response.ok ? {} : { error: `HTTP ${response.status}` }) };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { ok: false, body: null, error: (error as Error).name === 'TimeoutError' ? `no answer within ${PROBE_TIMEOUT_MS} ms` : `${(error as Error).message}${cause ? ` (${cause})` : ''}` };
  }
}
