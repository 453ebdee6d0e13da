/**
 * The bench's subscribers, in a process of their own (so that their parsing does not slow the gateway
 * being measured, as wrk's requests don't): SUBSCRIBERS graphql-ws clients on WS_URL, each subscribed to
 * `planProgress(planId: PLAN_ID)`, each receipt timed on the wall clock (performance.timeOrigin +
 * performance.now(), comparable across processes on one machine), by the event's `step` (which the
 * bench numbers 1, 2, …). Prints `subscribed` once every client has its connection_ack, and at the end
 * (stdin closed, or every stream completed) one JSON line: `{ received: { [step]: [receipt times] }, errors }`.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.WS_URL!;
const token = process.env.TOKEN!;
const planId = process.env.PLAN_ID!;
const count = Number(process.env.SUBSCRIBERS ?? 1000);
const now = () => performance.timeOrigin + performance.now();

const received: Record<number, number[]> = {};
let errors = 0;
let completed = 0;
const clients: Client[] = [];
let acknowledged = 0;

let finished = false;
const finish = async () => {
  if (finished) return;
  finished = true;
  await Promise.all(clients.map((client) => client.dispose()));
  // exit only once the (large) line has been written out: a pipe is written asynchronously
  process.stdout.write(`${JSON.stringify({ received, errors })}\n`, () => process.exit(0));
};

for (let i = 0; i < count; i++) {
  const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, connectionParams: { authorization: `Bearer ${token}` } });
  clients.push(client);
  client.on('connected', () => {
    if (++acknowledged === count) process.stdout.write('subscribed\n');
  });
  client.subscribe(
    { query: 'subscription($planId: ID!) { planProgress(planId: $planId) { seq step } }', variables: { planId } },
    {
      next: (result) => {
        const at = now();
        const step = (result.data as { planProgress: { step: number | null } } | undefined)?.planProgress.step;
        if (step === undefined || step === null) return;
        (received[step] ??= []).push(Math.round(at * 10) / 10);
      },
      error: () => {
        errors++;
      },
      complete: () => {
        if (++completed === count) void finish();
      },
    },
  );
}
process.stdin.on('end', () => void finish());
process.stdin.resume();
