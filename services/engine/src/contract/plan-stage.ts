/**
 * The stages a plan goes through, in order: the engine reports them, the gateway stores and publishes
 * them, the API and the SDK show them. Declared once here.
 */
import { enumObject } from './enum-object.js';

export const PLAN_STAGES = ['LOADING', 'PROFILING', 'COLLECTING', 'TRAINING', 'HEALING', 'ASSEMBLING', 'EVALUATING', 'UPLOADING', 'DONE'] as const;
export type PlanStage = (typeof PLAN_STAGES)[number];
export const PlanStage = enumObject(PLAN_STAGES);
