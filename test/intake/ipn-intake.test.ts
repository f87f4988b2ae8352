import { createTestStack, sample, waitFor, withField, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack('intake');
  const base = { mode: 'sandbox', allowedCurrencies: ['USD', 'EUR'], receiverEmails: ['seller@paypalsandbox.com'] };
  expect((await stack.admin('PUT', '/admin/integrations/shop', { name: 'Shop', ...base })).status).toBe(200);
  expect(
    (await stack.admin('PUT', '/admin/integrations/off', { name: 'Disabled', ipnEnabled: false, ...base })).status,
  ).toBe(200);
  expect(
    (await stack.admin('PUT', '/admin/customers/c1', { name: 'C1', paypalEmails: ['buyer@paypalsandbox.com'] })).status,
  ).toBe(200);
});
afterAll(() => stack?.close());

test('answers an empty 200 and keeps the exact bytes, whatever the charset', async () => {
  for (const name of [
    'cart_completed_eur_windows1252_01',
    'mp_notification_billing_agreement_shift_jis_01',
    'recurring_payment_failed_utf8_01',
  ]) {
    const raw = sample(name);
    const res = await stack.postIpn('shop', raw);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    const stored = await stack.db.models.IpnMessage.find({ integrationId: 'shop' }).sort({ _id: -1 }).limit(1).lean();
    expect(Buffer.from(stored[0]!.raw.buffer).equals(raw)).toBe(true);
  }
});

test('refuses what is not an IPN, with clear statuses', async () => {
  const json = await stack.postIpn('shop', Buffer.from('{"txn_id":"1"}'), 'application/json');
  expect(json.status).toBe(415);
  const big = await stack.postIpn(
    'shop',
    Buffer.concat([
      sample('web_accept_completed_01'),
      Buffer.from(`&memo=${'a'.repeat(stack.config.IPN_MAX_BODY_BYTES)}`),
    ]),
  );
  expect(big.status).toBe(413);
  const unknown = await stack.postIpn('nobody', sample('web_accept_completed_01'));
  expect(unknown.status).toBe(404);
});

test('a disabled integration stores the message as ignored, answers 200, and starts nothing', async () => {
  const res = await stack.postIpn('off', sample('web_accept_completed_ipn_simulator_01'));
  expect(res.status).toBe(200);
  const msg = await stack.db.models.IpnMessage.findOne({ integrationId: 'off' }).lean();
  expect(msg).toMatchObject({ state: 'ignored', flags: ['integration_disabled'] });
  await new Promise((r) => setTimeout(r, 1_500)); // longer than the relay's grace and interval
  expect((await stack.db.models.IpnMessage.findById(msg!._id).lean())!.workflowId).toBeUndefined();
});

test('a message we cannot decode is stored and flagged, never credited, and nothing crashes', async () => {
  const raw = withField(sample('web_accept_completed_ipn_simulator_01'), 'charset', 'x-klingon');
  stack.sim.registerMessage(raw);
  expect((await stack.postIpn('shop', raw)).status).toBe(200);
  const msg = await waitFor('malformed outcome', () =>
    stack.db.models.IpnMessage.findOne({ state: 'malformed' }).lean(),
  );
  expect(msg.flags).toContain('malformed');
  expect(msg.outcome).toMatch(/charset/i);
  expect(Buffer.from(msg.raw.buffer).equals(raw)).toBe(true);
  expect((await stack.admin('GET', '/admin/customers/c1')).body).toMatchObject({ balances: [], sandboxBalances: [] });
});

test('an empty body is stored and flagged malformed, answered 200 (a 503 would be resent forever)', async () => {
  const res = await stack.postIpn('shop', Buffer.alloc(0));
  expect(res.status).toBe(200);
  const query = { integrationId: 'shop', decodeError: /empty/, state: 'malformed' };
  const msg = await waitFor('empty body flagged', () => stack.db.models.IpnMessage.findOne(query).lean());
  expect(msg.raw.buffer.byteLength).toBe(0);
  expect(msg.flags).toContain('malformed');
});

test('admin routes need the bearer token', async () => {
  for (const headers of [
    {},
    { authorization: 'Bearer wrong' },
    { authorization: `Basic ${stack.adminToken}` },
  ] as Array<Record<string, string>>) {
    const res = await fetch(`${stack.baseUrl}/admin/integrations`, { headers });
    expect(res.status).toBe(401);
  }
  expect((await stack.admin('GET', '/admin/integrations')).status).toBe(200);
});

test('integrations are validated and show the IPN URL to paste into PayPal', async () => {
  const bad = await stack.admin('PUT', '/admin/integrations/live1', {
    name: 'Live',
    mode: 'live',
    verifyTransaction: false,
    allowedCurrencies: ['USD'],
    receiverEmails: ['a@b.co'],
  });
  expect(bad.status).toBe(400);
  expect(bad.body.issues).toEqual([
    expect.objectContaining({ path: 'verifyTransaction', message: expect.stringMatching(/sandbox/) }),
  ]);
  const badCurrency = await stack.admin('PUT', '/admin/integrations/x', {
    name: 'X',
    mode: 'sandbox',
    allowedCurrencies: ['XYZ'],
    receiverEmails: ['a@b.co'],
  });
  expect(badCurrency.status).toBe(400);
  const got = await stack.admin('GET', '/admin/integrations/shop');
  expect(got.body).toMatchObject({
    id: 'shop',
    mode: 'sandbox',
    verifyTransaction: true,
    feePolicy: 'gross',
    ipnUrl: 'http://localhost:3000/ipn/shop',
  });
});

test('a PayPal email belongs to one customer only', async () => {
  const res = await stack.admin('PUT', '/admin/customers/c2', {
    name: 'C2',
    paypalEmails: ['BUYER@paypalsandbox.com'],
  });
  expect(res.status).toBe(409);
  expect(res.body.error).toMatch(/already belongs to customer c1/);
});

test(
  'the intake remembers integrations briefly, but a change ' + 'saved through the admin API applies to the next IPN',
  async () => {
    const base = { mode: 'sandbox', allowedCurrencies: ['USD'], receiverEmails: ['seller@paypalsandbox.com'] };
    expect((await stack.admin('PUT', '/admin/integrations/toggle', { name: 'Toggle', ...base })).status).toBe(200);
    const latestState = async () =>
      (await stack.db.models.IpnMessage.find({ integrationId: 'toggle' }).sort({ _id: -1 }).limit(1).lean())[0]!.state;
    expect((await stack.postIpn('toggle', withField(sample('web_accept_completed_01'), 'txn_id', 'TOG1'))).status).toBe(
      200,
    );
    expect(await latestState()).not.toBe('ignored');
    expect(
      (await stack.admin('PUT', '/admin/integrations/toggle', { name: 'Toggle', ipnEnabled: false, ...base })).status,
    ).toBe(200);
    expect((await stack.postIpn('toggle', withField(sample('web_accept_completed_01'), 'txn_id', 'TOG2'))).status).toBe(
      200,
    );
    expect(await latestState()).toBe('ignored');
  },
);
