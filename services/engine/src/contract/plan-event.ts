/**
 * A progress event of a running plan, as the engine reports it and a worker posts it. Room for what
 * larger runs report: the layer a streamed pass is at and the bytes it has read (also in the message).
 */
import { z } from 'zod';
import { parseWith } from './parse.js';
import { PLAN_STAGES } from './plan-stage.js';

export const PlanEventSchema = z.object({
  stage: z.enum(PLAN_STAGES),
  /** The whole plan's progress, 0..1 (see stageProgress). */
  progress: z.number().min(0).max(1),
  message: z.string(),
  step: z.number().int().min(0).optional(),
  totalSteps: z.number().int().min(0).optional(),
  loss: z.number().optional(),
  validationLoss: z.number().nullable().optional(),
  learningRate: z.number().optional(),
  tokensPerSecond: z.number().optional(),
  /** Layer-streamed passes: the 0-based layer just computed (-1: the embeddings; `layers`: the LM head), of `layers`. */
  layer: z.number().int().min(-1).optional(),
  layers: z.number().int().min(1).optional(),
  /** Layer-streamed passes: weight bytes read from the model's files so far in the current pass. */
  bytesRead: z.number().min(0).optional(),
  /** Sweeps: the candidate this event is about (absent: the sweep as a whole). */
  candidateId: z.string().optional(),
});
export type PlanEvent = z.infer<typeof PlanEventSchema>;

export function parsePlanEvent(value: unknown): PlanEvent {
  return parseWith(PlanEventSchema, value, 'the progress event');
}
