/**
 * Measures the time from POST /ipn (answered 200) to the credited balance, over a run of
 * payments through the real stack: Temporal dev server, the database, the worker, the PayPal
 * simulator answering postbacks. Prints numbers; asserts nothing.
 *
 *   npm run bench -- [count=50] [concurrency=1]
 */
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { startTemporalServer } from '../src/dev/services/temporal-server';
import { startMongoServer } from '../src/dev/services/mongo-server';
import { createTestStack, sample, withField } from '../test/support/stack';

async function main() {
  const count = Number(process.argv[2] ?? 50);
  const concurrency = Number(process.argv[3] ?? 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-bench-'));
  const temporal = process.env.TEMPORAL_ADDRESS ? undefined : await startTemporalServer({ headless: true, logFile: path.join(dir, 'temporal.log') });
  const mongo = process.env.MONGODB_URI ? undefined : await startMongoServer({ logFile: path.join(dir, 'db.log') });
  process.env.TEMPORAL_ADDRESS ??= temporal!.address;
  process.env.MONGODB_URI ??= mongo!.uri;

  const stack = await createTestStack('bench');
  try {
    await stack.admin('PUT', '/admin/integrations/bench', { name: 'Bench', mode: 'sandbox', allowedCurrencies: ['USD'], receiverEmails: ['seller@paypalsandbox.com'] });
    await stack.admin('PUT', '/admin/customers/bench-customer', { name: 'Bench', paypalEmails: ['buyer@paypalsandbox.com'] });
    const base = sample('web_accept_completed_ipn_simulator_01');

    const answers: number[] = [];
    const one = async (i: number): Promise<number> => {
      const txnId = `BENCH${process.pid}X${i}`;
      const raw = withField(base, 'txn_id', txnId);
      stack.sim.registerMessage(raw);
      const start = process.hrtime.bigint();
      const res = await stack.postIpn('bench', raw);
      if (res.status !== 200) throw new Error(`POST answered ${res.status}`);
      answers.push(Number(process.hrtime.bigint() - start) / 1e6);
      for (;;) {
        if (await stack.db.models.LedgerEntry.exists({ idempotencyKey: `credit:bench:${txnId}` })) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      return Number(process.hrtime.bigint() - start) / 1e6;
    };

    await one(-1); // warm-up: first workflow task, first connection
    const latencies: number[] = [];
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) latencies.push(await one(next++));
      }),
    );
    const wall = (Date.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    answers.sort((a, b) => a - b);
    const pctOf = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!.toFixed(0);
    const pct = (p: number) => pctOf(latencies, p);
    const check = await stack.ledger.check();
    console.log(`POST /ipn -> credited balance, ${count} payments, concurrency ${concurrency}, ${mongo?.kind ?? 'external db'}`);
    console.log(`  median ${pct(50)} ms   p90 ${pct(90)} ms   p99 ${pct(99)} ms   min ${latencies[0]!.toFixed(0)} ms   max ${latencies.at(-1)!.toFixed(0)} ms`);
    console.log(`  PayPal's answer (POST /ipn -> 200, message stored): median ${pctOf(answers, 50)} ms   p99 ${pctOf(answers, 99)} ms`);
    console.log(`  throughput ${(count / wall).toFixed(1)} payments/s over ${wall.toFixed(1)} s; ledger check: ${check.problems.length === 0 ? 'ok' : check.problems.join('; ')} (${check.entries} entries)`);
  } finally {
    await stack.close();
    await temporal?.stop();
    await mongo?.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
