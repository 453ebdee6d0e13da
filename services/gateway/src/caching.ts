/**
 * The gateway's read caches (API tokens in auth/, plans in plans/): bounded maps whose entries expire,
 * with hit and miss counts for /metrics, and a guard against the race every read-through cache has —
 * a read that started before an invalidation must not put its (older) answer back afterwards.
 */

/** Hits and misses of one cache, read by /metrics (`streamline_cache_requests_total{cache,result}`). */
export class CacheCounts {
  hits = 0;
  misses = 0;
}

export interface ExpiringCacheOptions {
  /** How long an entry is served after it was read; 0 turns the cache off (every get misses). */
  readonly ttlMs: number;
  /** Most entries kept; the oldest is dropped past it. */
  readonly maxEntries: number;
  /** The clock (tests). Default performance.now. */
  readonly now?: () => number;
}

interface Entry<V> {
  readonly value: V;
  readonly expiresAt: number;
}

/**
 * A bounded map of values that expire `ttlMs` after they were read. `load` reads through it:
 * concurrent misses of one key share one read, and a read that was under way when the key (or
 * everything) was forgotten answers its caller but is not kept.
 */
export class ExpiringCache<K, V> {
  readonly counts = new CacheCounts();
  private readonly entries = new Map<K, Entry<V>>();
  private readonly pending = new Map<K, Promise<V>>();
  /** Bumped by forget(key); a read keeps its answer only when its key's generation did not move. */
  private readonly generations = new Map<K, number>();
  private epoch = 0;
  private readonly now: () => number;

  constructor(private readonly options: ExpiringCacheOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  get enabled(): boolean {
    return this.options.ttlMs > 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached value, or undefined (counted as a miss) when absent or expired. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) {
      this.counts.hits++;
      return entry.value;
    }
    if (entry) this.entries.delete(key);
    this.counts.misses++;
    return undefined;
  }

  /** The cached value, else `read()`'s answer, kept unless the key was forgotten while it ran. */
  async load(key: K, read: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
    if (!this.enabled) return read();
    const cached = this.get(key);
    if (cached !== undefined) return cached;
    return this.fill(key, read, keep);
  }

  /** After get() missed: `read()`'s answer (shared with a read of the key already under way), kept unless the key was forgotten meanwhile. */
  async fill(key: K, read: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
    if (!this.enabled) return read();
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const generation = this.generations.get(key) ?? 0;
    const epoch = this.epoch;
    const reading = read().then((value) => {
      if (this.epoch === epoch && (this.generations.get(key) ?? 0) === generation && keep(value)) this.set(key, value);
      return value;
    });
    this.pending.set(key, reading);
    try {
      return await reading;
    } finally {
      if (this.pending.get(key) === reading) this.pending.delete(key);
    }
  }

  /** Stores a value just written (read-your-writes), replacing what was there. */
  set(key: K, value: V): void {
    if (!this.enabled) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
    if (this.entries.size > this.options.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Drops the key; a read of it under way is not kept. */
  forget(key: K): void {
    this.entries.delete(key);
    this.pending.delete(key);
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
    // generations only need to outlive reads in flight; keep the map from growing without bound
    if (this.generations.size > this.options.maxEntries * 2) this.generations.clear(), this.epoch++;
  }

  /** Drops every entry matching `predicate`. */
  forgetWhere(predicate: (value: V, key: K) => boolean): void {
    for (const [key, entry] of this.entries) if (predicate(entry.value, key)) this.forget(key);
  }

  /** Drops everything; reads under way are not kept. */
  clear(): void {
    this.entries.clear();
    this.pending.clear();
    this.generations.clear();
    this.epoch++;
  }
}
