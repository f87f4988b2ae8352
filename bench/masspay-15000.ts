/**
 * A 15,000-item payout batch at PayPal's full Payouts size, through the real stack (issue 16):
 * created over the admin API (201 = every reservation posted), approved, sent through Payouts REST to
 * the simulator, then its 15,000 signed item webhooks (plus the batch's own) POSTed to our webhook
 * door and applied by the batch workflow. Prints each phase's time against the issue's targets, the
 * batch's history events (every run, continue-as-new included), the worker's peak RSS and
 * /proc/loadavg during the run; checks that every balance is exact.
 *
 * As in production, the worker and the API (webhook door and admin API: the service's own `serveApi`)
 * each run in their own process; this one holds the PayPal simulator, which signs and POSTs the
 * webhooks (PayPal's sender is not on our machine), and the script. `api=inline` serves the API from
 * this process instead (the method before, for comparison). BENCH_CPU_PROF_DIR=<dir> writes both
 * children's CPU profiles there.
 *
 * `only=create` stops after the creation (to profile it without the webhooks' minute).
 *
 *   npm run bench:masspay [-- items=15000 payees=1000 concurrency=16 api=child|inline only=create]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { History } from '@temporalio/common/lib/proto-utils';
import { quietBundlerLogger, WORKFLOW_BUNDLE } from '../src/shared/temporal/bundle';
import { ConfigSchema } from '../src/shared/config';
import { payoutWorkflowId } from '../src/shared/contract';
import { startMongoServer } from '../tools/dev/services/mongo-server';
import { startTemporalServer } from '../tools/dev/services/temporal-server';
import { createTestStack, waitFor, type TestStack } from '../test/support/stack';
import { startApiChild, startWorkerChild } from './lib/children';
import { cpuSnapshot, cpuText } from './lib/cpu';

const TARGETS = { reserveS: 10, webhooksS: 60, historyEvents: 10_000 };
const APP = { clientId: 'BenchPayoutsClient', secret: 'bench-payouts-secret', webhookId: 'WH-BENCH-PAYOUTS-01' };
const ENV = 'PAYPAL_REST_BENCH';
/** One payee in this many has a PayPal account that refuses the money: its items come back (released). */
const FAILING_EVERY = 20;

function arg(name: string, fallback: number): number {
  const found = process.argv.find((a) => a.startsWith(`${name}=`));
  const n = found ? Number(found.slice(name.length + 1)) : fallback;
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** /proc/loadavg's 1-minute figure, sampled every second while the bench runs. */
function loadSampler() {
  const read = () => Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const seen: number[] = [read()];
  const timer = setInterval(() => seen.push(read()), 1000);
  return {
    stop: () => clearInterval(timer),
    text: () =>
      `load1 start ${seen[0]!.toFixed(2)}, max ${Math.max(...seen).toFixed(2)}, end ${seen.at(-1)!.toFixed(2)} ` +
      `(${os.cpus().length} cores; other runs on this machine count too)`,
  };
}

/** Every run of the batch's workflow (continue-as-new chains them): events per run, newest last. */
async function historyRuns(stack: TestStack, batchId: string): Promise<number[]> {
  const workflowId = payoutWorkflowId(batchId);
  const runs: number[] = [];
  let runId: string | undefined = (await stack.client.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const history: History = await stack.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    runs.unshift(events.length);
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  return runs;
}

async function main() {
  const count = arg('items', 15_000);
  const payees = Math.min(arg('payees', 1_000), count);
  const concurrency = arg('concurrency', 16);
  const inlineApi = process.argv.includes('api=inline');
  const onlyCreate = process.argv.includes('only=create');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-bench-payouts-'));
  const load = loadSampler();
  const temporal = process.env.TEMPORAL_ADDRESS
    ? undefined
    : await startTemporalServer({ headless: true, logFile: path.join(dir, 'temporal.log') });
  const mongo = process.env.MONGODB_URI ? undefined : await startMongoServer({ logFile: path.join(dir, 'db.log') });
  process.env.TEMPORAL_ADDRESS ??= temporal!.address;
  process.env.MONGODB_URI ??= mongo!.uri;
  process.env[`${ENV}_CLIENT_ID`] = APP.clientId;
  process.env[`${ENV}_CLIENT_SECRET`] = APP.secret;
  process.env[`${ENV}_WEBHOOK_ID`] = APP.webhookId;
  const bundle = path.join(dir, 'workflows.js');
  fs.writeFileSync(bundle, (await bundleWorkflowCode({ ...WORKFLOW_BUNDLE, logger: quietBundlerLogger })).code);
  process.env.IPNFLOW_TEST_WORKFLOW_BUNDLE = bundle;

  // Polling once an hour: the webhooks, not a poll, must apply the batch here.
  const stack = await createTestStack('bench-payouts', { PAYOUTS_POLL_SECONDS: '3600' });
  await stack.stopWorker();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ADMIN_TOKEN: undefined,
    LOG_LEVEL: 'warn',
    BENCH_WORKFLOW_BUNDLE: bundle,
  };
  for (const key of Object.keys(ConfigSchema.shape)) {
    const v = (stack.config as Record<string, unknown>)[key];
    if (key !== 'ADMIN_TOKEN' && key !== 'LOG_LEVEL' && v !== undefined) env[key] = String(v);
  }
  const worker = await startWorkerChild('service', env, path.join(dir, 'worker.log'));
  const api = inlineApi ? undefined : await startApiChild(env, path.join(dir, 'api.log'));
  // Every request of the bench (admin API, webhooks) goes to the API's own process.
  if (api) stack.baseUrl = api.url;
  const t = () => process.hrtime.bigint();
  const secs = (from: bigint) => Number(t() - from) / 1e9;
  const verdict = (s: number, target: number) =>
    `${s.toFixed(1)} s (target < ${target} s: ${s < target ? 'met' : 'MISSED'})`;
  try {
    stack.sim.rest.addApp({ ...APP, webhookUrl: `${stack.baseUrl}/webhooks/paypal/bench` });
    const put = await stack.admin('PUT', '/admin/integrations/bench', {
      name: 'Bench payouts',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['payouts@bench.example.com'],
      payoutsRestEnv: ENV,
    });
    if (put.status !== 200) throw new Error(`integration: ${put.status} ${JSON.stringify(put.body)}`);
    const payee = (k: number) => `bp${k}`;
    for (let k = 0; k < payees; k++) {
      await stack.admin('PUT', `/admin/customers/${payee(k)}`, {
        name: payee(k),
        paypalEmails: [`${payee(k)}@example.com`],
      });
      if (k % FAILING_EVERY === 0)
        stack.sim.rest.payouts.setOutcome(`${payee(k)}@example.com`, {
          status: 'FAILED',
          error: 'RECEIVER_UNREGISTERED',
        });
    }
    const FUND = 10_000_000;
    await stack.ledger.postMany(
      Array.from({ length: payees }, (_, k) => ({
        customerId: payee(k),
        currency: 'USD',
        mode: 'sandbox' as const,
        amountMinor: FUND,
        idempotencyKey: `fund:${payee(k)}`,
        reason: 'manual' as const,
      })),
    );
    // Item i pays payee i % payees 1.00 + (i % 7) cents.
    const amountMinor = (i: number) => 100 + (i % 7);
    const items = Array.from({ length: count }, (_, i) => ({
      customerId: payee(i % payees),
      receiverEmail: `${payee(i % payees)}@example.com`,
      amount: (amountMinor(i) / 100).toFixed(2),
    }));
    const where = api ? 'API in its own process' : 'API in the bench process';
    console.log(`bench: ${count} items over ${payees} payees; webhooks posted ${concurrency} at a time; ${where}`);

    const names = new Map([[worker.pid, 'worker'], ...(api ? [[api.pid, 'API'] as const] : [])]);
    const cpuCreate = cpuSnapshot(process.pid, names);
    let start = t();
    const created = await stack.admin('POST', '/admin/payouts', {
      integrationId: 'bench',
      currency: 'USD',
      operator: 'alice',
      items,
    });
    if (created.status !== 201)
      throw new Error(`create: ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`);
    const reserveS = secs(start);
    const id = created.body.id as string;
    if (created.body.reserved !== true) throw new Error('201 without every reservation posted');
    console.log(`created and reserved ${count} items (201): ${verdict(reserveS, TARGETS.reserveS)}`);
    console.log(`CPU while it was created: ${cpuText(cpuCreate, cpuSnapshot(process.pid, names), reserveS)}`);
    if (onlyCreate) {
      load.stop();
      console.log(load.text());
      return;
    }

    start = t();
    const approved = await stack.admin('POST', `/admin/payouts/${id}/approve`, { operator: 'bob', reason: 'bench' });
    if (approved.status !== 200) throw new Error(`approve: ${approved.status} ${JSON.stringify(approved.body)}`);
    const sent = await stack.admin('POST', `/admin/payouts/${id}/send`, { operator: 'bob', reason: 'bench' });
    if (sent.status !== 200) throw new Error(`send: ${sent.status} ${JSON.stringify(sent.body).slice(0, 300)}`);
    const snapshot = async () =>
      (await stack.db.models.PayoutBatch.findById(id, { snapshot: 1 }).lean())?.snapshot as {
        state: string;
        counts: Record<string, number>;
        send: { chunks: Array<{ state: string; correlationId: string | null }> } | null;
      };
    await waitFor(
      'sent',
      async () => (await snapshot()).send?.chunks.every((c) => c.state === 'acked') ?? false,
      600_000,
    );
    const ppIds = (await snapshot()).send!.chunks.map((c) => c.correlationId!);
    console.log(`approved and sent through Payouts REST (${ppIds.length} call(s)): ${secs(start).toFixed(1)} s`);

    const cpuBefore = cpuSnapshot(process.pid, names);
    const cpuStart = t();
    stack.sim.rest.webhookFaults = { concurrency };
    const before = stack.sim.rest.webhookDeliveries.length;
    let posted = 0;
    for (const pp of ppIds) posted += (await stack.sim.rest.process(pp)).length;
    // From the first POST (the simulator signs every event before it posts any).
    const deliveries = stack.sim.rest.webhookDeliveries.slice(before);
    const firstPost = Math.min(...deliveries.map((d) => d.sentAt ?? Infinity));
    const postedS = (Date.now() - firstPost) / 1000;
    await waitFor(
      'every item applied',
      async () => {
        const s = await snapshot();
        return s.state === 'completed' && !s.counts['Pending'];
      },
      900_000,
    );
    const appliedS = (Date.now() - firstPost) / 1000;
    const cpuAfter = cpuSnapshot(process.pid, names);
    const cpuWallS = secs(cpuStart);
    const refused = deliveries.filter((d) => d.status !== 200).length;
    const retried = deliveries.filter((d) => (d.attempts ?? 1) > 1);
    if (retried.length > 0) {
      const first = retried.slice(0, 3).map((d) => `${d.status ?? ''} ${d.error ?? ''}`.trim());
      console.log(`${retried.length} webhook(s) needed more than one POST (first: ${first.join('; ')})`);
    }
    console.log(
      `${posted} webhooks POSTed in ${postedS.toFixed(1)} s (${refused} not answered 200); ` +
        `every item applied: ${verdict(appliedS, TARGETS.webhooksS)}`,
    );
    // Who was busy while the webhooks went in (signing included): the database's share shows what bounds them.
    console.log(
      `CPU while the webhooks were signed, POSTed and applied (${cpuWallS.toFixed(1)} s): ` +
        cpuText(cpuBefore, cpuAfter, cpuWallS),
    );

    const runs = await historyRuns(stack, id);
    const total = runs.reduce((a, b) => a + b, 0);
    const largest = Math.max(...runs);
    const met = largest < TARGETS.historyEvents ? 'met' : 'MISSED';
    console.log(
      `batch history: ${total} events over ${runs.length} run(s) [${runs.join(', ')}]; ` +
        `largest run ${largest} (target < ${TARGETS.historyEvents}: ${met})`,
    );

    // Exact money: a failing payee got every reservation back; every other is down what it was paid.
    const end = await snapshot();
    const wrong: string[] = [];
    for (let k = 0; k < payees; k++) {
      const paid =
        k % FAILING_EVERY === 0 ? 0 : items.reduce((sum, _, i) => (i % payees === k ? sum + amountMinor(i) : sum), 0);
      const balance = (await stack.ledger.balances(payee(k), 'sandbox'))[0]?.balanceMinor;
      if (balance !== FUND - paid) wrong.push(`${payee(k)}: ${balance} != ${FUND - paid}`);
    }
    const check = await stack.ledger.check();
    const balances = wrong.length ? `WRONG ${wrong.slice(0, 3).join('; ')}` : 'exact';
    const ledger = check.problems.length ? check.problems.slice(0, 3).join('; ') : 'sound';
    console.log(
      `end: ${end.state} ${JSON.stringify(end.counts)}; balances ${balances}; ` +
        `ledger ${ledger} (${check.entries} entries)`,
    );
    const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
    console.log(`worker peak RSS (own process, VmHWM): ${mib(worker.peakRss())}`);
    if (api) console.log(`API peak RSS (own process, VmHWM): ${mib(api.peakRss())}`);
    const benchRss = (process.resourceUsage().maxRSS / 1024).toFixed(0);
    console.log(`bench process peak RSS (${api ? '' : 'API + '}simulator + this script): ${benchRss} MiB`);
    load.stop();
    console.log(load.text());
    if (wrong.length || check.problems.length) process.exitCode = 1;
  } finally {
    load.stop();
    await api?.stop();
    await worker.stop();
    await stack.close();
    await temporal?.stop?.();
    await mongo?.stop?.();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
