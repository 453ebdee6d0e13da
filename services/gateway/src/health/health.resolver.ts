import 'reflect-metadata';
import { Ctx, Query, Resolver } from 'type-graphql';
import { requireClient } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';
import type { HealthService } from './health.service.js';
import { StorageHealth } from './health.type.js';

@Resolver()
export class HealthResolver {
  constructor(private readonly health: HealthService) {}

  @Query(() => StorageHealth, { description: "Admins of the default tenant: whether the gateway's storage takes a write now (streamline doctor)." })
  storageHealth(@Ctx() ctx: GatewayContext): Promise<StorageHealth> {
    return this.health.storage(requireClient(ctx));
  }
}
