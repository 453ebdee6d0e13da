import 'reflect-metadata';
import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeScalar } from '../scalars.js';

export enum Role {
  /** Everything a member can do, plus creating API tokens (and, in the default tenant, tenants). */
  ADMIN = 'ADMIN',
  /** Sees and changes its tenant's models and plans. */
  MEMBER = 'MEMBER',
}
registerEnumType(Role, { name: 'Role', description: 'What an API token may do within its tenant.' });

export enum ApiTokenOrigin {
  /** STREAMLINE_ADMIN_TOKEN: replaced (revoked) when a later start is given another value. */
  ENVIRONMENT = 'ENVIRONMENT',
  /** The admin token the first start generated and printed; replaced like ENVIRONMENT. */
  GENERATED = 'GENERATED',
  /** createApiToken: valid until it expires or is revoked; restarts never touch it. */
  API = 'API',
}
registerEnumType(ApiTokenOrigin, { name: 'ApiTokenOrigin', description: 'Where an API token came from.' });

@ObjectType({ description: 'An owner of models and plans; a tenant sees and changes only its own.' })
export class Tenant {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => DateTimeScalar)
  createdAt!: Date;
}

@ObjectType({ description: 'A new API token. `token` is shown this once; only its SHA-256 is stored.' })
export class NewApiToken {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { description: 'The token, for `Authorization: Bearer <token>` (HTTP) or the `authorization` connection parameter (graphql-ws).' })
  token!: string;

  @Field(() => Role)
  role!: Role;

  @Field(() => Tenant)
  tenant!: Tenant;

  @Field(() => DateTimeScalar)
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Refused from this time on; null: never expires.' })
  expiresAt!: Date | null;
}

@ObjectType({ description: 'An API token as admins see it in lists: never its value or hash.' })
export class ApiToken {
  @Field(() => ID)
  id!: string;

  @Field(() => Role)
  role!: Role;

  @Field(() => Tenant)
  tenant!: Tenant;

  @Field(() => ApiTokenOrigin)
  origin!: ApiTokenOrigin;

  @Field(() => DateTimeScalar)
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'The last request that presented it, to within a minute; null: never used.' })
  lastUsedAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Refused from this time on; null: never expires.' })
  expiresAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Refused since then; null: not revoked. A revoked token is never valid again.' })
  revokedAt!: Date | null;
}

@ObjectType({ description: 'Who the request is: the tenant and role of its API token.' })
export class Viewer {
  @Field(() => Tenant)
  tenant!: Tenant;

  @Field(() => Role)
  role!: Role;
}
