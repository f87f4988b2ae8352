/**
 * `npm run rehearse`: production on this machine. The real Temporal server (built once per machine) on PostgreSQL,
 * FerretDB on another PostgreSQL, the PayPal simulator, two API processes and two worker processes from
 * `npm run build`'s dist/, behind a load balancer. Mixed load (payments, resends, refunds, a Mass Pay batch, a
 * recurring profile's cycles) while a worker, an API, the Temporal server and FerretDB's PostgreSQL are SIGKILLed and
 * restarted one at a time, then the workers are rolled to a second build carrying a `patched()` change. Then the
 * ledger is read: nothing lost, nothing doubled. Then the same measurement on the real server (2+2) and on the dev
 * server with one process (`npm start`), and the workflow floor on each. Exits non-zero on any loss or double.
 * Flags: --rate <payments/s> (default 3), --n <payments per measured run> (default 100), --no-build.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import mongoose from 'mongoose';
import { closedLoop, nowMs, percentile, sleep, type RunStats } from '../../bench/lib/load';
import { fmt, table } from '../../bench/lib/table';
import { startPayPalSimulator, type PayPalSimulator } from '../paypal-sim';
import { freePort, startProcess, waitUntil } from '../dev/services/process';
import { startTemporalServer } from '../dev/services/temporal-server';
import { SEARCH_ATTRIBUTES } from '../../src/shared/contract';
import { buildCheckout, buildPatched, ROOT, type Build } from './builds';
import { bundleFloor, CONCURRENCY, measureFloor } from './compare';
import { verify, type Verdict } from './checks';
import { ferretDb, loadBalancer, nodeProcess, postgresCluster, realTemporal, type Restartable } from './services';
import {
  adminClient,
  INTEGRATION,
  LOAD_CUSTOMERS,
  NVP_ENV,
  PAYEE,
  RECEIVER,
  runProfile,
  sendMasspay,
  setUp,
  Traffic,
  type WaitFor,
} from './traffic';
import { TEMPORAL_SERVER_VERSION } from '../dev/provision/temporal-server';

const T0 = Date.now();
const say = (m: string) => process.stderr.write(`[rehearse +${((Date.now() - T0) / 1000).toFixed(0)}s] ${m}\n`);
const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};

const waitFor: WaitFor = (what, probe, timeoutMs) =>
  waitUntil(what, async () => Boolean(await probe()), { timeoutMs, intervalMs: 500 });

interface FaultResult {
  what: string;
  /** From SIGKILL (or SIGTERM, for the roll) until the process serves again. */
  backS: number;
  /** From SIGKILL until a payment posted right after it was credited. */
  creditS: number;
}

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/** SIGKILL, a payment posted while it is down, restart (a few tries: a killed postmaster's children linger). */
async function fault(what: string, target: Restartable, traffic: Traffic): Promise<FaultResult> {
  say(`SIGKILL ${target.name} (pid ${target.pid()})`);
  const pid = target.pid();
  const t0 = nowMs();
  target.kill();
  await waitUntil(`${target.name} gone`, async () => gone(pid), { timeoutMs: 30_000, intervalMs: 50 });
  const probe = traffic.pay(LOAD_CUSTOMERS[0], { plain: true });
  for (let attempt = 1; ; attempt++) {
    try {
      await target.start();
      break;
    } catch (err) {
      if (attempt >= 10) throw err;
      say(`  restart ${attempt} failed (${(err as Error).message.split('\n')[0]}); again in 1 s`);
      await sleep(1_000);
    }
  }
  const backS = (nowMs() - t0) / 1000;
  const rec = await probe;
  const creditS = rec.creditedAt === undefined ? NaN : (rec.creditedAt - t0) / 1000;
  say(`  ${target.name} back after ${backS.toFixed(1)} s; a payment posted while it was down credited at ${creditS} s`);
  return { what, backS, creditS };
}

async function main(): Promise<void> {
  const rate = flag('--rate', 3);
  const measuredN = flag('--n', 100);
  const tag = crypto.randomBytes(3).toString('hex').toUpperCase();
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-rehearse-'));
  fs.chmodSync(runDir, 0o711); // as root, PostgreSQL runs as its own user and must enter it
  const logDir = path.join(runDir, 'logs');
  fs.mkdirSync(logDir);
  const stops: Array<() => Promise<unknown>> = [];
  const cleanUp: Array<() => void> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  say(`run ${tag}; logs and data in ${runDir}`);

  try {
    say('building: npm run build, then a patched copy for the rolling deploy');
    // --no-build (for working on the rehearsal itself): the dist/ already there, and the last run's patched build.
    const reuse = process.argv.includes('--no-build');
    const lastB = path.join(os.tmpdir(), 'ipnflow-rehearse-build-b');
    const buildA = reuse ? { label: 'A (checkout)', dir: ROOT, ...distOf(ROOT) } : await buildCheckout();
    if (!reuse || !fs.existsSync(lastB)) {
      fs.rmSync(lastB, { recursive: true, force: true });
      await buildPatched(lastB);
    }
    const buildB: Build = { label: 'B (patched)', dir: lastB, ...distOf(lastB) };

    say('starting PostgreSQL x2 (Temporal, FerretDB), FerretDB, the real Temporal server');
    const pgTemporal = await postgresCluster('postgres-temporal', path.join(runDir, 'pg-temporal'), logDir);
    const pgApp = await postgresCluster('postgres-ferretdb', path.join(runDir, 'pg-ferretdb'), logDir);
    await pgTemporal.start();
    stops.push(() => pgTemporal.stop());
    await pgApp.start();
    stops.push(() => pgApp.stop());
    const ferret = await ferretDb(pgApp, logDir, path.join(runDir, 'ferretdb-state'));
    await ferret.start();
    stops.push(() => ferret.stop());
    const temporal = await realTemporal({
      pg: pgTemporal,
      runDir,
      logDir,
      namespace: 'default',
      searchAttributes: SEARCH_ATTRIBUTES,
      log: say,
    });
    await temporal.start();
    stops.push(() => temporal.stop());
    say(`Temporal ${TEMPORAL_SERVER_VERSION} at ${temporal.address}; FerretDB at ${ferret.uri}`);

    const sim = await startPayPalSimulator({ timeScale: 0.01, attemptTimeoutMs: 30_000 });
    stops.push(() => sim.close());
    const nvp = { username: 'reh_api1.example.com', password: hex(12), signature: hex(24) };
    sim.nvp.credentials = nvp;
    const adminToken = hex(24);
    const common: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'production',
      // Operators' TOTP secrets are encrypted under this key (the API refuses to serve without one).
      OPERATOR_SECRETS_KEY: hex(32),
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'ipnflow',
      MONGODB_URI: ferret.uri,
      MONGODB_DB: 'rehearse',
      PAYPAL_SANDBOX_VERIFY_URL: sim.verifyUrl,
      PAYPAL_SANDBOX_NVP_URL: sim.nvpUrl,
      ALLOW_SANDBOX_INTEGRATIONS: 'true',
      IPN_RATE_LIMIT_POINTS: '1000000',
      [`${NVP_ENV}_USERNAME`]: nvp.username,
      [`${NVP_ENV}_PASSWORD`]: nvp.password,
      [`${NVP_ENV}_SIGNATURE`]: nvp.signature,
    };
    const apiPorts = [await freePort(), await freePort()];
    const apis = apiPorts.map((port, k) =>
      nodeProcess({
        name: `api-${k + 1}`,
        script: () => buildA.server,
        env: { ...common, PORT: String(port), HOST: '127.0.0.1', ADMIN_TOKEN: adminToken, LOG_LEVEL: 'warn' },
        logDir,
        ready: async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
      }),
    );
    const workerBuilds: Build[] = [buildA, buildA];
    const workers = [0, 1].map((k) =>
      nodeProcess({
        name: `worker-${k + 1}`,
        script: () => workerBuilds[k]!.worker,
        env: { ...common, LOG_LEVEL: 'info' },
        logDir,
        ready: async (p) => p.output().includes('"worker running"'),
      }),
    );
    say('starting 2 workers and 2 APIs (node dist/src/worker.js, node dist/src/server.js)');
    await Promise.all([...workers, ...apis].map((p) => p.start()));
    for (const p of [...workers, ...apis]) stops.push(() => p.stop());
    const lb = await loadBalancer(() => apiPorts.map((p) => `http://127.0.0.1:${p}`));
    stops.push(() => lb.close());
    const admin = adminClient(lb.url, adminToken);
    await setUp(admin);

    const mongo = await new mongoose.mongo.MongoClient(ferret.uri).connect();
    stops.push(() => mongo.close());
    const db = mongo.db('rehearse');
    const traffic = new Traffic(lb.url, sim, db, tag);
    stops.push(() => traffic.close());
    const tc = await Connection.connect({ address: temporal.address });
    stops.push(() => tc.close());
    const client = new Client({ connection: tc, namespace: 'default' });

    say('warming up; funding the payee of the Mass Pay batch');
    await closedLoop(8, CONCURRENCY, () => traffic.timedPayment());
    await closedLoop(6, 3, () => traffic.timedPayment(PAYEE));
    sim.nvp.masspay.settings = {
      listenerUrl: `${lb.url}/ipn/${INTEGRATION}`,
      payerEmail: RECEIVER,
      processedDelayMs: 3_000,
      completedDelayMs: 20_000,
    };
    const warmPayments = traffic.payments.length;

    say(`load: ${rate} payments/s through both APIs (1 in 6 resent, 1 in 8 partly refunded), a profile, a batch`);
    let loading = true;
    const loadStart = nowMs();
    const offered = traffic.offer(rate, () => !loading);
    const profile = runProfile(sim, `${lb.url}/ipn/${INTEGRATION}`, tag, 12_000);
    await sleep(5_000);
    const batch = await sendMasspay(admin, waitFor);
    say(`Mass Pay batch ${batch.id} sent (${batch.items} items)`);

    const faults: FaultResult[] = [];
    const pause = () => sleep(15_000);
    await pause();
    faults.push(await fault('SIGKILL a worker (worker-1)', workers[0]!, traffic));
    await pause();
    faults.push(await fault('SIGKILL an API (api-2)', apis[1]!, traffic));
    await pause();
    faults.push(await fault('SIGKILL the Temporal server', temporal, traffic));
    await pause();
    faults.push(await fault("SIGKILL FerretDB's PostgreSQL", pgApp, traffic));
    await pause();
    for (const k of [0, 1]) {
      say(`rolling worker-${k + 1} to build ${buildB.label} (SIGTERM, then the new build)`);
      const t0 = nowMs();
      const probe = traffic.pay(LOAD_CUSTOMERS[1], { plain: true });
      await workers[k]!.stop();
      workerBuilds[k] = buildB;
      await workers[k]!.start();
      const backS = (nowMs() - t0) / 1000;
      const rec = await probe;
      const creditS = rec.creditedAt === undefined ? NaN : (rec.creditedAt - t0) / 1000;
      faults.push({ what: `roll worker-${k + 1} to the patched build`, backS, creditS });
      await sleep(5_000);
    }
    await pause();
    loading = false;
    const load = await offered;
    profile.stop();
    const loadS = (nowMs() - loadStart) / 1000;
    say(`load stopped: ${load.offered} payments offered in ${load.seconds.toFixed(0)} s; draining`);
    await traffic.drain(300_000);
    // An answered refund is debited a moment later (drain waits for its 200, not its entry).
    const refunds = traffic.payments.flatMap((p) => (p.refund?.answered ? [[p.txnId, p.refund.txnId]] : []));
    await waitFor(
      'refunds debited',
      async () => {
        const rows = await db
          .collection('ledger_entries')
          .find({ reason: 'refund' }, { projection: { txnId: 1, parentTxnId: 1 } })
          .toArray();
        const seen = new Set(rows.flatMap((e) => [e.txnId as string, e.parentTxnId as string]));
        return refunds.every(([parent, refund]) => seen.has(refund!) || seen.has(parent!));
      },
      300_000,
    ).catch((err: Error) => say(err.message));
    await profile.delivered();
    await waitFor(
      'Mass Pay batch completed',
      async () => (await admin('GET', `/admin/payouts/${batch.id}`)).body?.state === 'completed',
      300_000,
    ).catch((err: Error) => say(err.message));
    await waitFor(
      'profile cycles credited',
      async () =>
        (await admin('GET', `/admin/profiles/${profile.id}?integrationId=${INTEGRATION}`)).body?.creditedMinor ===
        profile.cycles.length * profile.cycleMinor,
      300_000,
    ).catch((err: Error) => say(err.message));

    say('verifying: ledger, batch, profile, /admin/held, every workflow history');
    const verdict = await verify({
      db,
      admin,
      client,
      payments: traffic.payments,
      cycles: profile.cycles,
      profileId: profile.id,
      batch,
    });
    const loadPayments = traffic.payments.slice(warmPayments);
    const latencies = loadPayments
      .filter((p) => p.creditedAt !== undefined)
      .map((p) => p.creditedAt! - p.postedAt)
      .sort((a, b) => a - b);

    say(`side by side: ${measuredN} payments at c${CONCURRENCY} and the floor, on the real server (2 API + 2 workers)`);
    const floorBundle = await bundleFloor(runDir);
    const realE2e = await closedLoop(measuredN, CONCURRENCY, () => traffic.timedPayment());
    const realFloor = await measureFloor({
      address: temporal.address,
      namespace: 'default',
      mongoUri: ferret.uri,
      bundle: floorBundle,
      sim,
      n: measuredN,
      label: 'real',
      logDir,
    });
    // The dev side gets the machine to itself (but for FerretDB and the simulator, which both sides use).
    for (const p of [...apis, ...workers, temporal, pgTemporal]) await p.stop();
    say('the same on the dev server with one process (npm start: API and worker in one process)');
    const dev = await devSide({ sim, mongoUri: ferret.uri, runDir, logDir, tag, measuredN, floorBundle });

    const report = render({
      rate,
      load,
      loadS,
      loadPayments,
      latencies,
      faults,
      verdict,
      lbRetried: lb.retried(),
      apiAnswers: lb.answered,
      cycles: profile.cycles.length,
      realE2e,
      realFloor,
      dev,
    });
    console.log(report);
    fs.writeFileSync(path.join(runDir, 'report.txt'), `${report}\n`);
    say(`report also in ${path.join(runDir, 'report.txt')}`);
    const failed = verdict.lost.length + verdict.doubled.length + verdict.problems.length > 0;
    process.exitCode = failed ? 1 : 0;
    // The data (three databases) goes once the run passed; the logs and the report stay.
    if (!failed) cleanUp.push(() => removeData(runDir));
  } catch (err) {
    console.error(err instanceof Error ? err.stack : err);
    say(`failed; logs in ${logDir}`);
    process.exitCode = 1;
  } finally {
    await stopAll();
    for (const clean of cleanUp) clean();
  }
}

function removeData(runDir: string): void {
  for (const dir of ['pg-temporal', 'pg-ferretdb', 'ferretdb-state', 'npm-start-data']) {
    fs.rmSync(path.join(runDir, dir), { recursive: true, force: true });
  }
}

const distOf = (dir: string) => ({
  server: path.join(dir, 'dist', 'src', 'server.js'),
  worker: path.join(dir, 'dist', 'src', 'worker.js'),
});

const hex = (n: number) => crypto.randomBytes(n).toString('hex');

/** The dev server (SQLite, in memory) with `npm start`'s single process against it; the same runs as above. */
async function devSide(o: {
  sim: PayPalSimulator;
  mongoUri: string;
  runDir: string;
  logDir: string;
  tag: string;
  measuredN: number;
  floorBundle: string;
}): Promise<{ e2e: RunStats; floor: RunStats }> {
  const temporal = await startTemporalServer({ headless: true, logFile: path.join(o.logDir, 'dev-server.log') });
  const port = await freePort();
  const token = hex(24);
  const start = startProcess(
    'npm start',
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'tools/dev/start.ts')],
    {
      cwd: ROOT,
      logFile: path.join(o.logDir, 'npm-start.log'),
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: temporal.address,
        MONGODB_URI: o.mongoUri,
        MONGODB_DB: 'rehearse-dev',
        PORT: String(port),
        HOST: '127.0.0.1',
        PAYPAL_SIM_PORT: String(await freePort()),
        PAYPAL_SANDBOX_VERIFY_URL: o.sim.verifyUrl,
        PAYPAL_SANDBOX_NVP_URL: o.sim.nvpUrl,
        ADMIN_TOKEN: token,
        IPNFLOW_DATA_DIR: path.join(o.runDir, 'npm-start-data'),
        IPNFLOW_DEMO_CYCLE_SECONDS: '86400',
        IPN_RATE_LIMIT_POINTS: '1000000',
        LOG_LEVEL: 'warn',
      },
    },
  );
  try {
    await waitUntil('npm start', async () => start.output().includes('ipnflow is running.'), {
      timeoutMs: 300_000,
      intervalMs: 250,
      abort: () => (start.exited() ? `exited:\n${start.output()}` : undefined),
    });
    const base = `http://127.0.0.1:${port}`;
    await setUp(adminClient(base, token));
    const mongo = await new mongoose.mongo.MongoClient(o.mongoUri).connect();
    const traffic = new Traffic(base, o.sim, mongo.db('rehearse-dev'), `D${o.tag}`);
    try {
      await closedLoop(8, CONCURRENCY, () => traffic.timedPayment());
      const e2e = await closedLoop(o.measuredN, CONCURRENCY, () => traffic.timedPayment());
      const floor = await measureFloor({
        address: temporal.address,
        namespace: 'default',
        mongoUri: o.mongoUri,
        bundle: o.floorBundle,
        sim: o.sim,
        n: o.measuredN,
        label: 'dev',
        logDir: o.logDir,
      });
      return { e2e, floor };
    } finally {
      await traffic.close();
      await mongo.close();
    }
  } finally {
    await start.stop();
    await temporal.stop();
  }
}

function render(r: {
  rate: number;
  load: { offered: number; seconds: number };
  loadS: number;
  loadPayments: Traffic['payments'];
  latencies: number[];
  faults: FaultResult[];
  verdict: Verdict;
  lbRetried: number;
  apiAnswers: number[];
  cycles: number;
  realE2e: RunStats;
  realFloor: RunStats;
  dev: { e2e: RunStats; floor: RunStats };
}): string {
  const v = r.verdict;
  const resent = r.loadPayments.filter((p) => p.duplicate).length;
  const refunds = r.loadPayments.filter((p) => p.refund?.answered).length;
  const credited = r.loadPayments.filter((p) => p.creditedAt !== undefined).length;
  const rows: string[][] = [
    [
      'load offered',
      `${r.load.offered} payments in ${r.load.seconds.toFixed(0)} s (${r.rate}/s) + fault probes; ` +
        `${resent} resent twice, ${refunds} refunds, 1 Mass Pay batch (5 items), ${r.cycles} profile cycles`,
    ],
    [
      'credited/s (load window)',
      `${fmt.rate(credited / r.loadS, '/s')} (${credited} credited in ${r.loadS.toFixed(0)} s)`,
    ],
    [
      'p50 / p99 POST -> credit',
      `${fmt.ms(percentile(r.latencies, 50))} / ${fmt.ms(percentile(r.latencies, 99))} ` +
        `(max ${fmt.ms(r.latencies.at(-1) ?? NaN)})`,
    ],
    ...r.faults.map((f) => [
      f.what,
      `back in ${f.backS.toFixed(1)} s; a payment posted meanwhile credited ${f.creditS.toFixed(1)} s after`,
    ]),
    ['requests answered by api-1 / api-2', `${r.apiAnswers.join(' / ')} (${r.lbRetried} retried on the other API)`],
    ['workflows scanned / carrying the roll patch', `${v.workflows} / ${v.rolledWorkflows}`],
    ['lost', `${v.lost.length} (payments, refunds, cycles, batch items)`],
    ['doubled', `${v.doubled.length} (idem)`],
    ['other problems', `${v.problems.length} (ledger check, /admin/held, WorkflowTaskFailed, unanswered)`],
  ];
  const lat = (s: RunStats) => `${fmt.ms(s.p50)} / ${fmt.ms(s.p99)}`;
  const side: string[][] = [
    [`POST -> credit @ c${CONCURRENCY}: credited/s`, fmt.rate(r.realE2e.perS, '/s'), fmt.rate(r.dev.e2e.perS, '/s')],
    ['    p50 / p99', lat(r.realE2e), lat(r.dev.e2e)],
    ['    failed', String(r.realE2e.errors), String(r.dev.e2e.errors)],
    [
      `workflow floor @ c${CONCURRENCY}: workflows/s`,
      fmt.rate(r.realFloor.perS, '/s'),
      fmt.rate(r.dev.floor.perS, '/s'),
    ],
    ['    p50 / p99 start -> result', lat(r.realFloor), lat(r.dev.floor)],
    [
      '    ratio credited/s to floor',
      fmt.ratio(r.realE2e.perS / r.realFloor.perS),
      fmt.ratio(r.dev.e2e.perS / r.dev.floor.perS),
    ],
  ];
  const out = [
    '',
    `ipnflow rehearsal: Temporal server ${TEMPORAL_SERVER_VERSION} on PostgreSQL, FerretDB on PostgreSQL, ` +
      `2 API + 2 worker processes (dist/); ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)}`,
    '',
    table(['rehearsal', 'result'], rows),
    '',
    table(
      [
        `side by side, ${r.realE2e.n + r.realE2e.errors} each`,
        'real server, 2 API + 2 workers',
        'dev server, 1 process (npm start)',
      ],
      side,
    ),
    '',
    ...v.notes.map((n) => `  ${n}`),
    ...[
      ...v.lost.map((x) => `LOST ${x}`),
      ...v.doubled.map((x) => `DOUBLED ${x}`),
      ...v.problems.map((x) => `PROBLEM ${x}`),
    ]
      .slice(0, 40)
      .map((x) => `  ${x}`),
  ];
  return out.join('\n');
}

// The run is over once main returns (report written, processes stopped, data removed): a handle some
// library left open must not keep the command waiting.
void main().then(() => process.exit());
