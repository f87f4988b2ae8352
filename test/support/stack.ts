import crypto from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import { loadConfig, type Config } from '../../src/shared/config';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import type { IpnDispatcher } from '../../src/messages/dispatcher';
import { serveApi } from '../../src/server';
import { replaceField } from '../../tools/cli/ipn';
import { createLogger } from '../../src/shared/logger';
import { connectTemporalClient } from '../../src/shared/temporal/client';
import { createWorker } from '../../src/shared/temporal/worker';
import { startPayPalSimulator, type PayPalSimulator } from '../../tools/paypal-sim';
import { Ledger } from '../../src/shared/ledger';
import { WebhookIntake } from '../../src/webhooks/intake';
import { IntegrationCache } from '../../src/integrations/cache';
import type { AppDeps } from '../../src/shared/http/deps';
import { routeNeeds, TestOperators } from './operators';

export interface TestStack {
  name: string;
  config: Config;
  db: Database;
  client: Client;
  sim: PayPalSimulator;
  ledger: Ledger;
  dispatcher: IpnDispatcher;
  /** Where `admin` and `postIpn` go: this stack's API, unless a bench points them at another process's. */
  baseUrl: string;
  /** The break-glass ADMIN_TOKEN: manages operators and reads, no money decisions. */
  adminToken: string;
  /** Operators created through the API, with their keys and codes. */
  operators: TestOperators;
  worker?: Worker;
  /** Starts (or restarts) this file's worker. */
  startWorker(opts?: { interceptors?: WorkerOptions['interceptors'] }): Promise<void>;
  stopWorker(): Promise<void>;
  /**
   * An admin request as an operator: `opts.as`, else the body's `operator` (created as an approver on
   * first use), else a default operator with the role the route needs; with a fresh code where the
   * route decides money. `opts.otp` sends that code instead (null: none); `opts.token` that bearer.
   */
  admin(method: string, urlPath: string, body?: unknown, opts?: AdminRequestOptions): Promise<AdminAnswer>;
  postIpn(integrationId: string, raw: Buffer, contentType?: string): Promise<Response>;
  close(): Promise<void>;
}

export interface AdminRequestOptions {
  as?: string;
  otp?: string | null;
  token?: string;
}
export interface AdminAnswer {
  status: number;
  body: any;
}

/**
 * Everything a test file needs, on the run's real servers: its own database and task queue,
 * a worker, the API on a free port, and a PayPal simulator as the sandbox verification host.
 */
export async function createTestStack(
  name: string,
  overrides: Partial<Record<string, string>> = {},
): Promise<TestStack> {
  const suffix = `${name}-${crypto.randomBytes(3).toString('hex')}`;
  const sim = await startPayPalSimulator({ timeScale: 0.001 });
  const adminToken = crypto.randomBytes(24).toString('hex');
  const config = loadConfig(process.env, {
    MONGODB_URI: process.env.MONGODB_URI!,
    MONGODB_DB: `test-${suffix}`.replace(/[^a-zA-Z0-9_-]/g, '_'),
    TEMPORAL_TASK_QUEUE: `test-${suffix}`,
    ADMIN_TOKEN: adminToken,
    OPERATOR_SECRETS_KEY: crypto.randomBytes(32).toString('hex'),
    // Test files send many wrong keys from 127.0.0.1 on purpose: only the limit's own test lowers this.
    ADMIN_KEY_FAILURE_POINTS: '1000000',
    // One step per decision per operator: 2 s steps keep tests of many decisions fast (30 s elsewhere).
    OPERATOR_TOTP_PERIOD_SECONDS: '2',
    PORT: '3000',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PAYPAL_SANDBOX_VERIFY_URL: sim.verifyUrl,
    PAYPAL_SANDBOX_NVP_URL: sim.nvpUrl,
    PAYPAL_SANDBOX_REST_URL: sim.url,
    // Express Checkout buyers approve on the simulator's page (a GET on its webscr).
    PAYPAL_SANDBOX_WEBSCR_URL: `${sim.url}/cgi-bin/webscr`,
    OUTBOX_RELAY_INTERVAL_MS: '300',
    OUTBOX_RELAY_GRACE_MS: '1000',
    IPN_VERIFY_GIVE_UP_SECONDS: '20',
    PAYMENT_IDLE_CLOSE_SECONDS: '600',
    // Tests use the sandbox and the simulator; a test of the default overrides this with ''.
    ALLOW_SANDBOX_INTEGRATIONS: 'true',
    // Every test request comes from 127.0.0.1: only the rate limit's own tests lower this.
    IPN_RATE_LIMIT_POINTS: '1000000',
    ...overrides,
  });
  const logger = createLogger(config.LOG_LEVEL);
  const db = await connectDatabase(config.MONGODB_URI, config.MONGODB_DB);
  const client = await connectTemporalClient(config);
  const api = await serveApi({ config, db, client, logger, port: 0, host: '127.0.0.1' });
  const { dispatcher, url: baseUrl } = api;

  let running: { worker: Worker; done: Promise<void>; close: () => Promise<void> } | undefined;
  const stack: TestStack = {
    name,
    config,
    db,
    client,
    sim,
    ledger: new Ledger(db.models),
    dispatcher,
    baseUrl,
    adminToken,
    operators: new TestOperators(baseUrl, adminToken, config.OPERATOR_TOTP_PERIOD_SECONDS),
    async startWorker(opts = {}) {
      await stack.stopWorker();
      const { worker, connection } = await createWorker({
        config,
        db,
        client,
        logger,
        workflowBundlePath: process.env.IPNFLOW_TEST_WORKFLOW_BUNDLE,
        interceptors: opts.interceptors,
      });
      running = { worker, done: worker.run(), close: () => connection.close() };
      stack.worker = worker;
    },
    async stopWorker() {
      if (!running) return;
      const r = running;
      running = undefined;
      r.worker.shutdown();
      await r.done;
      await r.close();
    },
    async admin(method, urlPath, body, opts = {}) {
      const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
      if (opts.token !== undefined) {
        headers.authorization = `Bearer ${opts.token}`;
        if (typeof opts.otp === 'string') headers['x-operator-otp'] = opts.otp;
      } else {
        const needs = routeNeeds(method, urlPath);
        const named = (body as { operator?: unknown } | undefined)?.operator;
        const name = opts.as ?? (typeof named === 'string' ? named : undefined);
        const op = await stack.operators.get(
          name ?? (needs.role === 'admin' ? 'test-admin' : 'test-approver'),
          needs.role === 'admin' ? 'admin' : 'approver',
        );
        headers.authorization = `Bearer ${op.apiKey}`;
        const otp = opts.otp === undefined ? (needs.otp ? await stack.operators.code(op) : null) : opts.otp;
        if (otp !== null) headers['x-operator-otp'] = otp;
      }
      const res = await fetch(`${stack.baseUrl}${urlPath}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    postIpn(integrationId, raw, contentType = 'application/x-www-form-urlencoded') {
      return fetch(`${stack.baseUrl}/ipn/${integrationId}`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: raw,
      });
    },
    async close() {
      await stack.stopWorker();
      await api.stop();
      await sim.close();
      await client.connection.close();
      await db.connection.dropDatabase().catch(() => {});
      await db.close();
    },
  };
  await stack.startWorker();
  return stack;
}

export { SAMPLES_DIR, sample } from './samples';

/**
 * Replaces one field's value in raw IPN bytes (appending the field when absent), leaving every other byte as it
 * was.
 */
export function withField(raw: Buffer, field: string, value: string): Buffer {
  return replaceField(raw, field, value) ?? Buffer.concat([raw, Buffer.from(`&${field}=${value}`, 'latin1')]);
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Replaces several fields (see withField); an empty value leaves the field present but blank (absent to the
 * service).
 */
export function withFields(raw: Buffer, fields: Record<string, string>): Buffer {
  return Object.entries(fields).reduce((body, [field, value]) => withField(body, field, value), raw);
}

/**
 * A refund of `payment` as PayPal sends one: its own txn_id, parent_txn_id = the payment's, negative amounts
 * (`gross` without its sign) and, as PayPal may, no txn_type.
 */
export function refundOf(payment: Buffer, txnId: string, parentTxnId: string, gross: string): Buffer {
  return withFields(payment, {
    txn_id: txnId,
    parent_txn_id: parentTxnId,
    payment_status: 'Refunded',
    reason_code: 'refund',
    mc_gross: `-${gross}`,
    mc_gross1: `-${gross}`,
    mc_fee: '-0.30',
    txn_type: '',
  });
}

/** Message states in which a message waits on nothing but a person (or nothing at all). */
const IN_FLIGHT_STATES = ['received', 'dispatched', 'routed'];

/** The stored message whose raw bytes are exactly `raw`, once it left the pipeline (or reached `state`). */
export async function waitForMessage(stack: TestStack, integrationId: string, raw: Buffer, state?: string) {
  return waitFor(`message in ${integrationId} ${state ? `reaching ${state}` : 'settling'}`, async () => {
    const recent = await stack.db.models.IpnMessage.find({ integrationId }).sort({ _id: -1 }).limit(50).lean();
    const msg = recent.find((m) => Buffer.from(m.raw.buffer).equals(raw));
    if (!msg) return undefined;
    if (!(state ? msg.state === state : !IN_FLIGHT_STATES.includes(msg.state) && msg.state !== 'parked'))
      return undefined;
    // A payment's lifecycle records the message's outcome just before it saves its own state.
    const routed = msg.state.startsWith('applied:') || msg.state === 'duplicate';
    const seen = { 'snapshot.history.messageId': String(msg._id) };
    const { Payment, RecurringProfile } = stack.db.models;
    if (routed && !(await Payment.exists(seen)) && !(await RecurringProfile.exists(seen))) return undefined;
    return msg;
  });
}

/** PayPal's delivery of `raw` over real HTTP (registered with the simulator), then the stored message once settled. */
export async function deliverIpn(stack: TestStack, integrationId: string, raw: Buffer, state?: string) {
  const delivery = stack.sim.sendIpn({ listenerUrl: `${stack.baseUrl}/ipn/${integrationId}`, body: raw });
  const outcome = await delivery.done;
  if (!outcome.delivered)
    throw new Error(
      `IPN delivery to ${integrationId} failed after ${outcome.attempts} attempts: ` +
        `${delivery.attempts.at(-1)?.error ?? delivery.attempts.at(-1)?.status}`,
    );
  return waitForMessage(stack, integrationId, raw, state);
}

/**
 * A customer's balance in one currency and money mode, in minor units, as the admin API reports it
 * (0 when none). Sandbox by default: PayPal's sample messages are test messages (test_ipn=1).
 */
export async function balanceMinor(
  stack: TestStack,
  customerId: string,
  currency: string,
  mode: 'live' | 'sandbox' = 'sandbox',
): Promise<number> {
  const res = await stack.admin('GET', `/admin/customers/${customerId}`);
  if (res.status !== 200)
    throw new Error(`GET /admin/customers/${customerId} answered ${res.status}: ${JSON.stringify(res.body)}`);
  const balances = res.body[mode === 'live' ? 'balances' : 'sandboxBalances'] as Array<{
    currency: string;
    balanceMinor: number;
  }>;
  return balances.find((b) => b.currency === currency)?.balanceMinor ?? 0;
}

/** The app's dependencies on a test stack's connections, for tests that build routers themselves. */
export function appDepsOf(stack: TestStack): AppDeps {
  const logger = createLogger('silent');
  const webhooks = new WebhookIntake({ models: stack.db.models, client: stack.client, config: stack.config, logger });
  return { ...stack, logger, integrations: new IntegrationCache(stack.db.models), webhooks };
}
