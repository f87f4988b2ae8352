/**
 * `npm run bench:topups`: how long a buyer coming back from PayPal waits until the top-up is
 * credited, at an offered rate (default 10 returns/s for 20 s), on the real stack with the PayPal
 * simulator (Orders v2). Top-ups are created and approved beforehand (not timed; the workflow's poll
 * is set far out so only the return captures); then each return is sent on schedule (open loop) and
 * timed until its answer, which comes once the capture is credited (the update waits for the ledger).
 * Prints p50/p95/p99/max, the machine's load, and checks one ledger entry per top-up.
 *
 *   npx tsx bench/topups.ts [--rate 10] [--duration 20] [--no-notify]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMongoServer } from '../tools/dev/services/mongo-server';
import { startTemporalServer } from '../tools/dev/services/temporal-server';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createTestStack, type TestStack } from '../test/support/stack';
import { ConfigSchema } from '../src/shared/config';
import { quietBundlerLogger, WORKFLOW_BUNDLE } from '../src/shared/temporal/bundle';
import { startWorkerChild, type WorkerChild } from './lib/children';
import { errorText, nowMs, percentile, sleep } from './lib/load';
import { watched } from './lib/machine';

const SHOP = 'benchtopups';
const CUSTOMERS = 20;
const APP = { clientId: 'BenchTopupClient', secret: 'bench-topup-secret', webhookId: 'WH-BENCH-TOPUP' };
const MERCHANT = 'bench@topups.example.com';

const arg = (flag: string, fallback: number) => {
  const i = process.argv.indexOf(flag);
  const v = i < 0 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} needs a positive number`);
  return v;
};

async function must(what: string, res: { status: number; body: unknown }, status: number) {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function setUp(stack: TestStack): Promise<void> {
  for (const [k, v] of Object.entries({
    CLIENT_ID: APP.clientId,
    CLIENT_SECRET: APP.secret,
    WEBHOOK_ID: APP.webhookId,
  }))
    process.env[`PAYPAL_BENCH_TOPUP_${k}`] = v;
  stack.sim.rest.addApp({
    ...APP,
    merchantEmail: MERCHANT,
    webhookUrl: `${stack.baseUrl}/webhooks/paypal/${SHOP}`,
    ipnUrl: `${stack.baseUrl}/ipn/${SHOP}`,
  });
  await must(
    'PUT integration',
    await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
      name: 'Bench top-ups',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: [MERCHANT],
      payoutsRestEnv: 'PAYPAL_BENCH_TOPUP',
      topups: { currencies: ['USD'], minMinor: { USD: 100 }, maxMinor: { USD: 100_000 } },
    }),
    200,
  );
  for (let c = 0; c < CUSTOMERS; c++)
    await must('PUT customer', await stack.admin('PUT', `/admin/customers/bt${c}`, { name: `bt${c}` }), 200);
}

/** A created and approved top-up: where PayPal sends the buyer back. */
async function approved(stack: TestStack, i: number): Promise<{ id: string; returnUrl: string; customerId: string }> {
  const customerId = `bt${i % CUSTOMERS}`;
  const body = (await must(
    'POST /admin/topups',
    await stack.admin('POST', '/admin/topups', {
      integrationId: SHOP,
      customerId,
      amount: '10.00',
      currency: 'USD',
      returnUrl: 'https://portal.example.com/done',
      cancelUrl: 'https://portal.example.com/cancelled',
    }),
    201,
  )) as { id: string; approveUrl: string };
  const res = await fetch(`${stack.sim.url}/checkoutnow`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: new URL(body.approveUrl).searchParams.get('token')!, action: 'approve' }),
    redirect: 'manual',
  });
  return { id: body.id, returnUrl: res.headers.get('location')!, customerId };
}

async function main() {
  const rate = arg('--rate', 10);
  const durationS = arg('--duration', 20);
  const n = Math.round(rate * durationS);
  // PayPal's IPN and webhook after each capture are part of the load (the payment entity and the
  // webhook door do their work); --no-notify leaves them out to see the top-up path alone.
  const notify = !process.argv.includes('--no-notify');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-bench-topups-'));
  const temporal = process.env.TEMPORAL_ADDRESS
    ? undefined
    : await startTemporalServer({ headless: true, logFile: path.join(dir, 'temporal.log') });
  const mongo = process.env.MONGODB_URI ? undefined : await startMongoServer({ logFile: path.join(dir, 'db.log') });
  process.env.TEMPORAL_ADDRESS ??= temporal!.address;
  process.env.MONGODB_URI ??= mongo!.uri;
  // Only the return captures: the workflow's own poll is an hour out.
  const stack = await createTestStack('bench-topups', { TOPUP_POLL_SECONDS: '3600', LOG_LEVEL: 'silent' });
  let worker: WorkerChild | undefined;
  try {
    await setUp(stack);
    stack.sim.rest.checkoutNotify = { ipn: notify, webhook: notify };
    // The worker in its own process, as in production: it does not share an event loop with the API,
    // the simulator and this load generator.
    await stack.stopWorker();
    const bundle = path.join(dir, 'workflows.js');
    fs.writeFileSync(bundle, (await bundleWorkflowCode({ ...WORKFLOW_BUNDLE, logger: quietBundlerLogger })).code);
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', BENCH_WORKFLOW_BUNDLE: bundle };
    for (const key of Object.keys(ConfigSchema.shape)) {
      const v = (stack.config as Record<string, unknown>)[key];
      if (key !== 'LOG_LEVEL' && v !== undefined) env[key] = String(v);
    }
    worker = await startWorkerChild('service', env, path.join(dir, 'worker.log'));
    console.log(`preparing ${n} approved top-ups...`);
    const ready: Array<Awaited<ReturnType<typeof approved>>> = [];
    for (let i = 0; i < n; i += 10)
      ready.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, k) => approved(stack, i + k)))));
    await sleep(2_000); // the creations' workflow tasks settle before the timed phase

    console.log(`returning ${n} buyers at ${rate}/s...`);
    const latencies: number[] = [];
    const errors: string[] = [];
    const { machine } = await watched(async () => {
      const start = nowMs();
      await Promise.all(
        ready.map(async (t, i) => {
          await sleep(start + (i * 1000) / rate - nowMs());
          const sent = nowMs();
          try {
            const res = await fetch(t.returnUrl, { redirect: 'manual' });
            await res.arrayBuffer();
            if (res.status !== 303) throw new Error(`return answered ${res.status}`);
            const doc = await stack.db.models.Topup.findById(t.id, { phase: 1 }).lean();
            if (doc?.phase !== 'credited') throw new Error(`${t.id} is ${doc?.phase} after its return`);
            latencies.push(nowMs() - sent);
          } catch (err) {
            errors.push(errorText(err));
          }
        }),
      );
    });
    const load = fs.readFileSync('/proc/loadavg', 'utf8').trim();
    // Exactly one credit per top-up, and a sound ledger.
    const entries = await stack.db.models.LedgerEntry.countDocuments({ integrationId: SHOP });
    const check = await stack.ledger.check();
    const sorted = latencies.sort((a, b) => a - b);
    const ms = (p: number) => `${percentile(sorted, p).toFixed(0)} ms`;
    console.log(
      [
        '',
        `top-ups: return -> credited at ${rate}/s offered, ${n} returns over ${durationS} s (Orders v2, simulator, ` +
          `${notify ? 'with each capture’s IPN and webhook' : 'no IPN or webhook'})`,
        `  credited ${sorted.length}/${n}, errors ${errors.length}${errors[0] ? ` (first: ${errors[0]})` : ''}`,
        `  p50 ${ms(50)}  p95 ${ms(95)}  p99 ${ms(99)}  max ${ms(100)}`,
        `  goal p99 <= 1000 ms: ${percentile(sorted, 99) <= 1000 && errors.length === 0 ? 'PASS' : 'FAIL'}`,
        `  ledger: ${entries} entries for ${n} top-ups; check problems ${check.problems.length}`,
        `  machine: load1 ${machine.load1Start.toFixed(2)} -> ${machine.load1End.toFixed(2)}, ` +
          `busy ${machine.busyCores.toFixed(2)} cores (ours ${machine.oursCores.toFixed(2)}, ` +
          `outside ${machine.outsideCores.toFixed(2)}); /proc/loadavg ${load}`,
      ].join('\n'),
    );
    if (entries !== sorted.length) process.exitCode = 1;
  } finally {
    await worker?.stop();
    await stack.close();
    await temporal?.stop();
    await mongo?.stop();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
