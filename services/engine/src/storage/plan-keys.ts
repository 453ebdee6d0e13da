/**
 * Where a plan's files live in the object store, for the worker that writes them and the gateway that
 * deletes them: its published outputs, and everything it keeps to resume on another machine (training
 * checkpoints, and beside them healing's and the finished sweep candidates).
 */
export const outputPrefix = (planId: string) => `outputs/${planId}/`;
export const planWorkPrefix = (planId: string) => `plans/${planId}/`;
export const checkpointPrefix = (planId: string) => `${planWorkPrefix(planId)}checkpoints/`;
