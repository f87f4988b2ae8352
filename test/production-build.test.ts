import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestStack, deliverIpn, sample, withField, type TestStack } from './support/stack';

/**
 * `npm run build` is what production runs: compiled code plus a prebuilt workflow bundle, so the
 * worker process (node dist/src/worker.js) starts without webpack and still runs the workflows.
 */
const ROOT = path.resolve(__dirname, '..');
let stack: TestStack;
let worker: ChildProcess | undefined;

beforeAll(async () => {
  await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, timeout: 120_000 });
  stack = await createTestStack('production-build');
  await stack.stopWorker(); // the built worker takes this stack's task queue instead
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
}, 150_000);
afterAll(async () => {
  worker?.kill('SIGINT');
  await stack?.close();
});

test('the built worker starts on the prebuilt bundle and credits a payment', async () => {
  const { config } = stack;
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
    TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
    MONGODB_URI: config.MONGODB_URI,
    MONGODB_DB: config.MONGODB_DB,
    PAYPAL_SANDBOX_VERIFY_URL: config.PAYPAL_SANDBOX_VERIFY_URL,
    LOG_LEVEL: 'info',
  };
  const child = spawn(process.execPath, ['dist/src/worker.js'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  worker = child;
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const started = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${output}`)), 30_000);
    child.stdout!.on('data', () => {
      const line = output.split('\n').find((l) => l.includes('"worker running"'));
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
  expect(JSON.parse(started).workflowBundle).toBe(path.join(ROOT, 'dist', 'workflow-bundle.js'));
  const msg = await deliverIpn(
    stack,
    'shop',
    withField(sample('web_accept_completed_ipn_simulator_01'), 'txn_id', 'BUILT1'),
  );
  expect(msg.state).toBe('applied:credited');
  expect(output).not.toMatch(/webpack|Workflow bundle created/i);
}, 90_000);
