/**
 * An unbounded queue between a push-style listener and a pull-style reader: what a subscription buffers
 * while it is still replaying stored events. `close()` wakes a waiting reader with `null`, which is how
 * a subscription that is blocked waiting for the next live message gets to finish when its client leaves.
 */
export class LiveQueue<T> {
  private readonly items: T[] = [];
  private waiting: ((item: T | null) => void) | null = null;
  private closed = false;

  push(item: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const wake = this.waiting;
      this.waiting = null;
      wake(item);
    } else {
      this.items.push(item);
    }
  }

  /** The next item, or null once the queue is closed. */
  next(): Promise<T | null> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift()!);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close(): void {
    this.closed = true;
    this.items.length = 0;
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
