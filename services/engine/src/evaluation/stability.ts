/**
 * Stability (LLM-Streamline paper): how well the pruned model keeps the original's behaviour on
 * multiple-choice items, weighting the items where the original model is most decided.
 *
 * For item i: σ_i = population standard deviation (ddof 0, as numpy's np.std) of the ORIGINAL model's
 * per-choice perplexities; w_i = exp(σ_i) / Σ_k exp(σ_k); a_i = 1 when the pruned model's correctness
 * equals the original's (both right or both wrong), else 0; stability = Σ_i w_i · a_i.
 *
 * Difference from the reference script (LLM-Streamline's stability computation): it counts the matching
 * items, `matches`, and then returns `sum(weights[i] for i in range(matches))` — the weights of the
 * FIRST `matches` items, whichever items actually matched. That is the paper's formula only when the
 * weights are all equal or the matching items happen to be the first ones. This implementation sums the
 * weights of the items that match, as the paper defines it, so its figures can differ from numbers the
 * reference script produced for the same predictions.
 */

/** What stability needs of one item. */
export interface StabilityItem {
  readonly gold: number;
  readonly predOriginal: number;
  readonly predPruned: number;
  /** The original model's per-choice perplexities. */
  readonly scoresOriginal: readonly number[];
}

/** Standard deviation with divisor n (ddof 0). */
export function populationStandardDeviation(values: readonly number[]): number {
  let sum = 0;
  for (const value of values) sum += value;
  const mean = sum / values.length;
  let squaredDeviations = 0;
  for (const value of values) squaredDeviations += (value - mean) ** 2;
  return Math.sqrt(squaredDeviations / values.length);
}

/**
 * w_i = exp(σ_i) / Σ_k exp(σ_k), computed as a softmax with the largest σ subtracted first: the same
 * value, but perplexities in the thousands (an untrained or badly pruned model) cannot overflow exp.
 */
export function stabilityWeights(sigmas: readonly number[]): number[] {
  let maxSigma = -Infinity;
  for (const sigma of sigmas) if (sigma > maxSigma) maxSigma = sigma;
  const exps = sigmas.map((sigma) => Math.exp(sigma - maxSigma));
  let total = 0;
  for (const value of exps) total += value;
  return exps.map((value) => value / total);
}

/**
 * 1 / Σ_i w_i²: how many items the stability weights effectively average over (n when all σ are equal,
 * 1 when one item holds all the weight). Because w_i grows as exp(σ_i) and σ_i is a standard deviation
 * of raw perplexities, one item with a σ a few units above the rest takes nearly all the weight: with
 * stories260K on COPA the largest σ is about 150 and the next weights are below 1e-4, so stability is
 * about 0 or 1 depending on that single item. This figure is reported beside stability to show it.
 */
export function stabilityEffectiveItems(scoresOriginal: readonly (readonly number[])[]): number {
  const weights = stabilityWeights(scoresOriginal.map((scores) => populationStandardDeviation(scores)));
  let sumOfSquares = 0;
  for (const weight of weights) sumOfSquares += weight * weight;
  return 1 / sumOfSquares;
}

/** Σ_i w_i · a_i over the items (see the file comment); NaN for no items. */
export function computeStability(items: readonly StabilityItem[]): number {
  if (items.length === 0) return NaN;
  const weights = stabilityWeights(items.map((item) => populationStandardDeviation(item.scoresOriginal)));
  let stability = 0;
  items.forEach((item, i) => {
    const originalCorrect = item.predOriginal === item.gold;
    const prunedCorrect = item.predPruned === item.gold;
    if (originalCorrect === prunedCorrect) stability += weights[i];
  });
  return stability;
}

/** Fraction of items where both models predict the same choice; NaN for no items. */
export function computeAgreement(items: readonly Pick<StabilityItem, 'predOriginal' | 'predPruned'>[]): number {
  if (items.length === 0) return NaN;
  let same = 0;
  for (const item of items) if (item.predOriginal === item.predPruned) same++;
  return same / items.length;
}
