/** Default bound of a subscription's queue (STREAMLINE_WS_MAX_BUFFERED_EVENTS). */
export const MAX_BUFFERED_MESSAGES = 1_000;

/**
 * A bounded queue between a push-style listener and a pull-style reader: what a subscription holds
 * while it replays stored events, or while its client reads more slowly than events arrive (the
 * reader waits on the socket's writes). Past `maxItems` waiting, the queue closes and calls
 * `onOverflow` once: the subscriber is too slow to follow and is disconnected (it may resume with
 * `afterSeq`); memory per subscriber stays bounded whatever it does. `close()` wakes a waiting reader
 * with `null`, which is how a subscription blocked on the next live message finishes when its client leaves.
 */
export class LiveQueue<T> {
  private items: T[] = [];
  private head = 0;
  private waiting: ((item: T | null) => void) | null = null;
  private closed = false;

  constructor(
    private readonly maxItems = Number.POSITIVE_INFINITY,
    private readonly onOverflow?: () => void,
  ) {}

  /** Items waiting to be read. */
  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const wake = this.waiting;
      this.waiting = null;
      wake(item);
      return;
    }
    if (this.length >= this.maxItems) {
      this.close();
      this.onOverflow?.();
      return;
    }
    this.items.push(item);
  }

  /** The next item, or null once the queue is closed. */
  next(): Promise<T | null> {
    if (this.length > 0) {
      const item = this.items[this.head++];
      if (this.head === this.items.length) (this.items = []), (this.head = 0);
      else if (this.head > 1024) (this.items = this.items.slice(this.head)), (this.head = 0);
      return Promise.resolve(item);
    }
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close(): void {
    this.closed = true;
    this.items = [];
    this.head = 0;
    const wake = this.waiting;
    this.waiting = null;
    wake?.(null);
  }
}

/** Wraps a generator so that `return()` (a client unsubscribing) runs `cleanup` first, unblocking it. */
export function withCleanup<T>(source: AsyncGenerator<T>, cleanup: () => void): AsyncIterableIterator<T> {
  let cleaned = false;
  const runCleanup = () => {
    if (!cleaned) {
      cleaned = true;
      cleanup();
    }
  };
  return {
    async next() {
      const result = await source.next().catch((error: unknown) => {
        runCleanup();
        throw error;
      });
      if (result.done) runCleanup();
      return result;
    },
    async return() {
      runCleanup();
      return source.return(undefined);
    },
    async throw(error?: unknown) {
      runCleanup();
      return source.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
