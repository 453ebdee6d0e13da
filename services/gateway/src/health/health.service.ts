/**
 * The checks behind `streamline doctor` that only the gateway can make: that its storage (the data
 * directory or STREAMLINE_STORAGE) takes a write. Operators only: the answer names the location.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { ClientPrincipal } from '../auth/principal.js';
import { Role } from '../auth/auth.type.js';
import { DEFAULT_TENANT_ID } from '../store/migrations.js';
import { openObjectStore } from '../engine.js';
import { ErrorCode, GatewayError } from '../errors.js';
import type { StorageHealth } from './health.type.js';

export interface HealthOptions {
  readonly dataDir?: string;
  /** STREAMLINE_STORAGE; default the data directory. */
  readonly storage?: string;
  readonly storageEnv?: NodeJS.ProcessEnv;
}

/** Probe objects go here; each is deleted at once. */
const PROBE_PREFIX = 'health/';

export class HealthService {
  constructor(private readonly options: HealthOptions) {}

  async storage(caller: ClientPrincipal): Promise<StorageHealth> {
    if (caller.role !== Role.ADMIN || caller.tenantId !== DEFAULT_TENANT_ID) {
      throw new GatewayError(ErrorCode.FORBIDDEN, "storageHealth needs an ADMIN token of the default tenant (the operator's)");
    }
    const storage = this.options.storage ?? resolve(this.options.dataDir ?? './.streamline');
    let location = storage;
    try {
      const store = await openObjectStore({ storage, env: this.options.storageEnv });
      location = store.uri;
      try {
        const key = `${PROBE_PREFIX}${randomUUID()}`;
        await store.put(key, Buffer.from('streamline storage probe\n'));
        await store.delete(key);
      } finally {
        store.destroy?.();
      }
      return { location, writable: true, error: null };
    } catch (error) {
      return { location, writable: false, error: (error as Error).message };
    }
  }
}
