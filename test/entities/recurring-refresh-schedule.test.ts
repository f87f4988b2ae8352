import { readFileSync } from 'node:fs';
import path from 'node:path';
import { formatPayPalDate, isApiManaged } from '../../src/profiles/state';
import type { SimProfile } from '../../tools/paypal-sim/nvp';
import { balanceMinor, createTestStack, deliverIpn, waitFor, withFields, type TestStack } from '../support/stack';

/**
 * PayPal sends no IPN for changes made through its API or on its site by support: the profile
 * workflow asks PayPal itself on a schedule (RECURRING_REFRESH_SECONDS), here every 2 seconds.
 */
let stack: TestStack;
const SHOP = 'rec-sched';
const RECEIVER = 'resear_1362421868_biz@gmail.com';
const enc = encodeURIComponent;
const at = (minutes: number) => enc(formatPayPalDate(new Date(Date.now() + minutes * 60_000).toISOString()));
const created = (id: string) =>
  withFields(readFileSync(path.join(__dirname, '..', 'fixtures', 'ipn', 'recurring_payment_profile_created_01.ipn')), {
    recurring_payment_id: id,
    payer_email: enc('payer@example.com'),
    receiver_email: enc(RECEIVER),
    time_created: at(-60),
    next_payment_date: at(60 * 24 * 10),
  });

beforeAll(async () => {
  process.env.PAYPAL_NVP_SCHED_USERNAME = 'sched_api1.example.com';
  process.env.PAYPAL_NVP_SCHED_PASSWORD = 'sim-password';
  process.env.PAYPAL_NVP_SCHED_SIGNATURE = 'sim-signature';
  stack = await createTestStack('recurring-refresh-schedule', { RECURRING_REFRESH_SECONDS: '2' });
  stack.sim.nvp.credentials = {
    username: 'sched_api1.example.com',
    password: 'sim-password',
    signature: 'sim-signature',
  };
  const integration = {
    name: SHOP,
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: [RECEIVER],
    nvpCredentialsEnv: 'PAYPAL_NVP_SCHED',
  };
  expect(await stack.admin('PUT', `/admin/integrations/${SHOP}`, integration)).toMatchObject({ status: 200 });
  const customer = { name: 'Payer', paypalEmails: ['payer@example.com'] };
  expect(await stack.admin('PUT', '/admin/customers/c-sched', customer)).toMatchObject({ status: 200 });
});
afterAll(() => stack?.close());

test('a change made at PayPal behind our back is caught by the scheduled refresh, no operator involved', async () => {
  const id = 'I-SCHED0000001';
  await deliverIpn(stack, SHOP, created(id));
  stack.sim.nvp.upsertProfile({
    id,
    status: 'Suspended',
    currency: 'USD',
    amountPerCycleMinor: 2995,
    outstandingMinor: 2995,
    failedPaymentCount: 1,
    nextBillingDate: null,
    listenerUrl: `${stack.baseUrl}/ipn/${SHOP}`,
    receiverEmail: RECEIVER,
    payerEmail: 'payer@example.com',
  });
  const seen = await waitFor(
    'scheduled refresh',
    async () => {
      const res = await stack.admin('GET', `/admin/profiles/${id}?integrationId=${SHOP}`);
      return res.body?.status === 'Suspended' && res.body;
    },
    20_000,
  );
  expect(seen).toMatchObject({
    status: 'Suspended',
    outstandingMinor: 2995,
    failedPaymentCount: 1,
    fields: { status: { source: 'refresh' } },
  });
});

test('a bill PayPal never got: after its settle window the unchanged balance lets a bill go again', async () => {
  const id = 'I-SCHEDBILL001';
  const sim: SimProfile = {
    id,
    status: 'Active',
    currency: 'USD',
    amountPerCycleMinor: 2995,
    outstandingMinor: 5990,
    failedPaymentCount: 2,
    nextBillingDate: new Date(Date.now() + 10 * 86400_000).toISOString(),
    listenerUrl: `${stack.baseUrl}/ipn/${SHOP}`,
    receiverEmail: RECEIVER,
    payerEmail: 'payer@example.com',
  };
  stack.sim.nvp.upsertProfile(sim);
  await deliverIpn(stack, SHOP, created(id));
  const path = `/admin/profiles/${id}?integrationId=${SHOP}`;
  await waitFor(
    'the balance from a scheduled refresh',
    async () => (await stack.admin('GET', path)).body?.outstandingMinor === 5990,
  );
  const bill = () =>
    stack.admin('POST', `/admin/profiles/${id}/bill-outstanding?integrationId=${SHOP}`, {
      operator: 'alice',
      note: 'ticket 7',
      amount: '50.00',
    });
  const bills = () => stack.sim.nvp.calls.filter((c) => c.method === 'BillOutstandingAmount');

  // The gateway answers 503 and PayPal never handles it; from here nobody can tell.
  // Aimed at the bill: a scheduled refresh (GetRecurringPaymentsProfileDetails) may run meanwhile.
  stack.sim.nvp.faults.push({ kind: 'unavailable', method: 'BillOutstandingAmount' });
  expect(await bill()).toMatchObject({ status: 502, body: { details: { rule: 'bill_uncertain' } } });
  expect(bills()).toEqual([expect.objectContaining({ answerLost: true })]);
  expect(stack.sim.nvp.profiles.get(id)!.outstandingMinor).toBe(5990);

  const settled = await waitFor(
    'reconciled by a scheduled refresh',
    async () => {
      const p = (await stack.admin('GET', path)).body;
      return p.billUncertain === null && p;
    },
    20_000,
  );
  expect(settled.attention).toEqual([]);
  const trail = await stack.db.models.AuditEvent.find({ txnId: id }).sort({ at: 1 }).lean();
  const sent = trail.find((a) => a.action === 'profile_bill')!;
  const reconciled = trail.find((a) => a.action === 'profile_bill_reconciled')!;
  expect(reconciled).toMatchObject({
    actor: 'schedule',
    details: { verdict: 'not_carried_out', outstandingBeforeMinor: 5990, outstandingAfterMinor: 5990 },
  });
  // Not before the window (one refresh interval, 2 s here) was over.
  expect(reconciled.at.getTime() - sent.at.getTime()).toBeGreaterThanOrEqual(2000);

  // Now a bill may go: PayPal gets it, collects, and the money is credited once.
  expect(await bill()).toMatchObject({ status: 200 });
  expect(bills()).toHaveLength(2);
  await waitFor('credited', async () => (await stack.admin('GET', path)).body.creditedMinor === 5000);
  expect(await balanceMinor(stack, 'c-sched', 'USD')).toBe(5000);
});

test('only profiles PayPal’s API knows are refreshed: a legacy S- subscription is not', () => {
  expect([isApiManaged('I-SCHED0000001'), isApiManaged('S-1AB23456CD789012E')]).toEqual([true, false]);
});
