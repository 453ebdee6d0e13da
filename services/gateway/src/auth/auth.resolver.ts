import 'reflect-metadata';
import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import type { GatewayContext } from '../context.js';
import type { AuthService } from './auth.service.js';
import { NewApiToken, Role, Tenant, Viewer } from './auth.type.js';
import { requireClient } from './principal.js';

@Resolver()
export class AuthResolver {
  constructor(private readonly auth: AuthService) {}

  @Query(() => Viewer, { description: 'The tenant and role of the API token that sent the request.' })
  viewer(@Ctx() ctx: GatewayContext): Promise<Viewer> {
    return this.auth.viewer(requireClient(ctx));
  }

  @Mutation(() => Tenant, { description: "Admins of the default tenant only: a new tenant, with no tokens yet (see createApiToken)." })
  createTenant(@Arg('name', () => String) name: string, @Ctx() ctx: GatewayContext): Promise<Tenant> {
    return this.auth.createTenant(name, requireClient(ctx));
  }

  @Mutation(() => NewApiToken, { description: "Admins only (of the tenant, or of the default tenant): a new API token, returned this once." })
  createApiToken(
    @Arg('tenantId', () => ID) tenantId: string,
    @Arg('role', () => Role, { defaultValue: Role.MEMBER }) role: Role,
    @Ctx() ctx: GatewayContext,
  ): Promise<NewApiToken> {
    return this.auth.createApiToken(tenantId, role, requireClient(ctx));
  }
}
