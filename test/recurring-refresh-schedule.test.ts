import { readFileSync } from 'node:fs';
import path from 'node:path';
import { formatPayPalDate, isApiManaged } from '../src/domain/profile';
import { createTestStack, deliverIpn, waitFor, withFields, type TestStack } from './support/stack';

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
  withFields(readFileSync(path.join(__dirname, 'fixtures', 'ipn', 'recurring_payment_profile_created_01.ipn')), {
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

test('only profiles PayPal’s API knows are refreshed: a legacy S- subscription is not', () => {
  expect([isApiManaged('I-SCHED0000001'), isApiManaged('S-1AB23456CD789012E')]).toEqual([true, false]);
});
