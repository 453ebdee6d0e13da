/**
 * What an evaluation uses when it is not told otherwise. Plain constants, so the gateway resolves a
 * plan's evaluation settings from the numbers the engine runs with.
 */

/** Tokens per perplexity window (or the model's context when shorter). */
export const DEFAULT_EVALUATION_SEQ_LEN = 256;
/** Windows scored per text file. */
export const DEFAULT_TEXT_WINDOWS = 64;
/** Without a calibration source: windows skipped at the start of every text file. */
export const DEFAULT_SKIP_WINDOWS = 32;
