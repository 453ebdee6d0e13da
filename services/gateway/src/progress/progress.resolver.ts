import 'reflect-metadata';
import { Arg, ID, Int, Resolver, Root, Subscription } from 'type-graphql';
import { requireClient } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';
import { ProgressEvent } from './progress.type.js';

@Resolver(() => ProgressEvent)
export class ProgressResolver {
  @Subscription(() => ProgressEvent, {
    description: 'Progress of one plan; replays events after `afterSeq` first, then streams live ones; completes when the plan ends.',
    subscribe: ({ args, context }) => {
      const ctx = context as GatewayContext;
      return ctx.services.progress.openStream(args.planId as string, args.afterSeq as number | null | undefined, requireClient(ctx).tenantId, ctx.backpressure);
    },
  })
  planProgress(
    @Root() event: ProgressEvent,
    @Arg('planId', () => ID) _planId: string,
    @Arg('afterSeq', () => Int, { nullable: true }) _afterSeq?: number | null,
  ): ProgressEvent {
    return event;
  }
}
