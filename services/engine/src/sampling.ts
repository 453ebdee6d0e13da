/**
 * Token sampling exactly as llama2.c's run.c: xorshift64* random numbers, float32 arithmetic,
 * temperature, then top-p (nucleus) or plain multinomial sampling. Reproducing run.c bit for bit is what
 * lets the engine match its published samples.
 */
const MASK64 = (1n << 64n) - 1n;

export class RunCRandom {
  private state: bigint;

  constructor(seed: number | bigint) {
    this.state = BigInt(seed) & MASK64;
  }

  nextU32(): number {
    let s = this.state;
    s ^= s >> 12n;
    s ^= (s << 25n) & MASK64;
    s ^= s >> 27n;
    this.state = s;
    return Number(((s * 0x2545f4914f6cdd1dn) & MASK64) >> 32n);
  }

  /** A float32 in [0, 1). */
  nextF32(): number {
    return Math.fround((this.nextU32() >>> 8) / 16777216);
  }
}

export interface SamplerSettings {
  /** 0 = greedy (argmax). */
  readonly temperature: number;
  /** In (0, 1) for nucleus sampling; otherwise sample from the whole distribution. */
  readonly topP: number;
  readonly seed: number;
}

export class Sampler {
  private readonly random: RunCRandom;

  constructor(private readonly settings: SamplerSettings) {
    this.random = new RunCRandom(settings.seed);
  }

  /** Picks the next token from one position's logits. */
  sample(logits: Float32Array): number {
    if (this.settings.temperature === 0) return argmax(logits);
    const probabilities = new Float32Array(logits.length);
    const { temperature } = this.settings;
    for (let i = 0; i < logits.length; i++) probabilities[i] = Math.fround(logits[i] / temperature);
    softmaxInPlace(probabilities);
    const coin = this.random.nextF32();
    const { topP } = this.settings;
    return topP <= 0 || topP >= 1 ? sampleMultinomial(probabilities, coin) : sampleTopP(probabilities, topP, coin);
  }
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function softmaxInPlace(x: Float32Array): void {
  let max = x[0];
  for (let i = 1; i < x.length; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    x[i] = Math.fround(Math.exp(x[i] - max));
    sum = Math.fround(sum + x[i]);
  }
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i] / sum);
}

function sampleMultinomial(probabilities: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < probabilities.length; i++) {
    cdf = Math.fround(cdf + probabilities[i]);
    if (coin < cdf) return i;
  }
  return probabilities.length - 1;
}

function sampleTopP(probabilities: Float32Array, topP: number, coin: number): number {
  // Tokens below this cannot be in the nucleus; dropping them first keeps the sort short (as run.c does).
  const cutoff = Math.fround(Math.fround(1 - topP) / (probabilities.length - 1));
  const candidates: { index: number; probability: number }[] = [];
  for (let i = 0; i < probabilities.length; i++) if (probabilities[i] >= cutoff) candidates.push({ index: i, probability: probabilities[i] });
  candidates.sort((a, b) => b.probability - a.probability);
  let cumulative = 0;
  let last = candidates.length - 1;
  for (let i = 0; i < candidates.length; i++) {
    cumulative = Math.fround(cumulative + candidates[i].probability);
    if (cumulative > topP) {
      last = i;
      break;
    }
  }
  const r = Math.fround(coin * cumulative);
  let cdf = 0;
  for (let i = 0; i <= last; i++) {
    cdf = Math.fround(cdf + candidates[i].probability);
    if (r < cdf) return candidates[i].index;
  }
  return candidates[last].index;
}
