import 'reflect-metadata';
import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import type { GatewayContext } from '../context.js';
import { DateTimeScalar } from '../scalars.js';
import type { AuthService } from './auth.service.js';
import { ApiToken, NewApiToken, Role, Tenant, Viewer } from './auth.type.js';
import { requireClient } from './principal.js';

@Resolver()
export class AuthResolver {
  constructor(private readonly auth: AuthService) {}

  @Query(() => Viewer, { description: 'The tenant and role of the API token that sent the request.' })
  viewer(@Ctx() ctx: GatewayContext): Promise<Viewer> {
    return this.auth.viewer(requireClient(ctx));
  }

  @Query(() => [ApiToken], {
    description: "Admins only: a tenant's API tokens (default: the caller's tenant; admins of the default tenant: any tenant), revoked and expired ones included. Never their values.",
  })
  apiTokens(@Arg('tenantId', () => ID, { nullable: true }) tenantId: string | null, @Ctx() ctx: GatewayContext): Promise<ApiToken[]> {
    return this.auth.apiTokens(tenantId, requireClient(ctx));
  }

  @Query(() => [Tenant], { description: "Admins of the default tenant: every tenant, oldest first; anyone else: their own." })
  tenants(@Ctx() ctx: GatewayContext): Promise<Tenant[]> {
    return this.auth.tenants(requireClient(ctx));
  }

  @Mutation(() => Tenant, { description: "Admins of the default tenant only: a new tenant, with no tokens yet (see createApiToken)." })
  createTenant(@Arg('name', () => String) name: string, @Ctx() ctx: GatewayContext): Promise<Tenant> {
    return this.auth.createTenant(name, requireClient(ctx));
  }

  @Mutation(() => NewApiToken, { description: "Admins only (of the tenant, or of the default tenant): a new API token, returned this once." })
  createApiToken(
    @Arg('tenantId', () => ID) tenantId: string,
    @Arg('role', () => Role, { defaultValue: Role.MEMBER }) role: Role,
    @Arg('expiresInDays', () => Int, { nullable: true, description: 'Refused after this many days (1 to 3650). Default: never expires.' }) expiresInDays: number | null,
    @Arg('expiresAt', () => DateTimeScalar, { nullable: true, description: 'Refused from this time on (instead of expiresInDays).' }) expiresAt: Date | null,
    @Ctx() ctx: GatewayContext,
  ): Promise<NewApiToken> {
    return this.auth.createApiToken(tenantId, role, requireClient(ctx), { expiresInDays, expiresAt });
  }

  @Mutation(() => ApiToken, {
    description:
      "Admins only (of the token's tenant, or of the default tenant): the token is refused from now on, on every replica. Revoking a revoked token answers it unchanged; the default tenant's last usable admin token cannot be revoked (CONFLICT).",
  })
  revokeApiToken(@Arg('id', () => ID) id: string, @Ctx() ctx: GatewayContext): Promise<ApiToken> {
    return this.auth.revokeApiToken(id, requireClient(ctx));
  }
}
