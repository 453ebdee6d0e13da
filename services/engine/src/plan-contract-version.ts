/**
 * The version of the plan contract between the gateway and its workers: the shape of the config a
 * claim carries and of what a worker sends back. Defined once here; the gateway imports it (through the
 * light entry point) and stamps every `claimPlan` answer with it, and a worker runs only a plan whose
 * version equals its own (a different version could be misread: see `runWorker`).
 *
 * Bump it on any change a worker of the previous version would misread: a renamed or re-typed config
 * field, a new field it must not ignore, a changed meaning.
 */
export const PLAN_CONTRACT_VERSION = 4; // 4: `healing` and `sweep`/`fromCandidate` in the spec, the HEALING stage, candidate ids on events
