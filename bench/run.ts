/**
 * `npm run bench`: ipnflow's throughput and latency, each next to an anchor measured in the same
 * run on the same servers, then a goal per line with PASS/FAIL. Prints numbers; asserts nothing
 * (it exits non-zero only when the run itself broke). Flags: see docs/performance.md.
 *
 *   (1) bare Koa + one insertOne per POST         anchor for (2)
 *   (2) POST /ipn ack (integration ipnEnabled:false: store, 200, no workflow)
 *   (3) two-activity workflow floor (postback + insertOne), its own worker
 *   (4) POST /ipn -> credited ledger entry, closed loop and at an offered rate
 *   (5) (2) and (4) on an empty store, then on one preloaded with N credited IPNs
 *   (6) peak RSS of the service worker (its own process; /proc VmHWM)
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { quietBundlerLogger, WORKFLOW_BUNDLE } from '../src/temporal/bundle';
import { ConfigSchema } from '../src/config';
import { startMongoServer, type MongoServer } from '../tools/dev/services/mongo-server';
import { startTemporalServer, type TemporalServer } from '../tools/dev/services/temporal-server';
import { balanceMinor, createTestStack, sample, withField, type TestStack } from '../test/support/stack';
import { startBareApp } from './bare-app';
import type { floorIpn } from './floor/workflows';
import { startWorkerChild, type WorkerChild } from './lib/children';
import { CreditWatch } from './lib/credits';
import { accountIdOf } from '../src/ledger/ledger';
import { closedLoop, errorText, nowMs, sleep, summarize, type RunStats } from './lib/load';
import { fmt, table } from './lib/table';
import { captureTemplate, preload, type PaymentTemplate } from './preload';

interface Options {
  quick: boolean;
  preload: number;
  rate: number;
  durationS: number;
  ackN: number;
  floorN: number;
  e2eN: number;
  /** How long one closed-loop payment may take to be credited before it counts as failed. */
  creditTimeoutMs: number;
  /** After the offered run stops posting, how long its payments still have to be credited. */
  drainMs: number;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const value = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return fallback;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v < 0)
      throw new Error(`${flag} needs a non-negative number, got ${JSON.stringify(argv[i + 1])}`);
    return v;
  };
  const known = new Set(['--quick', '--preload', '--rate', '--duration', '--n']);
  const unknown = argv.filter((a, i) => a.startsWith('--') && !known.has(a) && !known.has(argv[i - 1] ?? ''));
  if (unknown.length > 0) throw new Error(`unknown flag(s) ${unknown.join(' ')}; known: ${[...known].join(' ')}`);
  const scale = value('--n', 1);
  return {
    quick,
    preload: Math.floor(value('--preload', quick ? 5_000 : 100_000)),
    rate: value('--rate', 10),
    durationS: value('--duration', quick ? 10 : 60),
    ackN: Math.max(20, Math.round((quick ? 300 : 2_000) * scale)),
    floorN: Math.max(16, Math.round((quick ? 40 : 200) * scale)),
    e2eN: Math.max(8, Math.round((quick ? 30 : 150) * scale)),
    creditTimeoutMs: quick ? 20_000 : 60_000,
    drainMs: Math.max(quick ? 15 : 30, value('--duration', quick ? 10 : 60)) * 1000,
  };
}

const ACK_CONCURRENCY = 8;
const E2E_CONCURRENCY = 4;
const FLOOR_CONCURRENCIES = [4, 16] as const;
const CREDIT_POLL_MS = 20;
const BENCH_CUSTOMER = 'bench-customer';
const say = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

async function postOk(url: string, body: Buffer): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${text.slice(0, 120)}`);
}

interface OfferedStats {
  posted: number;
  credited: number;
  stats: RunStats;
  backlogFirstHalf: number;
  backlogSecondHalf: number;
  backlogAtEnd: number;
  drainS: number;
  grew: boolean;
}

interface PhaseResult {
  bare: RunStats;
  ack: RunStats;
  e2e: RunStats;
  offered: OfferedStats;
}

type Label = 'empty' | 'preloaded';

/** One store: its database, API and simulator (createTestStack), its worker process, its credit watch. */
interface Store {
  label: Label;
  stack: TestStack;
  worker: WorkerChild;
  watch: CreditWatch;
  credits: number;
  close(): Promise<void>;
}

async function openStore(label: Label, serviceBundle: string, dir: string): Promise<Store> {
  const stack = await createTestStack(`bench-${label}`);
  try {
    await stack.stopWorker(); // the worker runs in its own process, below
    await adminOk(stack, 'PUT', '/admin/integrations/bench', {
      name: 'Bench',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
    });
    await adminOk(stack, 'PUT', '/admin/integrations/bench-ack', {
      name: 'Bench ack only',
      mode: 'sandbox',
      ipnEnabled: false,
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
    });
    await adminOk(stack, 'PUT', `/admin/customers/${BENCH_CUSTOMER}`, {
      name: 'Bench',
      paypalEmails: ['buyer@paypalsandbox.com'],
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ADMIN_TOKEN: undefined,
      LOG_LEVEL: 'warn',
      BENCH_WORKFLOW_BUNDLE: serviceBundle,
    };
    for (const key of Object.keys(ConfigSchema.shape)) {
      const v = (stack.config as Record<string, unknown>)[key];
      if (key !== 'ADMIN_TOKEN' && key !== 'LOG_LEVEL' && v !== undefined) env[key] = String(v);
    }
    const worker = await startWorkerChild('service', env, path.join(dir, `service-worker-${label}.log`));
    const watch = new CreditWatch(stack.db.models, accountIdOf(BENCH_CUSTOMER, 'USD', 'sandbox'), CREDIT_POLL_MS);
    return {
      label,
      stack,
      worker,
      watch,
      credits: 0,
      async close() {
        await watch.stop();
        await worker.stop();
        await stack.close();
      },
    };
  } catch (err) {
    await stack.close().catch(() => {});
    throw err;
  }
}

/** POST /ipn/bench (registered with the simulator, so it verifies), then its credit: ms between the two. */
async function pay(st: Store, base: Buffer, id: string, creditTimeoutMs: number): Promise<number> {
  // Workflow ids (named after txn ids) are unique per Temporal namespace, which both stores share.
  const txnId = `${st.label === 'empty' ? 'E' : 'P'}${id}`;
  const raw = withField(base, 'txn_id', txnId);
  st.stack.sim.registerMessage(raw);
  const t0 = nowMs();
  const seen = st.watch.credited(txnId, creditTimeoutMs);
  seen.catch(() => {}); // awaited below; a failed POST must not leave it unhandled
  await postOk(`${st.stack.baseUrl}/ipn/bench`, raw);
  const at = await seen;
  st.credits++;
  return at - t0;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const tag = crypto.randomBytes(3).toString('hex').toUpperCase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-bench-'));
  const loadAtStart = os.loadavg()[0]!;
  const started = Date.now();
  let ok = false;
  let temporal: TemporalServer | undefined;
  let mongo: MongoServer | undefined;
  const stores: Store[] = [];
  const children: WorkerChild[] = [];
  try {
    say(`logs in ${dir}; starting servers`);
    [temporal, mongo] = await Promise.all([
      process.env.TEMPORAL_ADDRESS
        ? undefined
        : startTemporalServer({ headless: true, logFile: path.join(dir, 'temporal.log'), log: say }),
      process.env.MONGODB_URI ? undefined : startMongoServer({ logFile: path.join(dir, 'db.log'), log: say }),
    ]);
    process.env.TEMPORAL_ADDRESS ??= temporal!.address;
    process.env.MONGODB_URI ??= mongo!.uri;

    say('bundling workflows');
    const serviceBundle = path.join(dir, 'service-workflows.js');
    const floorBundle = path.join(dir, 'floor-workflows.js');
    fs.writeFileSync(
      serviceBundle,
      (await bundleWorkflowCode({ ...WORKFLOW_BUNDLE, logger: quietBundlerLogger })).code,
    );
    fs.writeFileSync(
      floorBundle,
      (await bundleWorkflowCode({ workflowsPath: require.resolve('./floor/workflows'), logger: quietBundlerLogger }))
        .code,
    );
    process.env.IPNFLOW_TEST_WORKFLOW_BUNDLE = serviceBundle;

    // Two stores, each its own database (FerretDB locks per database), API, task queue and
    // service worker process: the preloaded one is filled while nothing else runs, and the
    // empty one's offered-load backlog cannot spill into the preloaded one's measurements.
    const base = sample('web_accept_completed_ipn_simulator_01');
    const open = async (label: Label): Promise<Store> => {
      const st = await openStore(label, serviceBundle, dir);
      stores.push(st);
      return st;
    };
    say('starting the two stores and workers');
    const empty = await open('empty');
    const loaded = await open('preloaded');
    const floorQueue = `bench-floor-${tag}`;
    const floorEnv = {
      ...process.env,
      MONGODB_DB: `bench-floor-${tag}`,
      BENCH_WORKFLOW_BUNDLE: floorBundle,
      BENCH_TASK_QUEUE: floorQueue,
      BENCH_VERIFY_URL: empty.stack.sim.verifyUrl,
    };
    const floorWorker = await startWorkerChild('floor', floorEnv, path.join(dir, 'floor-worker.log'));
    children.push(floorWorker);

    say('warming up');
    for (const st of [empty, loaded]) {
      await pay(st, base, `W${tag}`, opts.creditTimeoutMs).catch(async (err: Error) => {
        // Say where the payment stopped: the stored message's state and the payment's.
        const msgs = await st.stack.db.models.IpnMessage.find(
          { integrationId: 'bench' },
          { state: 1, outcome: 1, flags: 1 },
        ).lean();
        const payment = await st.stack.db.models.Payment.findById(`bench:${st.label === 'empty' ? 'E' : 'P'}W${tag}`, {
          state: 1,
          holdReason: 1,
          flags: 1,
        }).lean();
        throw new Error(
          `warm-up payment in the ${st.label} store: ${err.message}; messages ` +
            `${JSON.stringify(msgs)}; payment ${JSON.stringify(payment)}`,
        );
      });
    }
    const template: PaymentTemplate = await captureTemplate(
      loaded.stack.db.models,
      'bench',
      `PW${tag}`,
      `${loaded.watch.accountId}:1`,
    );
    await closedLoop(8, 4, (i) => runFloor(empty.stack, floorQueue, base, `FW${tag}${i}`));

    say(`preloading ${opts.preload.toLocaleString('en')} credited IPNs (messages, payments, ledger entries, balances)`);
    const t0 = nowMs();
    let lastSaid = t0;
    await preload(loaded.stack.db.models, template, base, opts.preload, {
      onProgress: (done) => {
        if (nowMs() - lastSaid < 15_000) return;
        lastSaid = nowMs();
        say(`  ${done.toLocaleString('en')} / ${opts.preload.toLocaleString('en')}`);
      },
    });
    const preloadS = (nowMs() - t0) / 1000;
    say(`preloaded in ${preloadS.toFixed(0)} s`);

    say(`(3) workflow floor: ${opts.floorN} at concurrency ${FLOOR_CONCURRENCIES.join(' and ')}`);
    const floor: Record<number, RunStats> = {};
    for (const c of FLOOR_CONCURRENCIES) {
      floor[c] = await closedLoop(opts.floorN * (c / 4), c, (i) =>
        runFloor(empty.stack, floorQueue, base, `F${tag}C${c}X${i}`),
      );
    }
    await floorWorker.stop();

    const closed = async (st: Store) => {
      const { label } = st;
      const bodies = Array.from({ length: opts.ackN }, (_, i) => withField(base, 'txn_id', `A${tag}${i}`));
      const bare = await startBareApp(process.env.MONGODB_URI!, st.stack.config.MONGODB_DB);
      try {
        const ackUrl = `${st.stack.baseUrl}/ipn/bench-ack`;
        await closedLoop(20, ACK_CONCURRENCY, (i) =>
          postOk(bare.url, bodies[i]!)
            .then(() => postOk(ackUrl, bodies[i]!))
            .then(() => 0),
        );
        say(`[${label}] (1) bare and (2) ack: ${opts.ackN} POSTs each at concurrency ${ACK_CONCURRENCY}`);
        const timed = (url: string) => async (i: number) => {
          const start = nowMs();
          await postOk(url, bodies[i]!);
          return nowMs() - start;
        };
        const bareStats = await closedLoop(opts.ackN, ACK_CONCURRENCY, timed(bare.url));
        const ack = await closedLoop(opts.ackN, ACK_CONCURRENCY, timed(ackUrl));
        say(`[${label}] (4) POST -> credit: ${opts.e2eN} payments at concurrency ${E2E_CONCURRENCY}`);
        const e2e = await closedLoop(opts.e2eN, E2E_CONCURRENCY, (i) =>
          pay(st, base, `C${tag}${i}`, opts.creditTimeoutMs),
        );
        return { bare: bareStats, ack, e2e };
      } finally {
        await bare.stop();
      }
    };
    const offered = async (st: Store): Promise<OfferedStats> => {
      say(`[${st.label}] (4) offered load: ${opts.rate}/s for ${opts.durationS} s`);
      // Each payment gets the run's length plus a drain window to be credited, then counts as failed.
      const result = await offeredLoad(opts.rate, opts.durationS, (i) =>
        pay(st, base, `O${tag}${i}`, opts.durationS * 1000 + opts.drainMs),
      );
      // Its worker stops here (with its backlog, if any) so the next run has the machine to itself.
      await st.worker.stop();
      return result;
    };
    const closedE = await closed(empty);
    const closedP = await closed(loaded);
    const results: Record<Label, PhaseResult> = {
      empty: { ...closedE, offered: await offered(empty) },
      preloaded: { ...closedP, offered: await offered(loaded) },
    };

    // The money the ledger holds for each bench customer must be exactly its credits, each once.
    const ledgerLines: string[] = [];
    let exact = true;
    for (const st of [empty, loaded]) {
      const amount = template.entry.amountMinor as number;
      const balance = await Promise.race([
        balanceMinor(st.stack, BENCH_CUSTOMER, 'USD'),
        sleep(60_000).then(() => NaN),
      ]);
      const entries = st.watch.head;
      const same = balance === entries * amount && entries >= st.credits;
      // A store too busy to answer is a measurement; a balance that disagrees with its entries is a bug.
      if (!Number.isNaN(balance)) exact &&= same;
      const verdict = Number.isNaN(balance)
        ? 'unknown (GET /admin/customers did not answer within 60 s)'
        : same
          ? 'yes'
          : 'NO';
      ledgerLines.push(
        `${st.label}: ${st.watch.accountId} has ${entries} entries (the bench saw ` +
          `${st.credits} credits), balance ${balance} = ${entries} × ${amount}: ${verdict}`,
      );
    }

    print({
      opts,
      floor,
      empty: results.empty,
      loaded: results.preloaded,
      preloadS,
      serviceWorkers: [empty.worker, loaded.worker],
      floorWorker,
      ledgerLines,
      mongoKind: mongo?.kind ?? 'external',
      loadAtStart,
      elapsedS: (Date.now() - started) / 1000,
    });
    ok = exact;
    if (!ok) process.exitCode = 1;
  } finally {
    for (const c of children) await c.stop().catch(() => {});
    for (const st of stores)
      await st.close().catch((err) => say(`closing the ${st.label} store: ${(err as Error).message}`));
    await Promise.all([temporal?.stop(), mongo?.stop()]);
    if (ok) fs.rmSync(dir, { recursive: true, force: true });
    else say(`logs kept in ${dir}`);
  }
}

async function adminOk(s: TestStack, method: string, url: string, body: unknown): Promise<void> {
  const res = await s.admin(method, url, body);
  if (res.status >= 300) throw new Error(`${method} ${url} answered ${res.status}: ${JSON.stringify(res.body)}`);
}

async function runFloor(s: TestStack, taskQueue: string, base: Buffer, id: string): Promise<number> {
  const raw = withField(base, 'txn_id', id);
  s.sim.registerMessage(raw);
  const t0 = nowMs();
  const answer = await s.client.workflow.execute<typeof floorIpn>('floorIpn', {
    taskQueue,
    workflowId: `bench-floor-${id}`,
    args: [raw.toString('latin1')],
  });
  if (answer !== 'VERIFIED') throw new Error(`floor workflow ${id}: postback answered ${answer}`);
  return nowMs() - t0;
}

/**
 * Open loop: a payment every 1/rate s whatever happens to the earlier ones, as PayPal sends them.
 * The backlog (posted, not yet credited) is sampled each second; it grew when its mean over the
 * second half of the run exceeds the first half's by more than half a second of arrivals.
 */
async function offeredLoad(
  rate: number,
  durationS: number,
  pay: (i: number) => Promise<number>,
): Promise<OfferedStats> {
  const total = Math.max(1, Math.round(rate * durationS));
  const latencies: number[] = [];
  let posted = 0;
  let credited = 0;
  let errors = 0;
  let firstError: string | undefined;
  const backlog: number[] = [];
  const inFlight: Array<Promise<void>> = [];
  const sampler = setInterval(() => backlog.push(posted - credited - errors), 1000);
  const start = nowMs();
  for (let i = 0; i < total; i++) {
    await sleep(start + (i * 1000) / rate - nowMs());
    posted++;
    inFlight.push(
      pay(i).then(
        (ms) => {
          credited++;
          latencies.push(ms);
        },
        (err) => {
          errors++;
          firstError ??= errorText(err);
        },
      ),
    );
  }
  const postedAt = nowMs();
  clearInterval(sampler);
  const backlogAtEnd = posted - credited - errors;
  await Promise.all(inFlight);
  const drainS = (nowMs() - postedAt) / 1000;
  const half = Math.floor(backlog.length / 2);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const first = mean(backlog.slice(0, half));
  const second = mean(backlog.slice(half));
  return {
    posted,
    credited,
    stats: summarize(latencies, (nowMs() - start) / 1000, errors, firstError),
    backlogFirstHalf: first,
    backlogSecondHalf: second,
    backlogAtEnd,
    drainS,
    grew: second > first + Math.max(2, rate * 0.5),
  };
}

function print(r: {
  opts: Options;
  floor: Record<number, RunStats>;
  empty: PhaseResult;
  loaded: PhaseResult;
  preloadS: number;
  serviceWorkers: WorkerChild[];
  floorWorker: WorkerChild;
  ledgerLines: string[];
  mongoKind: string;
  loadAtStart: number;
  elapsedS: number;
}): void {
  const { opts, floor, empty, loaded } = r;
  const lat = (x: RunStats) => `${fmt.ms(x.p50)} / ${fmt.ms(x.p99)}`;
  const pre = `preloaded ${opts.preload.toLocaleString('en')}`;
  const out: string[] = [];
  out.push('');
  out.push(
    `ipnflow bench${opts.quick ? ' --quick' : ''}: ${os.cpus().length} ` +
      `cores, load average ${r.loadAtStart.toFixed(1)} ` +
      `at start, ${os.loadavg()[0]!.toFixed(1)} at end; database ${r.mongoKind}; ${r.elapsedS.toFixed(0)} s`,
  );
  out.push('');
  const rows: string[][] = [];
  const both = (name: string, n: string, f: (p: PhaseResult) => string) => rows.push([name, n, f(empty), f(loaded)]);
  both('(1) bare Koa + insertOne: req/s', `${opts.ackN} @ c${ACK_CONCURRENCY}`, (p) => fmt.rate(p.bare.perS, '/s'));
  both('    p50 / p99', '', (p) => lat(p.bare));
  both('(2) POST /ipn ack: req/s', `${opts.ackN} @ c${ACK_CONCURRENCY}`, (p) => fmt.rate(p.ack.perS, '/s'));
  both('    p50 / p99', '', (p) => lat(p.ack));
  both('    ratio to (1)', '', (p) => fmt.ratio(p.ack.perS / p.bare.perS));
  both('    failed (1) / (2)', '', (p) => `${p.bare.errors} / ${p.ack.errors}`);
  for (const c of FLOOR_CONCURRENCIES) {
    rows.push([`(3) workflow floor: workflows/s`, `${floor[c]!.n} @ c${c}`, fmt.rate(floor[c]!.perS, '/s'), '(once)']);
    rows.push(['    p50 / p99 start -> result', '', lat(floor[c]!), '']);
    if (floor[c]!.errors > 0) rows.push(['    failed', '', String(floor[c]!.errors), '']);
  }
  both('(4) POST -> credit: credited/s', `${opts.e2eN} @ c${E2E_CONCURRENCY}`, (p) => fmt.rate(p.e2e.perS, '/s'));
  both('    p50 / p99', '', (p) => lat(p.e2e));
  both(`    ratio to (3) @ c${E2E_CONCURRENCY}`, '', (p) => fmt.ratio(p.e2e.perS / floor[E2E_CONCURRENCY]!.perS));
  both('    failed (non-200 or not credited)', '', (p) => String(p.e2e.errors));
  both(`(4) offered ${opts.rate}/s: credited/s`, `${opts.durationS} s`, (p) =>
    fmt.rate(p.offered.credited / p.offered.stats.wallS, '/s'),
  );
  both('    p50 / p99 POST -> credit', '', (p) => lat(p.offered.stats));
  both(
    '    backlog 1st half / 2nd half',
    '',
    (p) => `${p.offered.backlogFirstHalf.toFixed(1)} / ${p.offered.backlogSecondHalf.toFixed(1)}`,
  );
  both('    backlog at end / drained in', '', (p) => `${p.offered.backlogAtEnd} / ${p.offered.drainS.toFixed(1)} s`);
  both('    failed (non-200 or not credited)', '', (p) => `${p.offered.stats.errors} of ${p.offered.posted}`);
  rows.push(['(5) preload time', '', '', `${r.preloadS.toFixed(0)} s`]);
  const [we, wp] = r.serviceWorkers as [WorkerChild, WorkerChild];
  rows.push(['(6) service worker peak RSS (VmHWM)', '', fmt.mb(we.peakRss()), fmt.mb(wp.peakRss())]);
  rows.push(['    highest RSS sampled every 250 ms', '', fmt.mb(we.maxSampledRss()), fmt.mb(wp.maxSampledRss())]);
  rows.push([
    '    floor worker: peak RSS (VmHWM) / highest sampled',
    '',
    `${fmt.mb(r.floorWorker.peakRss())} / ${fmt.mb(r.floorWorker.maxSampledRss())}`,
    '',
  ]);
  out.push(table(['measurement', 'N', 'empty store', pre], rows));
  out.push('');

  const goals: string[][] = [];
  const goal = (name: string, measured: number, show: (x: number) => string, target: string, pass: boolean) =>
    goals.push([name, show(measured), target, pass ? 'PASS' : 'FAIL']);
  for (const [label, p] of [
    ['empty', empty],
    ['preloaded', loaded],
  ] as const) {
    const x = p.ack.perS / p.bare.perS;
    goal(
      `(2)/(1) ack req/s, ${label}${p.ack.errors ? ` (${p.ack.errors} not 200)` : ''}`,
      x,
      fmt.ratio,
      '>= 0.70×',
      x >= 0.7 && p.ack.errors === 0,
    );
  }
  for (const [label, p] of [
    ['empty', empty],
    ['preloaded', loaded],
  ] as const) {
    const x = p.e2e.perS / floor[E2E_CONCURRENCY]!.perS;
    goal(`(4)/(3) credited/s @ c${E2E_CONCURRENCY}, ${label}`, x, fmt.ratio, '>= 1.00×', x >= 1);
    goal(`(4) p99 POST -> credit @ c${E2E_CONCURRENCY}, ${label}`, p.e2e.p99, fmt.ms, '<= 2000 ms', p.e2e.p99 <= 2000);
    goal(
      `(4) p99 POST -> credit @ ${opts.rate}/s, ${label}`,
      p.offered.stats.p99,
      fmt.ms,
      '<= 2000 ms',
      p.offered.stats.p99 <= 2000,
    );
    const failed = p.e2e.errors + p.offered.stats.errors;
    goal(
      `(4) every payment answered 200 and credited, ${label}`,
      failed,
      (x) => `${x} failed`,
      '0 failed',
      failed === 0,
    );
    goal(
      `(4) backlog growth @ ${opts.rate}/s, ${label}`,
      p.offered.backlogSecondHalf - p.offered.backlogFirstHalf,
      (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`,
      'does not grow',
      !p.offered.grew,
    );
  }
  const ratios: Array<[string, number]> = [
    ['(5) ack p50, preloaded / empty', loaded.ack.p50 / empty.ack.p50],
    ['(5) POST -> credit p50 @ c4, preloaded / empty', loaded.e2e.p50 / empty.e2e.p50],
    [`(5) POST -> credit p50 @ ${opts.rate}/s, preloaded / empty`, loaded.offered.stats.p50 / empty.offered.stats.p50],
  ];
  for (const [name, x] of ratios) goal(name, x, fmt.ratio, '<= 1.20×', x <= 1.2);
  out.push(table(['goal', 'measured', 'target', 'result'], goals));
  out.push('');
  for (const line of r.ledgerLines) out.push(`ledger, ${line}`);
  const failures: Array<[string, RunStats]> = [
    ...FLOOR_CONCURRENCIES.map((c) => [`(3) floor c${c}`, floor[c]!] as [string, RunStats]),
    ...(['empty', 'preloaded'] as const).flatMap((label) => {
      const p = label === 'empty' ? empty : loaded;
      return [
        [`(1) bare, ${label}`, p.bare],
        [`(2) ack, ${label}`, p.ack],
        [`(4) c${E2E_CONCURRENCY}, ${label}`, p.e2e],
        [`(4) offered, ${label}`, p.offered.stats],
      ] as Array<[string, RunStats]>;
    }),
  ];
  for (const [name, x] of failures) if (x.firstError) out.push(`first failure in ${name}: ${x.firstError}`);
  out.push(
    `p50/p99 are nearest-rank percentiles over every request of the run; ` +
      `credits are seen by polling ledger_entries by _id every ${CREDIT_POLL_MS} ms while a payment waits.`,
  );
  console.log(out.join('\n'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
