import 'reflect-metadata';
import { Arg, Ctx, FieldResolver, Int, Resolver, Root } from 'type-graphql';
import { requireClient } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';
import { PruningPlan } from '../plans/plan.type.js';
import { DEFAULT_DOWNLOAD_SECONDS, DownloadService } from './download.service.js';
import { OutputDownload } from './download.type.js';

@Resolver(() => PruningPlan)
export class DownloadResolver {
  constructor(private readonly downloadsService: DownloadService) {}

  @FieldResolver(() => [OutputDownload], {
    nullable: true,
    description: "Pre-signed download URLs for every file of the output, for the plan's tenant; null unless the plan SUCCEEDED with its output in S3.",
  })
  downloads(
    @Root() plan: PruningPlan,
    @Ctx() ctx: GatewayContext,
    @Arg('expiresInSeconds', () => Int, { defaultValue: DEFAULT_DOWNLOAD_SECONDS, description: 'How long the URLs work: 1 to 604800 (7 days).' }) expiresInSeconds: number,
  ): Promise<OutputDownload[] | null> {
    return this.downloadsService.forPlan(plan, requireClient(ctx).tenantId, expiresInSeconds);
  }
}
