import { payoutWorkflowId } from '../src/domain/contracts';
import { balanceMinor, createTestStack, waitFor, type TestStack } from './support/stack';
import { workflowTaskFailures } from './support/workflow-task-failures';

/**
 * Sending a Mass Pay batch through PayPal's MassPay NVP API, on the real stack: the simulator (as
 * PayPal) answers the calls, then sends the Processed and Completed IPNs each call produces, which
 * the listener verifies and the batch reconciles. Payee balances are exact at the end.
 */
let stack: TestStack;
const SHOP = 'mps';
const CREDS = { username: 'mps_api1.example.com', password: 'sim-password', signature: 'sim-signature' };
const LONG = 180_000;

type Batch = {
  id: string;
  state: string;
  channel: string | null;
  reserved: boolean;
  counts: Record<string, number>;
  attention: string[];
  history: Array<{ what: string }>;
  send: { chunks: Array<{ index: number; state: string; calls: number; correlationId: string | null }> } | null;
  items: Array<{
    uniqueId: string;
    state: string;
    customerId: string;
    reasonCode: string | null;
    released: boolean;
    history: Array<{ what: string }>;
  }>;
};
const getBatch = async (id: string) => {
  const res = await stack.admin('GET', `/admin/payouts/${id}`);
  expect(res.status).toBe(200);
  return res.body as Batch;
};
const action = (id: string, name: string, body: Record<string, unknown> = {}) =>
  stack.admin('POST', `/admin/payouts/${id}/${name}`, { operator: 'bob', note: `${name} it`, ...body });

async function fund(customerId: string, amountMinor: number) {
  expect(await stack.admin('PUT', `/admin/customers/${customerId}`, { name: customerId })).toMatchObject({
    status: 200,
  });
  await stack.ledger.post({
    customerId,
    currency: 'USD',
    amountMinor,
    idempotencyKey: `fund:${customerId}`,
    reason: 'manual',
    mode: 'sandbox',
  });
}

/** Created by alice, reserved, approved by bob: ready to send. */
async function approvedBatch(
  integrationId: string,
  items: Array<{ customerId: string; amount: string; receiverEmail: string }>,
) {
  const res = await stack.admin('POST', '/admin/payouts', {
    integrationId,
    currency: 'USD',
    operator: 'alice',
    items,
  });
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  await waitFor('reserved', async () => (await getBatch(id)).reserved, LONG);
  expect(await action(id, 'approve')).toMatchObject({ status: 202 });
  await waitFor('approved', async () => (await getBatch(id)).state === 'approved');
  return res.body as { id: string; items: Array<{ uniqueId: string }> };
}

/** The simulator's MassPay calls that carried any of these unique ids. */
const callsFor = (uniqueIds: string[]) =>
  stack.sim.nvp.calls.filter(
    (c) =>
      c.method === 'MassPay' &&
      Object.entries(c.params).some(([k, v]) => k.startsWith('L_UNIQUEID') && uniqueIds.includes(v)),
  );
const itemsIn = (params: Record<string, string>) => Object.keys(params).filter((k) => k.startsWith('L_EMAIL')).length;

beforeAll(async () => {
  process.env.PAYPAL_NVP_MPS_USERNAME = CREDS.username;
  process.env.PAYPAL_NVP_MPS_PASSWORD = CREDS.password;
  process.env.PAYPAL_NVP_MPS_SIGNATURE = CREDS.signature;
  stack = await createTestStack('masspay-send');
  stack.sim.nvp.credentials = CREDS;
  stack.sim.nvp.masspay.settings = {
    listenerUrl: `${stack.baseUrl}/ipn/${SHOP}`,
    payerEmail: 'payouts@mps.example.com',
    processedDelayMs: 100,
    completedDelayMs: 500,
  };
  const integration = (over: Record<string, unknown>) => ({
    name: 'Payouts by API',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['payouts@mps.example.com'],
    ...over,
  });
  for (const [id, over] of [
    [SHOP, { nvpCredentialsEnv: 'PAYPAL_NVP_MPS' }],
    ['mps-nocreds', {}],
    ['mps-noenv', { nvpCredentialsEnv: 'PAYPAL_NVP_ABSENT' }],
    ['mps-mode', { nvpCredentialsEnv: 'PAYPAL_NVP_MPS' }],
  ] as const) {
    expect(await stack.admin('PUT', `/admin/integrations/${id}`, integration(over))).toMatchObject({ status: 200 });
  }
}, LONG);
afterAll(() => stack?.close());

test(
  '260 items: two calls of at most 250; both calls Processed then Completed reconcile the batch; ' +
    'a Failed item (reason code) and an Unclaimed-then-Returned one are released exactly once',
  async () => {
    await fund('c-many', 50_000);
    await fund('c-fail', 1_000);
    await fund('c-uncl', 1_000);
    const items = [
      { customerId: 'c-fail', amount: '4.00', receiverEmail: 'fail-a@example.com' },
      { customerId: 'c-uncl', amount: '3.00', receiverEmail: 'unclaimed-b@example.com' },
      ...Array.from({ length: 258 }, (_, i) => ({
        customerId: 'c-many',
        amount: '1.00',
        receiverEmail: `payee${i}@example.com`,
      })),
    ];
    const b = await approvedBatch(SHOP, items);
    expect(await balanceMinor(stack, 'c-many', 'USD')).toBe(50_000 - 25_800);
    expect(await action(b.id, 'send', { operator: 'carol', emailSubject: 'Your March payout' })).toMatchObject({
      status: 202,
    });
    const done = await waitFor(
      'completed',
      async () => {
        const x = await getBatch(b.id);
        return x.state === 'completed' && x;
      },
      LONG,
    );
    const calls = callsFor(b.items.map((i) => i.uniqueId));
    expect(calls.map((c) => [itemsIn(c.params), c.params.RECEIVERTYPE, c.params.CURRENCYCODE, c.answer.ACK])).toEqual([
      [250, 'EmailAddress', 'USD', 'Success'],
      [10, 'EmailAddress', 'USD', 'Success'],
    ]);
    expect(calls[0]!.params).toMatchObject({ EMAILSUBJECT: 'Your March payout', L_EMAIL0: 'fail-a@example.com' });
    // Credentials go in the call, never into what is recorded of it.
    expect(JSON.stringify(calls)).not.toContain(CREDS.password);
    expect(done).toMatchObject({
      channel: 'api',
      counts: { Completed: 258, Failed: 1, Returned: 1 },
      attention: [],
    });
    expect(done.send!.chunks.map((c) => [c.state, c.correlationId])).toEqual(
      calls.map((c) => ['acked', c.answer.CORRELATIONID]),
    );
    const byCustomer = (c: string) => done.items.filter((i) => i.customerId === c);
    expect(byCustomer('c-fail')).toEqual([
      expect.objectContaining({ state: 'Failed', reasonCode: '1001', released: true }),
    ]);
    expect(byCustomer('c-uncl')).toEqual([expect.objectContaining({ state: 'Returned', released: true })]);
    // Unclaimed at Processed, Returned at Completed: PayPal's two IPNs for its call, in order.
    const unclaimed = byCustomer('c-uncl')[0]!.history.map((h) => h.what);
    expect(unclaimed.findIndex((w) => /^Pending → Unclaimed/.test(w))).toBeGreaterThanOrEqual(0);
    expect(unclaimed.findIndex((w) => /^Unclaimed → Returned/.test(w))).toBeGreaterThan(
      unclaimed.findIndex((w) => /^Pending → Unclaimed/.test(w)),
    );
    expect([
      await balanceMinor(stack, 'c-many', 'USD'),
      await balanceMinor(stack, 'c-fail', 'USD'),
      await balanceMinor(stack, 'c-uncl', 'USD'),
    ]).toEqual([50_000 - 25_800, 1_000, 1_000]);
    const releases = await stack.db.models.LedgerEntry.find({ reason: 'payout_release' }).lean();
    expect(releases.map((e) => [e.customerId, e.amountMinor]).sort()).toEqual([
      ['c-fail', 400],
      ['c-uncl', 300],
    ]);
    // Sent already: the same request again is refused, PayPal is not called again.
    expect(await action(b.id, 'send')).toMatchObject({ status: 409, body: { error: expect.stringMatching(/sent/) } });
    expect(callsFor(b.items.map((i) => i.uniqueId))).toHaveLength(2);
    expect(await workflowTaskFailures(stack.client, payoutWorkflowId(b.id))).toEqual([]);
    expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true } });
  },
  LONG,
);

test('an answer lost on its way back: the retry is refused as a duplicate, nothing is paid twice', async () => {
  await fund('c-lost', 2_000);
  const b = await approvedBatch(SHOP, [
    { customerId: 'c-lost', amount: '5.00', receiverEmail: 'lost1@example.com' },
    { customerId: 'c-lost', amount: '7.00', receiverEmail: 'lost2@example.com' },
  ]);
  const ids = b.items.map((i) => i.uniqueId);
  stack.sim.nvp.faults.push({ kind: 'lost_answer' });
  expect(await action(b.id, 'send', { operator: 'carol' })).toMatchObject({ status: 202 });
  const done = await waitFor(
    'completed',
    async () => {
      const x = await getBatch(b.id);
      return x.state === 'completed' && x;
    },
    LONG,
  );
  expect(callsFor(ids).map((c) => [c.answer.ACK, c.answer.L_ERRORCODE0 ?? null, c.answerLost ?? false])).toEqual([
    ['Success', null, true],
    ['Failure', '8331', false],
  ]);
  const paid = stack.sim.nvp.masspay.payments.flatMap((p) => p.items).filter((i) => ids.includes(i.uniqueId));
  expect(paid.map((i) => i.uniqueId).sort()).toEqual([...ids].sort());
  expect(done).toMatchObject({ channel: 'api', counts: { Completed: 2 }, attention: [] });
  expect(done.send!.chunks).toEqual([expect.objectContaining({ state: 'acked', calls: 2 })]);
  expect(done.history.some((h) => /not paid twice/.test(h.what))).toBe(true);
  expect(await balanceMinor(stack, 'c-lost', 'USD')).toBe(2_000 - 1_200);
  expect(await workflowTaskFailures(stack.client, payoutWorkflowId(b.id))).toEqual([]);
});

test('no credentials, or a batch whose integration changed mode: a clear 422, or a hold, never a crash', async () => {
  await fund('c-cred', 3_000);
  const one = (integrationId: string) =>
    approvedBatch(integrationId, [{ customerId: 'c-cred', amount: '1.00', receiverEmail: 'cred@example.com' }]);
  const nocreds = await one('mps-nocreds');
  expect(await action(nocreds.id, 'send')).toMatchObject({
    status: 422,
    body: { error: 'integration mps-nocreds names no NVP credentials: set its nvpCredentialsEnv' },
  });
  const noenv = await one('mps-noenv');
  expect(await action(noenv.id, 'send')).toMatchObject({
    status: 422,
    body: { error: expect.stringMatching(/no NVP credentials in the environment .*PAYPAL_NVP_ABSENT_USERNAME/) },
  });
  const moved = await one('mps-mode');
  const live = {
    name: 'Now live',
    mode: 'live',
    allowedCurrencies: ['USD'],
    receiverEmails: ['payouts@mps.example.com'],
    nvpCredentialsEnv: 'PAYPAL_NVP_MPS',
  };
  expect(await stack.admin('PUT', '/admin/integrations/mps-mode', live)).toMatchObject({ status: 200 });
  expect(await action(moved.id, 'send')).toMatchObject({
    status: 422,
    body: { error: expect.stringMatching(/reserved sandbox money but integration mps-mode is now live/) },
  });
  expect(await action(moved.id, 'submitted')).toMatchObject({ status: 202 });
  await waitFor('uploaded', async () => (await getBatch(moved.id)).channel === 'upload');

  // From the Web UI, past the API's check: the batch is held for a person, nothing reaches PayPal.
  const handle = stack.client.workflow.getHandle(payoutWorkflowId(nocreds.id));
  await handle.signal('sendPayout', { operator: 'carol' });
  await handle.signal('sendPayout', { operator: 'carol', note: 'from the Web UI' });
  const held = await waitFor('held', async () => {
    const x = await getBatch(nocreds.id);
    return x.attention.length > 0 && x;
  });
  expect(held).toMatchObject({ state: 'approved', channel: null, attention: ['send_not_possible'] });
  expect(held.history.map((h) => h.what).join('\n')).toMatch(/ignored a malformed sendPayout signal/);
  expect(held.history.map((h) => h.what).join('\n')).toMatch(/names no NVP credentials/);
  const list = (await stack.admin('GET', '/admin/held')).body;
  expect(list.payoutBatches.map((p: { _id: string }) => p._id)).toContain(nocreds.id);
  expect(callsFor(nocreds.items.map((i) => i.uniqueId))).toEqual([]);
  // Nothing reached PayPal: the batch may still be cancelled, and its money comes back.
  expect(await action(nocreds.id, 'cancel')).toMatchObject({ status: 202 });
  await waitFor('cancelled', async () => (await getBatch(nocreds.id)).state === 'cancelled');
  expect(await balanceMinor(stack, 'c-cred', 'USD')).toBe(3_000 - 200);
  for (const id of [nocreds.id, noenv.id, moved.id])
    expect(await workflowTaskFailures(stack.client, payoutWorkflowId(id))).toEqual([]);
});
