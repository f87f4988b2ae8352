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
import './lib/as-production.mjs';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { quietBundlerLogger, WORKFLOW_BUNDLE } from '../src/shared/temporal/bundle';
import { ConfigSchema } from '../src/shared/config';
import { startMongoServer, type MongoServer } from '../tools/dev/services/mongo-server';
import { startTemporalServer, type TemporalServer } from '../tools/dev/services/temporal-server';
import { balanceMinor, createTestStack, sample, withField, type TestStack } from '../test/support/stack';
import { startBareApp } from './bare-app';
import type { floorIpn } from './floor/workflows';
import { startWorkerChild, type WorkerChild } from './lib/children';
import { BurstLedger, CreditWatch } from './lib/credits';
import { accountIdOf } from '../src/shared/ledger';
import { closedLoop, errorText, mergeStats, nowMs, sleep, spread, summarize, type RunStats } from './lib/load';
import { fmt, table } from './lib/table';
import { mergeWindows, nameProcess, snapshot, watched, windowOf, type MachineWindow } from './lib/machine';
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
  /** How many times the headline figures (floor, credited/s and their ratio, the burst) are measured. */
  reps: number;
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
  const known = new Set(['--quick', '--preload', '--rate', '--duration', '--n', '--reps']);
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
    reps: Math.max(1, Math.floor(value('--reps', 3))),
  };
}

const ACK_CONCURRENCY = 8;
/** Payments per store and floor workflows run before anything is measured. */
const WARM_N = 20;
const E2E_CONCURRENCY = 4;
const CREDIT_POLL_MS = 20;
const BENCH_CUSTOMER = 'bench-customer';
/** The burst: BURST_N payments spread over BURST_CUSTOMERS customers, all posted at once. */
const BURST_N = 200;
const BURST_CUSTOMERS = 10;
const burstCustomer = (k: number) => `bench-burst-${k}`;
/** How often a draining burst's last expected entry is looked for (its credits are timed by the entries). */
const BURST_POLL_MS = 100;
/**
 * Through fetch, as every figure before was measured. A kept-alive node:http client takes about half the
 * CPU per POST: it lifted (1) bare from about 580/s to 1,100-1,300/s and (2) ack from 520/s to 620-860/s
 * (December 2026), so the ack goal's ratio would change with the load generator, not with the server.
 */
async function postOk(url: string, body: Buffer): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${text.slice(0, 120)}`);
}

const say = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

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
  offered: OfferedStats;
}

type Watched<T> = { value: T; machine: MachineWindow };

/** One repetition of the headline figures, each with what the machine did meanwhile. */
interface Rep {
  /** The two-activity floor at E2E_CONCURRENCY. */
  floor: Watched<RunStats>;
  /** POST -> credit, closed loop at E2E_CONCURRENCY, per store. */
  e2e: Record<Label, Watched<RunStats>>;
  /** BURST_N floor workflows started at once, twice: before the two payment bursts and after them. */
  floorBursts: readonly [Watched<RunStats>, Watched<RunStats>];
  /** BURST_N payments over BURST_CUSTOMERS customers posted at once, on the empty store, twice. */
  bursts: readonly [Watched<RunStats>, Watched<RunStats>];
  /** The two floor bursts as one: their workflows over their summed drain times. */
  floorBurst: Watched<RunStats>;
  /** The two payment bursts as one: their credits over their summed drain times. */
  burst: Watched<RunStats>;
  whole: MachineWindow;
}

/** Two runs of one measurement as one (the bursts are measured twice per repetition). */
const both = ([a, b]: readonly [Watched<RunStats>, Watched<RunStats>]): Watched<RunStats> => ({
  value: mergeStats(a.value, b.value),
  machine: mergeWindows(a.machine, b.machine),
});

type Label = 'empty' | 'preloaded';

/** One store: its database, API and simulator (createTestStack), its worker process, its credit watch. */
interface Store {
  label: Label;
  stack: TestStack;
  worker: WorkerChild;
  watch: CreditWatch;
  /** The burst customers' ledger accounts. */
  burstLedger: BurstLedger;
  credits: number;
  burstCredits: number;
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
    // Burst payments name their customer in `custom`, which wins over the payer's email.
    for (let k = 0; k < BURST_CUSTOMERS; k++)
      await adminOk(stack, 'PUT', `/admin/customers/${burstCustomer(k)}`, { name: `Burst ${k}`, paypalEmails: [] });
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
    nameProcess(worker.pid, 'service worker');
    const watch = new CreditWatch(stack.db.models, accountIdOf(BENCH_CUSTOMER, 'USD', 'sandbox'), CREDIT_POLL_MS);
    const burstLedger = new BurstLedger(
      stack.db.models,
      Array.from({ length: BURST_CUSTOMERS }, (_, k) => accountIdOf(burstCustomer(k), 'USD', 'sandbox')),
    );
    return {
      label,
      stack,
      worker,
      watch,
      burstLedger,
      credits: 0,
      burstCredits: 0,
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

/** What a burst posted: when it started and each accepted POST's time (ms since the epoch, as entries' createdAt). */
interface BurstPosts {
  start: number;
  postedAt: Map<string, number>;
  errors: number;
  firstError?: string;
  /** Whether every accepted payment was credited before the deadline. */
  drained: boolean;
}

/**
 * BURST_N payments posted at once, payment i to burst customer i mod BURST_CUSTOMERS (named in
 * `custom`), then waits until each account holds its credits. Timed afterwards by burstStats.
 */
async function postBurst(st: Store, base: Buffer, id: string, creditTimeoutMs: number): Promise<BurstPosts> {
  const start = Date.now();
  const postedAt = new Map<string, number>();
  const expected: number[] = Array.from({ length: BURST_CUSTOMERS }, () => 0);
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(
    Array.from({ length: BURST_N }, async (_, i) => {
      const k = i % BURST_CUSTOMERS;
      const txnId = `${st.label === 'empty' ? 'E' : 'P'}${id}X${i}`;
      const raw = withField(withField(base, 'txn_id', txnId), 'custom', burstCustomer(k));
      st.stack.sim.registerMessage(raw);
      const t0 = Date.now();
      try {
        await postOk(`${st.stack.baseUrl}/ipn/bench`, raw);
        postedAt.set(txnId, t0);
        expected[k]!++;
      } catch (err) {
        errors++;
        firstError ??= errorText(err);
      }
    }),
  );
  const drained = await st.burstLedger.waitFor(expected, start + creditTimeoutMs, BURST_POLL_MS);
  return { start, postedAt, errors, firstError, drained };
}

/** A burst's figures from its entries: latency POST -> entry, credited/s from the first POST to the last entry. */
async function burstStats(st: Store, posts: BurstPosts, creditTimeoutMs: number): Promise<RunStats> {
  const credited = await st.burstLedger.collect();
  const latencies: number[] = [];
  let { errors, firstError } = posts;
  let last = posts.start;
  for (const [txnId, t0] of posts.postedAt) {
    const at = credited.get(txnId);
    if (at === undefined) {
      errors++;
      firstError ??= `no credit of txn ${txnId} within ${creditTimeoutMs} ms`;
      continue;
    }
    latencies.push(at - t0);
    last = Math.max(last, at);
  }
  st.burstCredits += latencies.length;
  const end = posts.drained ? last : posts.start + creditTimeoutMs;
  return summarize(latencies, Math.max(1, end - posts.start) / 1000, errors, firstError);
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
    nameProcess(floorWorker.pid, 'floor worker');
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
    // One payment warms little: the first tasks of each workflow thread load the bundle and JIT the
    // hot paths, which showed as a slower first repetition. Warm both sides alike at the measured
    // concurrency; the template above stays the first payment's documents.
    const warm = await watched(async () => {
      for (const st of [empty, loaded])
        await closedLoop(WARM_N, E2E_CONCURRENCY, (i) => pay(st, base, `W${tag}X${i}`, opts.creditTimeoutMs));
      return closedLoop(WARM_N, E2E_CONCURRENCY, (i) => runFloor(empty.stack, floorQueue, base, `FW${tag}${i}`));
    });
    say(`warmed: ${WARM_N} payments per store, ${WARM_N} floor workflows; load average ${warm.machine.load1End}`);

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

    say(`(3) workflow floor: ${opts.floorN * 4} at concurrency 16 (once)`);
    const floor16 = await closedLoop(opts.floorN * 4, 16, (i) =>
      runFloor(empty.stack, floorQueue, base, `F${tag}C16X${i}`),
    );

    // Warmed alike for the bursts: the floor worker has run the floor at c16 just above (its little
    // code is compiled at once), the service workers a few dozen payments, and the payment burst's CPU
    // per payment then fell from one repetition to the next (62, 57, 50 ms in one --quick run, while
    // the floor burst's stayed at 41-45 ms). One untimed burst of each kind first, on each store.
    say(`warming the bursts: ${BURST_N} floor workflows, then ${BURST_N} payments per store, at once`);
    const burstTimeoutMs = opts.creditTimeoutMs + 120_000;
    await closedLoop(BURST_N, BURST_N, (i) => runFloor(empty.stack, floorQueue, base, `FBW${tag}X${i}`));
    for (const st of [empty, loaded]) {
      const warmed = await burstStats(st, await postBurst(st, base, `BW${tag}`, burstTimeoutMs), burstTimeoutMs);
      if (warmed.errors > 0) say(`[${st.label}] warm-up burst: ${warmed.errors} failed, first: ${warmed.firstError}`);
    }

    // The headline figures, measured reps times side by side, so that load on the machine or a
    // slow moment hits a floor and the credited/s it is compared with alike, and shows as spread.
    const reps: Rep[] = [];
    for (let r = 0; r < opts.reps; r++) {
      const at = `rep ${r + 1}/${opts.reps}`;
      const start = snapshot();
      say(`${at}: (3) floor ${opts.floorN} @ c${E2E_CONCURRENCY}; load average ${start.load1.toFixed(2)}`);
      const floor = await watched(() =>
        closedLoop(opts.floorN, E2E_CONCURRENCY, (i) => runFloor(empty.stack, floorQueue, base, `F${tag}R${r}X${i}`)),
      );
      const e2e = {} as Record<Label, Watched<RunStats>>;
      for (const st of [empty, loaded]) {
        say(`${at}: [${st.label}] (4) POST -> credit: ${opts.e2eN} payments at concurrency ${E2E_CONCURRENCY}`);
        e2e[st.label] = await watched(() =>
          closedLoop(opts.e2eN, E2E_CONCURRENCY, (i) => pay(st, base, `C${tag}R${r}X${i}`, opts.creditTimeoutMs)),
        );
      }
      const floorBurstOnce = (k: number) => {
        say(`${at}: (3) floor burst ${k}/2: ${BURST_N} workflows started at once`);
        return watched(() =>
          closedLoop(BURST_N, BURST_N, (i) => runFloor(empty.stack, floorQueue, base, `FB${tag}R${r}K${k}X${i}`)),
        );
      };
      const burstOnce = async (k: number) => {
        say(`${at}: [empty] (4) burst ${k}/2: ${BURST_N} payments over ${BURST_CUSTOMERS} customers posted at once`);
        const posts = await watched(() => postBurst(empty, base, `B${tag}R${r}K${k}`, burstTimeoutMs));
        return { ...posts, value: await burstStats(empty, posts.value, burstTimeoutMs) };
      };
      // Floor, payments, payments, floor: a machine speeding up or slowing down through the repetition
      // weighs on both kinds alike, and one burst that ran slow decides half a figure, not all of it.
      const floorFirst = await floorBurstOnce(1);
      const bursts = [await burstOnce(1), await burstOnce(2)] as const;
      const floorBursts = [floorFirst, await floorBurstOnce(2)] as const;
      reps.push({
        floor,
        e2e,
        floorBursts,
        bursts,
        floorBurst: both(floorBursts),
        burst: both(bursts),
        whole: windowOf(start, snapshot()),
      });
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
        return { bare: bareStats, ack };
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
    const accounts = [empty, loaded].flatMap((st) => [
      { st, customer: BENCH_CUSTOMER, watch: st.watch, credits: st.credits },
      { st, customer: `${burstCustomer(0)}..${BURST_CUSTOMERS - 1}`, watch: undefined, credits: st.burstCredits },
    ]);
    for (const { st, customer, watch, credits } of accounts) {
      const amount = template.entry.amountMinor as number;
      const customers = watch ? [BENCH_CUSTOMER] : st.burstLedger.accountIds.map((_, k) => burstCustomer(k));
      const balance = await Promise.race([
        Promise.all(customers.map((c) => balanceMinor(st.stack, c, 'USD'))).then((xs) => xs.reduce((a, b) => a + b, 0)),
        sleep(60_000).then(() => NaN),
      ]);
      const entries = watch ? watch.head : st.burstLedger.entries;
      const same = balance === entries * amount && entries >= credits;
      // A store too busy to answer is a measurement; a balance that disagrees with its entries is a bug.
      if (!Number.isNaN(balance)) exact &&= same;
      const verdict = Number.isNaN(balance)
        ? 'unknown (GET /admin/customers did not answer within 60 s)'
        : same
          ? 'yes'
          : 'NO';
      ledgerLines.push(
        `${st.label}: ${customer} USD ${watch ? 'has' : 'have'} ${entries} entries (the bench saw ` +
          `${credits} credits), balance ${balance} = ${entries} × ${amount}: ${verdict}`,
      );
    }

    print({
      opts,
      floor16,
      reps,
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
  floor16: RunStats;
  reps: Rep[];
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
  const { opts, floor16, reps, empty, loaded } = r;
  const lat = (x: RunStats) => `${fmt.ms(x.p50)} / ${fmt.ms(x.p99)}`;
  const pre = `preloaded ${opts.preload.toLocaleString('en')}`;
  const c = E2E_CONCURRENCY;
  const out: string[] = [];
  out.push('');
  out.push(
    `ipnflow bench${opts.quick ? ' --quick' : ''}: ${os.cpus().length} ` +
      `cores, load average ${r.loadAtStart.toFixed(1)} ` +
      `at start, ${os.loadavg()[0]!.toFixed(1)} at end; database ${r.mongoKind}; ${r.elapsedS.toFixed(0)} s`,
  );
  out.push('');

  // The headline figures: one column per repetition, then min / median / max; goals use the median.
  const perRep = <T>(f: (x: Rep) => T): T[] => reps.map(f);
  const e2eRatio = (label: Label) => (x: Rep) => x.e2e[label].value.perS / x.floor.value.perS;
  const burstRatio = (x: Rep) => x.burst.value.perS / x.floorBurst.value.perS;
  const headRows: string[][] = [];
  const headRow = (name: string, n: string, xs: number[], show: (x: number) => string) => {
    const s = spread(xs);
    headRows.push([name, n, ...xs.map(show), `${show(s.min)} / ${show(s.median)} / ${show(s.max)}`]);
  };
  const text = (name: string, cells: string[]) => headRows.push([name, '', ...cells, '']);
  const rate = (x: number) => fmt.rate(x, '/s');
  const cores = (x: number) => x.toFixed(2);
  const machine = (w: MachineWindow) => `${cores(w.outsideCores)} / ${cores(w.oursCores)}`;
  headRow(
    `(3) workflow floor: workflows/s`,
    `${opts.floorN} @ c${c}`,
    perRep((x) => x.floor.value.perS),
    rate,
  );
  text(
    '    p50 / p99 start -> result',
    perRep((x) => lat(x.floor.value)),
  );
  for (const label of ['empty', 'preloaded'] as const) {
    const name = label === 'empty' ? 'empty' : pre;
    headRow(
      `(4) POST -> credit, ${name}: credited/s`,
      `${opts.e2eN} @ c${c}`,
      perRep((x) => x.e2e[label].value.perS),
      rate,
    );
    text(
      '    p50 / p99',
      perRep((x) => lat(x.e2e[label].value)),
    );
    headRow(`    ratio to (3) @ c${c}`, '', perRep(e2eRatio(label)), fmt.ratio);
  }
  headRow(
    `(3) floor burst: workflows/s`,
    `2 × ${BURST_N} at once`,
    perRep((x) => x.floorBurst.value.perS),
    rate,
  );
  text(
    '    first / second (before / after (4))',
    perRep((x) => x.floorBursts.map((b) => rate(b.value.perS)).join(' / ')),
  );
  text(
    '    p50 / p99 start -> result',
    perRep((x) => lat(x.floorBurst.value)),
  );
  headRow(
    `(4) burst, empty, ${BURST_CUSTOMERS} customers: credited/s`,
    `2 × ${BURST_N} at once`,
    perRep((x) => x.burst.value.perS),
    rate,
  );
  text(
    '    first / second',
    perRep((x) => x.bursts.map((b) => rate(b.value.perS)).join(' / ')),
  );
  text(
    '    p50 / p99 POST -> credit',
    perRep((x) => lat(x.burst.value)),
  );
  headRow('    ratio to the floor burst', '', perRep(burstRatio), fmt.ratio);
  text(
    'load average (1 min) at start -> end',
    perRep((x) => `${x.whole.load1Start.toFixed(2)} -> ${x.whole.load1End.toFixed(2)}`),
  );
  text(
    'CPU cores: other processes / bench',
    perRep((x) => machine(x.whole)),
  );
  text(
    '    during (3) floor @ c4',
    perRep((x) => machine(x.floor.machine)),
  );
  text(
    '    during (4) @ c4, empty',
    perRep((x) => machine(x.e2e.empty.machine)),
  );
  text(
    '    during (4) @ c4, preloaded',
    perRep((x) => machine(x.e2e.preloaded.machine)),
  );
  text(
    '    during (3) floor burst',
    perRep((x) => machine(x.floorBurst.machine)),
  );
  text(
    '    during (4) burst',
    perRep((x) => machine(x.burst.machine)),
  );
  const cpuMs = (w: Watched<RunStats>) => (w.machine.oursCpuS * 1000) / Math.max(1, w.value.n);
  const ms = (x: number) => fmt.ms(x);
  headRow(
    'bench CPU per item: (3) floor @ c4',
    '',
    perRep((x) => cpuMs(x.floor)),
    ms,
  );
  headRow(
    '    (4) payment @ c4, empty',
    '',
    perRep((x) => cpuMs(x.e2e.empty)),
    ms,
  );
  headRow(
    '    (4) payment @ c4, preloaded',
    '',
    perRep((x) => cpuMs(x.e2e.preloaded)),
    ms,
  );
  headRow(
    '    (3) floor burst',
    '',
    perRep((x) => cpuMs(x.floorBurst)),
    ms,
  );
  headRow(
    '    (4) payment burst',
    '',
    perRep((x) => cpuMs(x.burst)),
    ms,
  );
  headRow(
    '    floor / payment @ c4, empty',
    '',
    perRep((x) => cpuMs(x.floor) / cpuMs(x.e2e.empty)),
    fmt.ratio,
  );
  const floorSpread = spread(perRep((x) => x.floor.value.perS));
  out.push(table(['headline', 'N', ...reps.map((_, i) => `rep ${i + 1}`), 'min / median / max'], headRows));
  /** One measurement's CPU per item by process, the median over repetitions, largest first. */
  const byProcess = (pick: (x: Rep) => Watched<RunStats>) => {
    const names = new Set(reps.flatMap((x) => [...pick(x).machine.cpuSByProcess.keys()]));
    const rows = [...names].map((name) => {
      const each = perRep(
        (x) => ((pick(x).machine.cpuSByProcess.get(name) ?? 0) * 1000) / Math.max(1, pick(x).value.n),
      );
      return [name, spread(each).median] as const;
    });
    return rows
      .filter(([, ms]) => ms >= 0.5)
      .sort((a, b) => b[1] - a[1])
      .map(([name, ms]) => `${name} ${fmt.ms(ms)}`)
      .join(', ');
  };
  out.push(
    `CPU per item by process (median of ${reps.length}; the service's API runs in the bench process):\n` +
      `    (3) floor @ c${c}: ${byProcess((x) => x.floor)}\n` +
      `    (4) payment @ c${c}, empty: ${byProcess((x) => x.e2e.empty)}\n` +
      `    (3) floor burst: ${byProcess((x) => x.floorBurst)}\n` +
      `    (4) payment burst: ${byProcess((x) => x.burst)}`,
  );
  out.push(
    `the floor @ c${c} varied by ${(((floorSpread.max - floorSpread.min) / floorSpread.median) * 100).toFixed(0)}% ` +
      `of its median between repetitions ((max - min) / median); CPU cores of other processes = the machine's busy ` +
      `cores (/proc/stat) minus the bench's own process tree's (/proc/<pid>/stat); CPU per item = the bench tree's ` +
      `CPU seconds in the measurement / items (on ${os.cpus().length} saturated cores a rate is about ` +
      `${os.cpus().length} s / CPU per item, so floor / payment CPU predicts the ratio under load).`,
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
  rows.push([`(3) workflow floor: workflows/s`, `${floor16.n} @ c16`, fmt.rate(floor16.perS, '/s'), '(once)']);
  rows.push(['    p50 / p99 start -> result', '', lat(floor16), '']);
  if (floor16.errors > 0) rows.push(['    failed', '', String(floor16.errors), '']);
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
  const median = (f: (x: Rep) => number) => spread(perRep(f)).median;
  for (const [label, p] of [
    ['empty', empty],
    ['preloaded', loaded],
  ] as const) {
    const x = median(e2eRatio(label));
    goal(`(4)/(3) credited/s @ c${c}, ${label}, median of ${reps.length}`, x, fmt.ratio, '>= 1.00×', x >= 1);
    const p99 = median((r) => r.e2e[label].value.p99);
    goal(`(4) p99 POST -> credit @ c${c}, ${label}, median`, p99, fmt.ms, '<= 2000 ms', p99 <= 2000);
    goal(
      `(4) p99 POST -> credit @ ${opts.rate}/s, ${label}`,
      p.offered.stats.p99,
      fmt.ms,
      '<= 2000 ms',
      p.offered.stats.p99 <= 2000,
    );
    const failed =
      reps.reduce((a, r) => a + r.e2e[label].value.errors + (label === 'empty' ? r.burst.value.errors : 0), 0) +
      p.offered.stats.errors;
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
  const b = median(burstRatio);
  goal(
    `(4)/(3) burst drain credited/s, 2 × ${BURST_N} at once, median of ${reps.length}`,
    b,
    fmt.ratio,
    '>= 1.00×',
    b >= 1,
  );
  const ratios: Array<[string, number]> = [
    ['(5) ack p50, preloaded / empty', loaded.ack.p50 / empty.ack.p50],
    [
      `(5) POST -> credit p50 @ c${c}, preloaded / empty, median`,
      median((r) => r.e2e.preloaded.value.p50 / r.e2e.empty.value.p50),
    ],
    [`(5) POST -> credit p50 @ ${opts.rate}/s, preloaded / empty`, loaded.offered.stats.p50 / empty.offered.stats.p50],
  ];
  for (const [name, x] of ratios) goal(name, x, fmt.ratio, '<= 1.20×', x <= 1.2);
  out.push(table(['goal', 'measured', 'target', 'result'], goals));
  out.push('');
  for (const line of r.ledgerLines) out.push(`ledger, ${line}`);
  const failures: Array<[string, RunStats]> = [
    ['(3) floor c16', floor16],
    ...reps.flatMap((x, i) =>
      (
        [
          ['(3) floor', x.floor],
          ['(4) empty', x.e2e.empty],
          ['(4) preloaded', x.e2e.preloaded],
          ['(3) floor burst', x.floorBurst],
          ['(4) burst', x.burst],
        ] as const
      ).map(([name, w]) => [`${name}, rep ${i + 1}`, w.value] as [string, RunStats]),
    ),
    ...(['empty', 'preloaded'] as const).flatMap((label) => {
      const p = label === 'empty' ? empty : loaded;
      return [
        [`(1) bare, ${label}`, p.bare],
        [`(2) ack, ${label}`, p.ack],
        [`(4) offered, ${label}`, p.offered.stats],
      ] as Array<[string, RunStats]>;
    }),
  ];
  for (const [name, x] of failures) if (x.firstError) out.push(`first failure in ${name}: ${x.firstError}`);
  out.push(
    `p50/p99 are nearest-rank percentiles over every request of the run; ` +
      `credits are seen by polling ledger_entries by _id every ${CREDIT_POLL_MS} ms while a payment waits; ` +
      `a burst's credits are timed by their entries' createdAt (while it drains, only its accounts' last ` +
      `expected entries are polled, every ${BURST_POLL_MS} ms); its credited/s runs from its first POST to ` +
      `its last credit.`,
  );
  console.log(out.join('\n'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
