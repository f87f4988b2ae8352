import { readFileSync } from 'node:fs';
import { routeNeeds, TestOperators } from '../../test/support/operators';
import path from 'node:path';
import type mongoose from 'mongoose';
import type { PayPalSimulator } from '../paypal-sim';
import { replaceField } from '../cli/ipn';
import { CreditWatch } from '../../bench/lib/credits';
import { nowMs, sleep } from '../../bench/lib/load';

const SAMPLES = path.resolve(__dirname, '../../test/fixtures/ipn');
export const sample = (name: string) => readFileSync(path.join(SAMPLES, `${name}.ipn`));
const enc = encodeURIComponent;

export function withFields(raw: Buffer, fields: Record<string, string>): Buffer {
  return Object.entries(fields).reduce(
    (body, [f, v]) => replaceField(body, f, v) ?? Buffer.concat([body, Buffer.from(`&${f}=${v}`, 'latin1')]),
    raw,
  );
}

/** PayPal's date format (`HH:MM:SS Mon DD, YYYY PST`, PDT from March to October, as src/profiles/state.ts reads it). */
function paypalDate(d: Date): string {
  const pdt = d.getUTCMonth() >= 2 && d.getUTCMonth() <= 9;
  const local = new Date(d.getTime() - (pdt ? 7 : 8) * 3600_000);
  const mon = local.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const hms = local.toISOString().slice(11, 19);
  const day = String(local.getUTCDate()).padStart(2, '0');
  return `${hms} ${mon} ${day}, ${local.getUTCFullYear()} ${pdt ? 'PDT' : 'PST'}`;
}

export const INTEGRATION = 'reh';
export const RECEIVER = 'seller@paypalsandbox.com';
export const NVP_ENV = 'PAYPAL_NVP_REH';
export const LOAD_CUSTOMERS = ['c-load-0', 'c-load-1', 'c-load-2', 'c-load-3'];
export const PAYEE = 'c-payee';
export const SUBSCRIBER = 'c-sub';
export const PAYMENT_MINOR = 1234;
export const REFUND_MINOR = 100;
const CYCLE_MINOR = 2995;

/** Admin calls through the load balancer, as an operator's would go. */
/**
 * The admin API as the rehearsal's people use it: reads with the break-glass token; every other route
 * as a named operator (created on first use through the API, as a fresh install would), with a
 * current code where the route decides money (src/shared/http/route-policy.ts).
 */
export function adminClient(base: string, token: string) {
  const operators = new TestOperators(base, token);
  return async (method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const needs = routeNeeds(method, urlPath);
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    if (needs.role === 'viewer' && !needs.otp) headers.authorization = `Bearer ${token}`;
    else {
      const named = (body as { operator?: unknown } | undefined)?.operator;
      const name = typeof named === 'string' ? named : needs.role === 'admin' ? 'reh-admin' : 'reh-approver';
      const op = await operators.get(name, needs.role === 'admin' ? 'admin' : 'approver');
      headers.authorization = `Bearer ${op.apiKey}`;
      if (needs.otp) headers['x-operator-otp'] = await operators.code(op);
    }
    const res = await fetch(`${base}${urlPath}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}
export type Admin = ReturnType<typeof adminClient>;

async function ok(admin: Admin, method: string, urlPath: string, body?: unknown) {
  const r = await admin(method, urlPath, body);
  if (r.status >= 300) throw new Error(`${method} ${urlPath} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function setUp(admin: Admin): Promise<void> {
  await ok(admin, 'PUT', `/admin/integrations/${INTEGRATION}`, {
    name: 'Rehearsal',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: [RECEIVER],
    nvpCredentialsEnv: NVP_ENV,
  });
  for (const c of LOAD_CUSTOMERS) await ok(admin, 'PUT', `/admin/customers/${c}`, { name: c, paypalEmails: [] });
  const payees = [0, 1, 2, 3, 4].map((k) => `payee-${k}@example.com`);
  await ok(admin, 'PUT', `/admin/customers/${PAYEE}`, { name: 'Payee', paypalEmails: payees });
  await ok(admin, 'PUT', `/admin/customers/${SUBSCRIBER}`, { name: 'Subscriber', paypalEmails: ['sub@example.com'] });
}

export interface PaymentRecord {
  txnId: string;
  customerId: string;
  answered: boolean;
  /** POSTs PayPal (we) had to resend because no API answered 200. */
  resends: number;
  postedAt: number;
  creditedAt?: number;
  duplicate: boolean;
  refund?: { txnId: string; answered: boolean };
}

/**
 * The payments PayPal sends: each posted through the load balancer (both APIs, round robin), registered with the
 * simulator first so its postback verifies; a sixth are posted twice (a resend), and every eighth credited one is
 * partly refunded. Credits are seen by polling each customer's ledger chain by `_id` (bench/lib/credits.ts).
 */
export class Traffic {
  readonly payments: PaymentRecord[] = [];
  private readonly watches = new Map<string, CreditWatch>();
  private readonly inFlight: Array<Promise<void>> = [];
  private readonly base = sample('web_accept_completed_ipn_simulator_01');
  private n = 0;

  constructor(
    private readonly lb: string,
    private readonly sim: PayPalSimulator,
    db: mongoose.mongo.Db,
    private readonly tag: string,
  ) {
    // CreditWatch reads only LedgerEntry.collection: the driver's collection, without the service's models.
    const models = { LedgerEntry: { collection: db.collection('ledger_entries') } } as unknown as ConstructorParameters<
      typeof CreditWatch
    >[0];
    for (const c of [...LOAD_CUSTOMERS, PAYEE]) this.watches.set(c, new CreditWatch(models, `${c}:USD:sandbox`, 50));
  }

  /** POST until an API answers 200, as PayPal resends (here after 2 s, up to 30 times). */
  private async post(raw: Buffer): Promise<{ answered: boolean; resends: number }> {
    for (let attempt = 0; attempt < 30; attempt++) {
      try {
        const res = await fetch(`${this.lb}/ipn/${INTEGRATION}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: raw,
          signal: AbortSignal.timeout(60_000),
        });
        await res.arrayBuffer();
        if (res.status === 200) return { answered: true, resends: attempt };
      } catch {
        // refused or cut off: resend below
      }
      await sleep(2_000);
    }
    return { answered: false, resends: 30 };
  }

  /**
   * One payment to `customerId` (round robin over the load customers by default); resolves once credited (and its
   * resends and refund are answered). `plain`: no resend, no refund (for the measured runs).
   */
  pay(
    customerId = LOAD_CUSTOMERS[this.n % LOAD_CUSTOMERS.length]!,
    opts: { plain?: boolean } = {},
  ): Promise<PaymentRecord> {
    const i = this.n++;
    const rec: PaymentRecord = {
      txnId: `RH${this.tag}${String(i).padStart(5, '0')}`,
      customerId,
      answered: false,
      resends: 0,
      postedAt: nowMs(),
      duplicate: !opts.plain && customerId !== PAYEE && i % 6 === 5,
    };
    this.payments.push(rec);
    const raw = withFields(this.base, { txn_id: rec.txnId, custom: customerId });
    this.sim.registerMessage(raw);
    const credited = this.watches.get(customerId)!.credited(rec.txnId, 900_000);
    credited.catch(() => {});
    const done = (async () => {
      const first = await this.post(raw);
      rec.answered = first.answered;
      rec.resends = first.resends;
      if (rec.duplicate) void this.post(raw); // PayPal's resend of a message already answered
      rec.creditedAt = await credited;
      if (rec.duplicate) await this.post(raw); // and once more after the credit
      if (!opts.plain && customerId !== PAYEE && i % 8 === 3) await this.refund(rec);
    })().catch(() => {});
    this.inFlight.push(done);
    return done.then(() => rec);
  }

  private async refund(rec: PaymentRecord): Promise<void> {
    const txnId = `${rec.txnId}R`;
    const raw = withFields(this.base, {
      txn_id: txnId,
      parent_txn_id: rec.txnId,
      payment_status: 'Refunded',
      reason_code: 'refund',
      mc_gross: `-${(REFUND_MINOR / 100).toFixed(2)}`,
      mc_gross1: `-${(REFUND_MINOR / 100).toFixed(2)}`,
      mc_fee: '-0.03',
      txn_type: '',
      custom: rec.customerId,
    });
    this.sim.registerMessage(raw);
    rec.refund = { txnId, answered: false };
    rec.refund.answered = (await this.post(raw)).answered;
  }

  /** Open loop at `ratePerS` until `until()` says stop: a payment every 1/rate s whatever the earlier ones do. */
  async offer(ratePerS: number, until: () => boolean): Promise<{ offered: number; seconds: number }> {
    const start = nowMs();
    let k = 0;
    while (!until()) {
      await sleep(start + (k * 1000) / ratePerS - nowMs());
      void this.pay();
      k++;
    }
    return { offered: k, seconds: (nowMs() - start) / 1000 };
  }

  async drain(timeoutMs: number): Promise<void> {
    await Promise.race([Promise.all(this.inFlight), sleep(timeoutMs)]);
  }

  async close(): Promise<void> {
    for (const w of this.watches.values()) await w.stop();
  }

  /** POST -> credit of one plain payment, in ms (for closed-loop measurements). */
  async timedPayment(customerId?: string): Promise<number> {
    const rec = await this.pay(customerId, { plain: true });
    if (rec.creditedAt === undefined) throw new Error(`payment ${rec.txnId} not credited`);
    return rec.creditedAt - rec.postedAt;
  }
}

/** A Mass Pay batch of five items to the payee's addresses, created, approved and sent by three operators. */
export async function sendMasspay(admin: Admin, waitFor: WaitFor): Promise<{ id: string; items: number }> {
  const items = [0, 1, 2, 3, 4].map((k) => ({
    customerId: PAYEE,
    amount: '2.00',
    receiverEmail: `payee-${k}@example.com`,
  }));
  const created = await ok(admin, 'POST', '/admin/payouts', {
    integrationId: INTEGRATION,
    currency: 'USD',
    operator: 'alice',
    items,
  });
  const id = created.id as string;
  const batch = async () => (await ok(admin, 'GET', `/admin/payouts/${id}`)) as { state: string; reserved: boolean };
  await waitFor('batch reserved', async () => (await batch()).reserved, 180_000);
  await ok(admin, 'POST', `/admin/payouts/${id}/approve`, { operator: 'bob', note: 'rehearsal' });
  await waitFor('batch approved', async () => (await batch()).state === 'approved', 180_000);
  await ok(admin, 'POST', `/admin/payouts/${id}/send`, { operator: 'carol', note: 'rehearsal' });
  return { id, items: items.length };
}

export type WaitFor = (what: string, probe: () => Promise<unknown>, timeoutMs: number) => Promise<void>;

/**
 * A recurring profile PayPal (the simulator) knows and bills: created, then a `recurring_payment` IPN per cycle
 * every `cycleMs`, delivered by the simulator to the load balancer (with PayPal's resends). Returns the cycles' txn
 * ids so far, and a stop function.
 */
export function runProfile(sim: PayPalSimulator, listenerUrl: string, tag: string, cycleMs: number) {
  const id = `I-REH${tag}`;
  const next = () => new Date(Date.now() + cycleMs).toISOString();
  sim.nvp.upsertProfile({
    id,
    status: 'Active',
    currency: 'USD',
    amountPerCycleMinor: CYCLE_MINOR,
    outstandingMinor: 0,
    failedPaymentCount: 0,
    nextBillingDate: next(),
    listenerUrl,
    receiverEmail: RECEIVER,
    payerEmail: 'sub@example.com',
  });
  const message = (name: string, fields: Record<string, string>) =>
    withFields(sample(name), {
      recurring_payment_id: id,
      payer_email: enc('sub@example.com'),
      receiver_email: enc(RECEIVER),
      next_payment_date: enc(paypalDate(new Date(Date.now() + 30 * 86400_000))),
      ...fields,
    });
  const cycles: string[] = [];
  const deliveries: Array<Promise<unknown>> = [];
  const send = (body: Buffer) => deliveries.push(sim.sendIpn({ listenerUrl, body }).done);
  send(message('recurring_payment_profile_created_01', { time_created: enc(paypalDate(new Date())) }));
  const timer = setInterval(() => {
    const txn = `RHC${tag}${String(cycles.length).padStart(3, '0')}`;
    cycles.push(txn);
    const now = enc(paypalDate(new Date()));
    send(message('recurring_payment_completed_01', { txn_id: txn, payment_date: now, mc_gross: '29.95' }));
  }, cycleMs);
  return {
    id,
    cycles,
    cycleMinor: CYCLE_MINOR,
    stop: () => clearInterval(timer),
    delivered: () => Promise.all(deliveries),
  };
}
