import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection, Client } from '@temporalio/client';
import { freePort } from '../../tools/dev/services/process';
import { paymentWorkflowId } from '../../src/shared/ids';
import { sample, waitFor, withField } from '../support/stack';

// `npm start` as a user runs it (one process: the launcher supervising every server), on free
// ports and a data folder of its own so it cannot disturb a developer's own `npm start`.
const ROOT = path.resolve(__dirname, '../..');
// Mode 700 (mkdtemp), like a clone in `mktemp -d` or under /root: as root, the embedded PostgreSQL runs as
// another user who cannot enter it, and npm start must run on PostgreSQL all the same.
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-start-'));
let ports: Record<'PORT' | 'TEMPORAL_DEV_PORT' | 'TEMPORAL_UI_PORT' | 'MONGODB_DEV_PORT' | 'PAYPAL_SIM_PORT', number>;
let output = '';
const launched: ChildProcess[] = [];

function start(): ChildProcess {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    IPNFLOW_DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info', // the console as a user sees it
    // The demo recurring profile pays a cycle every 3 s here (60 s by default).
    IPNFLOW_DEMO_CYCLE_SECONDS: '3',
  };
  for (const [k, v] of Object.entries(ports)) env[k] = String(v);
  // The test run's own servers are in these; npm start must bring up its own.
  delete env.TEMPORAL_ADDRESS;
  delete env.MONGODB_URI;
  delete env.ADMIN_TOKEN;
  delete env.IPNFLOW_DB_BACKEND; // the embedded default
  const child = spawn(process.execPath, ['--import', 'tsx', 'tools/dev/start.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  launched.push(child);
  return child;
}

const api = (p: string, init?: RequestInit) => fetch(`http://127.0.0.1:${ports.PORT}${p}`, init);
const token = () => fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  return exited;
}
async function ready() {
  const before = output.length;
  const announced = () => output.slice(before).includes('ipnflow is running.');
  await waitFor(
    'npm start to announce itself and serve /readyz 200',
    async () => announced() && (await api('/readyz')).status === 200,
    120_000,
  ).catch((err) => {
    throw new Error(`${(err as Error).message}\n--- output ---\n${output}`);
  });
}

/**
 * README's top-up walkthrough, as a browser does it (plain HTTP, no JavaScript needed): the portal's key
 * makes a link for demo-customer, the page's form is posted, the simulator's "Pay now" sends the buyer
 * back, and the result page shows the new balance. In EUR, which nothing else in the demo moves.
 */
async function topUpAsTheReadmeSays(portalKey: string) {
  const headers = { authorization: `Bearer ${portalKey}`, 'content-type': 'application/json' };
  const link = await api('/admin/topups/links', {
    method: 'POST',
    headers,
    body: JSON.stringify({ integrationId: 'demo', customerId: 'demo-customer' }),
  });
  expect(link.status).toBe(201);
  const { url } = (await link.json()) as { url: string };
  const html = await (await fetch(url)).text();
  expect(html).toContain('Top up your account');
  const hidden = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)![1]!;
  const form = new URLSearchParams({ choice: 'EUR:2500', attempt: hidden('attempt'), csrf: hidden('csrf') });
  const toPayPal = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    redirect: 'manual',
  });
  expect(toPayPal.status).toBe(303);
  const approveUrl = new URL(toPayPal.headers.get('location')!);
  expect(approveUrl.port).toBe(String(ports.PAYPAL_SIM_PORT));
  const paid = await fetch(new URL('/checkoutnow', approveUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: approveUrl.searchParams.get('token')!, action: 'approve' }).toString(),
    redirect: 'manual',
  });
  const result = await (await fetch(paid.headers.get('location')!)).text();
  expect(result).toContain('Top-up complete');
  expect(result).toContain('<strong id="balance">25.00 EUR</strong>');
}

beforeAll(async () => {
  ports = {
    PORT: await freePort(),
    TEMPORAL_DEV_PORT: await freePort(),
    TEMPORAL_UI_PORT: await freePort(),
    MONGODB_DEV_PORT: await freePort(),
    PAYPAL_SIM_PORT: await freePort(),
  };
});
afterAll(async () => {
  // A failed assertion must not leave a launcher (and its servers) running.
  for (const child of launched) if (child.exitCode === null && child.signalCode === null) await stop(child);
  // The cluster's own folder, when it had to live outside the closed data folder (as root).
  const link = path.join(dataDir, 'db', 'pg');
  if (fs.lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink()) {
    fs.rmSync(path.dirname(fs.readlinkSync(link)), { recursive: true, force: true });
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('serves the API and the Web UI, stops every child on Ctrl-C, and finds its data again', async () => {
  const first = start();
  await ready();
  expect((await fetch(`http://127.0.0.1:${ports.TEMPORAL_UI_PORT}/`)).status).toBe(200);
  expect(output).toContain(`Temporal Web UI   http://localhost:${ports.TEMPORAL_UI_PORT}`);
  // The seeded operators' keys are printed; the break-glass token stays in its file.
  const keys = JSON.parse(fs.readFileSync(path.join(dataDir, 'dev-operator-keys.json'), 'utf8'));
  expect(Object.keys(keys)).toEqual(['admin', 'alice', 'bob', 'portal']);
  for (const name of ['admin', 'alice', 'bob', 'portal']) expect(output).toContain(`${name.padEnd(6)} ${keys[name]}`);
  expect(output).not.toContain(token());
  // The embedded default, even in a folder closed to PostgreSQL's user; SQLite only when asked.
  expect(output).toMatch(/\(database \S+; (FerretDB on PostgreSQL|mongod) in /);
  expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);

  // The console reads as text: pino-pretty lines, webpack's report in one line, no JSON.
  expect(output).toMatch(/^\[[\d:.]+\] INFO: workflow bundle [\d.]+MB: webpack \S+ compiled successfully in \d+ ms$/m);
  expect(output).toMatch(/^\[[\d:.]+\] INFO: API server listening \{"url":/m);
  expect(output.split('\n').filter((l) => /^\s*[{"]|modules by path/.test(l))).toEqual([]);

  // A payment through the launcher's own simulator with `npm run ipn -- send`, which finds the service
  // and the simulator from the same PORT / PAYPAL_SIM_PORT as npm start (no --service, no --sim).
  const raw = withField(sample('web_accept_completed_ipn_simulator_01'), 'txn_id', 'STARTTEST1');
  fs.writeFileSync(path.join(dataDir, 'starttest1.ipn'), raw);
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(ports.PORT) };
  env.PAYPAL_SIM_PORT = String(ports.PAYPAL_SIM_PORT);
  const cli = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'tools/cli/ipn.ts', 'send', path.join(dataDir, 'starttest1.ipn')],
    { cwd: ROOT, env, timeout: 60_000 },
  );
  expect(cli.stdout).toContain(
    `to http://127.0.0.1:${ports.PORT}/ipn/demo via http://127.0.0.1:${ports.PAYPAL_SIM_PORT}`,
  );
  expect(cli.stdout).toMatch(/^delivered after 1 attempt\(s\); txn_id STARTTEST1$/m);
  const balance = async () => {
    const res = await api('/admin/customers/demo-customer', { headers: { authorization: `Bearer ${token()}` } });
    // USD: the top-up walkthrough below adds an EUR balance (listed first).
    return (
      (await res.json()) as { sandboxBalances: Array<{ currency: string; balanceMinor: number }> }
    ).sandboxBalances.find((b) => b.currency === 'USD')?.balanceMinor;
  };
  // The payment (12.34) and at least one cycle of the demo profile (29.95 each), nothing else.
  const paidBoth = (b: number | undefined) => b !== undefined && b >= 1234 + 2995 && (b - 1234) % 2995 === 0;
  const atStop = await waitFor('demo payment and a demo profile cycle credited', async () => {
    const b = await balance();
    return paidBoth(b) && b;
  });
  const demoProfile = await api('/admin/profiles/I-DEMO00000001?integrationId=demo', {
    headers: { authorization: `Bearer ${token()}` },
  });
  expect(await demoProfile.json()).toMatchObject({ status: 'Active', customerId: 'demo-customer', currency: 'USD' });
  await topUpAsTheReadmeSays(keys.portal);

  expect(await stop(first)).toBe(0);
  for (const port of [
    ports.PORT,
    ports.TEMPORAL_DEV_PORT,
    ports.TEMPORAL_UI_PORT,
    ports.MONGODB_DEV_PORT,
    ports.PAYPAL_SIM_PORT,
  ]) {
    expect(await listening(port)).toBe(false);
  }

  const second = start();
  try {
    await ready();
    const again = await balance();
    expect([paidBoth(again), again! >= atStop]).toEqual([true, true]);
    const connection = await Connection.connect({ address: `127.0.0.1:${ports.TEMPORAL_DEV_PORT}` });
    const described = await new Client({ connection }).workflow
      .getHandle(paymentWorkflowId('demo', 'STARTTEST1'))
      .describe();
    expect(described.type).toBe('paymentLifecycle');
    await connection.close();
  } finally {
    expect(await stop(second)).toBe(0);
  }
}, 300_000);
