/**
 * takeTurns: an execution whose resolvers never wait on I/O (the shape of SQLite behind an async
 * driver) still lets timers and I/O run between its slices, and gives the same result.
 */
import { buildSchema, execute, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { SLICE_MS, takeTurns } from '../src/limits/fair-execution.js';

function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** 200 rows of 10 cells, each cell 1 ms of synchronous work behind a resolved promise: about 2 s. */
function slowSchema() {
  const schema = buildSchema('type Query { rows: [Row!]! } type Row { cells: [Cell!]! } type Cell { value: Int! }');
  schema.getQueryType()!.getFields().rows.resolve = async () => Array.from({ length: 200 }, (_, i) => i);
  (schema.getType('Row') as any).getFields().cells.resolve = async (row: number) => Array.from({ length: 10 }, (_, i) => row * 10 + i);
  (schema.getType('Cell') as any).getFields().value.resolve = async (cell: number) => {
    busyFor(1);
    return cell;
  };
  return schema;
}

async function longestTimerDelay(schema: ReturnType<typeof slowSchema>): Promise<{ result: unknown; longestMs: number }> {
  let longestMs = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longestMs = Math.max(longestMs, now - last);
    last = now;
  }, 5);
  const result = await execute({ schema, document: parse('{ rows { cells { value } } }'), contextValue: {} });
  clearInterval(ticker);
  return { result, longestMs: Math.max(longestMs, performance.now() - last) };
}

describe('takeTurns', () => {
  it('lets a timer run every slice during a long execution, with the same result', async () => {
    const plain = await longestTimerDelay(slowSchema());
    const fair = await longestTimerDelay(takeTurns(slowSchema()));
    expect(fair.result).toEqual(plain.result);
    expect((fair.result as any).data.rows).toHaveLength(200);
    // without turns the timer waits for the whole execution; with them, about one slice at a time
    expect(plain.longestMs).toBeGreaterThan(1_000);
    expect(fair.longestMs).toBeLessThan(20 * SLICE_MS);
  });
});
