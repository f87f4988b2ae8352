import { payoutWorkflowId } from '../../src/shared/contract';
import { balanceMinor, createTestStack, deliverIpn, waitFor, type TestStack } from '../support/stack';
import { workflowTaskFailures } from '../support/workflow-task-failures';

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
  send: {
    chunks: Array<{
      index: number;
      state: string;
      calls: number;
      correlationId: string | null;
      reconciled: { by: string; operator: string | null; items: number; found: number } | null;
    }>;
  } | null;
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

/** A customer with its balance, paid out only at its registered addresses (its own by default). */
async function fund(customerId: string, amountMinor: number, paypalEmails = [`${customerId}@example.com`]) {
  expect(await stack.admin('PUT', `/admin/customers/${customerId}`, { name: customerId, paypalEmails })).toMatchObject({
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

/**
 * Created by alice, reserved, approved by erin: ready to send (bob, who sends most, keeps his codes:
 * each operator's TOTP step is taken once, about three decisions per 30 s).
 */
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
  expect(await action(id, 'approve', { operator: 'erin' })).toMatchObject({
    status: 200,
    body: { state: { state: 'approved' } },
  });
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
    await fund('c-fail', 1_000, ['fail-a@example.com']);
    await fund('c-uncl', 1_000, ['unclaimed-b@example.com']);
    const items = [
      { customerId: 'c-fail', amount: '4.00', receiverEmail: 'fail-a@example.com' },
      { customerId: 'c-uncl', amount: '3.00', receiverEmail: 'unclaimed-b@example.com' },
      ...Array.from({ length: 258 }, () => ({
        customerId: 'c-many',
        amount: '1.00',
        receiverEmail: 'c-many@example.com',
      })),
    ];
    const b = await approvedBatch(SHOP, items);
    expect(await balanceMinor(stack, 'c-many', 'USD')).toBe(50_000 - 25_800);
    expect(await action(b.id, 'send', { operator: 'carol', emailSubject: 'Your March payout' })).toMatchObject({
      status: 200,
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
    // Unclaimed at Processed, Returned at Completed: PayPal's two IPNs for its call. On a busy machine
    // the simulator's Completed may be applied first (PayPal promises no order either): Returned all
    // the same, released once (above), and never Unclaimed after Returned.
    const unclaimed = byCustomer('c-uncl')[0]!.history.map((h) => h.what);
    const toUnclaimed = unclaimed.findIndex((w) => /→ Unclaimed/.test(w));
    const toReturned = unclaimed.findIndex((w) => /→ Returned/.test(w));
    expect(toReturned).toBeGreaterThanOrEqual(0);
    expect(toUnclaimed < toReturned).toBe(true);
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
    // Sent already: the same request again is refused, PayPal is not called again, and the upload
    // file (which would pay every item a second time) is refused.
    expect(await action(b.id, 'send')).toMatchObject({ status: 409, body: { error: expect.stringMatching(/sent/) } });
    expect(callsFor(b.items.map((i) => i.uniqueId))).toHaveLength(2);
    expect(await stack.admin('GET', `/admin/payouts/${b.id}/masspay-file`)).toMatchObject({
      status: 409,
      body: { error: expect.stringMatching(/went through PayPal's API/) },
    });
    expect(await workflowTaskFailures(stack.client, payoutWorkflowId(b.id))).toEqual([]);
    expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true } });
  },
  LONG,
);

test("an answer lost on its way back: never called again; PayPal's IPNs for its items settle the call", async () => {
  await fund('c-lost', 2_000);
  const b = await approvedBatch(SHOP, [
    { customerId: 'c-lost', amount: '5.00', receiverEmail: 'c-lost@example.com' },
    { customerId: 'c-lost', amount: '7.00', receiverEmail: 'c-lost@example.com' },
  ]);
  const ids = b.items.map((i) => i.uniqueId);
  stack.sim.nvp.faults.push({ kind: 'lost_answer' });
  expect(await action(b.id, 'send', { operator: 'carol' })).toMatchObject({ status: 200 });
  const done = await waitFor(
    'completed',
    async () => {
      const x = await getBatch(b.id);
      return x.state === 'completed' && x;
    },
    LONG,
  );
  // One call, whose answer was lost; PayPal's Processed and Completed IPNs proved it was paid.
  expect(callsFor(ids).map((c) => [c.answer.ACK, c.answerLost ?? false])).toEqual([['Success', true]]);
  const paid = stack.sim.nvp.masspay.payments.flatMap((p) => p.items).filter((i) => ids.includes(i.uniqueId));
  expect(paid.map((i) => i.uniqueId).sort()).toEqual([...ids].sort());
  expect(done).toMatchObject({ channel: 'api', counts: { Completed: 2 }, attention: [] });
  expect(done.send!.chunks).toEqual([
    expect.objectContaining({ state: 'acked', calls: 1, reconciled: expect.objectContaining({ by: 'ipn' }) }),
  ]);
  expect(done.history.some((h) => /no answer from PayPal .*never sent again until reconciled/.test(h.what))).toBe(true);
  expect(await balanceMinor(stack, 'c-lost', 'USD')).toBe(2_000 - 1_200);
  expect(await workflowTaskFailures(stack.client, payoutWorkflowId(b.id))).toEqual([]);
});

describe('an unanswered MassPay call with no IPN: held until reconciled, never sent again on a guess', () => {
  const heldIds = async () =>
    ((await stack.admin('GET', '/admin/held')).body.payoutBatches as Array<{ _id: string }>).map((p) => p._id);
  const searches = (receiver: string) =>
    stack.sim.nvp.calls.filter(
      (c) => c.method === 'TransactionSearch' && (c.params.RECEIVER === receiver || c.params.EMAIL === receiver),
    );
  let listenerUrl: string | null = null;
  beforeEach(() => {
    // PayPal's IPNs for these calls are not sent (they may come days later, or be lost).
    listenerUrl = stack.sim.nvp.masspay.settings.listenerUrl;
    stack.sim.nvp.masspay.settings.listenerUrl = null;
  });
  afterEach(() => void (stack.sim.nvp.masspay.settings.listenerUrl = listenerUrl));

  /** Sent by carol with the next NVP request failing as `fault`; returns once the batch holds the call. */
  async function unanswered(customerId: string, fault: 'lost_answer' | 'unavailable') {
    await fund(customerId, 2_000);
    const b = await approvedBatch(SHOP, [
      { customerId, amount: '5.00', receiverEmail: `${customerId}@example.com` },
      { customerId, amount: '7.00', receiverEmail: `${customerId}@example.com` },
    ]);
    stack.sim.nvp.faults.push({ kind: fault });
    expect(await action(b.id, 'send', { operator: 'carol' })).toMatchObject({ status: 200 });
    const held = await waitFor('held', async () => {
      const x = await getBatch(b.id);
      return x.send?.chunks[0]?.state === 'uncertain' && x;
    });
    expect(held).toMatchObject({ state: 'submitted', channel: 'api', attention: ['send_unanswered:0'] });
    expect(held.send!.chunks).toEqual([expect.objectContaining({ state: 'uncertain', calls: 1 })]);
    expect(await heldIds()).toContain(b.id);
    expect(await balanceMinor(stack, customerId, 'USD')).toBe(2_000 - 1_200);
    return { id: b.id, ids: b.items.map((i) => i.uniqueId) };
  }

  test('PayPal acted on it: one MassPay call; a search finds its items; the IPNs then settle them', async () => {
    const { id, ids } = await unanswered('c-held', 'lost_answer');
    // Neither a re-send nor the upload file; stopWaiting does not close the call either.
    expect(await action(id, 'send', { operator: 'dave' })).toMatchObject({
      status: 409,
      body: { error: expect.stringMatching(/went unanswered .*reconcile first/) },
    });
    expect(await stack.admin('GET', `/admin/payouts/${id}/masspay-file`)).toMatchObject({ status: 409 });
    expect(await action(id, 'stop-waiting', { operator: 'dave' })).toMatchObject({ status: 200 });
    await waitFor('stopped', async () => (await getBatch(id)).history.some((h) => /stopped waiting/.test(h.what)));
    expect(await getBatch(id)).toMatchObject({ attention: ['send_unanswered:0'] });
    expect(await heldIds()).toContain(id);
    // From the Web UI too: the workflow refuses the re-send.
    await stack.client.workflow
      .getHandle(payoutWorkflowId(id))
      .signal('sendPayout', { ...(await stack.operators.proof('dave')), note: 'go' });
    await waitFor('refused', async () =>
      (await getBatch(id)).history.some((h) => /dave tried to send: refused/.test(h.what)),
    );
    expect(callsFor(ids).map((c) => [c.method, c.answer.ACK, c.answerLost])).toEqual([['MassPay', 'Success', true]]);

    expect(await action(id, 'reconcile', { operator: 'dave' })).toMatchObject({ status: 200 });
    const reconciled = await waitFor('reconciled', async () => {
      const x = await getBatch(id);
      return x.send!.chunks[0]!.state === 'acked' && x;
    });
    expect(reconciled.send!.chunks[0]!.reconciled).toMatchObject({
      by: 'search',
      operator: 'dave',
      items: 2,
      found: 2,
    });
    expect(reconciled.attention).toEqual([]);
    // By the payee as receiver and as counterparty email (PayPal's reference reads either way).
    const asked = searches('c-held@example.com').map((c) => [
      c.params.RECEIVER ? 'RECEIVER' : 'EMAIL',
      c.params.TRANSACTIONCLASS,
      c.params.CURRENCYCODE,
    ]);
    expect(asked).toEqual([
      ['RECEIVER', 'MassPay', 'USD'],
      ['EMAIL', 'MassPay', 'USD'],
    ]);
    expect(await heldIds()).not.toContain(id);
    expect(callsFor(ids)).toHaveLength(1);

    // PayPal's IPNs arrive at last: the items settle, paid once.
    const payment = stack.sim.nvp.masspay.payments.find((p) => p.items.some((i) => ids.includes(i.uniqueId)))!;
    for (const status of ['Processed', 'Completed'] as const)
      expect((await deliverIpn(stack, SHOP, stack.sim.nvp.masspay.ipn(payment, status))).state).toBe('masspay_routed');
    const done = await waitFor('completed', async () => {
      const x = await getBatch(id);
      return x.state === 'completed' && x;
    });
    expect(done).toMatchObject({ counts: { Completed: 2 }, attention: [] });
    expect(done.items.map((i) => [i.state, i.released])).toEqual([
      ['Completed', false],
      ['Completed', false],
    ]);
    expect(await balanceMinor(stack, 'c-held', 'USD')).toBe(2_000 - 1_200);
    expect(callsFor(ids)).toHaveLength(1);
    expect(await workflowTaskFailures(stack.client, payoutWorkflowId(id))).toEqual([]);
  });

  test('PayPal never had it: a search finds nothing, and only then may another operator send it again', async () => {
    const { id, ids } = await unanswered('c-gone', 'unavailable');
    expect(callsFor(ids).map((c) => [c.method, c.answer.ACK ?? null, c.answerLost])).toEqual([['MassPay', null, true]]);
    expect(await action(id, 'reconcile', { operator: 'dave' })).toMatchObject({ status: 200 });
    const reconciled = await waitFor('reconciled', async () => {
      const x = await getBatch(id);
      return x.send!.chunks[0]!.state === 'not_found' && x;
    });
    expect(reconciled).toMatchObject({ attention: [] });
    expect(reconciled.send!.chunks[0]!.reconciled).toMatchObject({ by: 'search', found: 0 });
    // The creator, by any spelling, may not send it; another operator may.
    expect(await action(id, 'send', { operator: 'Alice.' })).toMatchObject({
      status: 422,
      body: { error: expect.stringMatching(/^four eyes: .* was created by alice, another operator must send it/) },
    });
    stack.sim.nvp.masspay.settings.listenerUrl = listenerUrl;
    expect(await action(id, 'send', { operator: 'carol', note: 'PayPal has none of it' })).toMatchObject({
      status: 200,
    });
    const done = await waitFor(
      'completed',
      async () => {
        const x = await getBatch(id);
        return x.state === 'completed' && x;
      },
      LONG,
    );
    expect(callsFor(ids).map((c) => [c.answer.ACK ?? null, c.answerLost ?? false])).toEqual([
      [null, true],
      ['Success', false],
    ]);
    const paid = stack.sim.nvp.masspay.payments.flatMap((p) => p.items).filter((i) => ids.includes(i.uniqueId));
    expect(paid.map((i) => i.uniqueId).sort()).toEqual([...ids].sort());
    expect(done).toMatchObject({ counts: { Completed: 2 }, attention: [] });
    expect(await balanceMinor(stack, 'c-gone', 'USD')).toBe(2_000 - 1_200);
    expect(await workflowTaskFailures(stack.client, payoutWorkflowId(id))).toEqual([]);
  });
});

test('no credentials, or an integration that changed mode: a clear 422 by either door, never a crash', async () => {
  await fund('c-cred', 3_000);
  const one = (integrationId: string) =>
    approvedBatch(integrationId, [{ customerId: 'c-cred', amount: '1.00', receiverEmail: 'c-cred@example.com' }]);
  const nocreds = await one('mps-nocreds');
  expect(await action(nocreds.id, 'send')).toMatchObject({
    status: 422,
    body: {
      error: 'integration mps-nocreds names no NVP credentials: set its nvpCredentialsEnv',
      details: { rule: 'send_not_possible' },
      state: { state: 'approved', send: null },
    },
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
  expect(await action(moved.id, 'submitted')).toMatchObject({ status: 200 });
  await waitFor('uploaded', async () => (await getBatch(moved.id)).channel === 'upload');

  // From the Web UI: the same rule in the workflow refuses the signal, records it, and changes nothing.
  const handle = stack.client.workflow.getHandle(payoutWorkflowId(nocreds.id));
  await handle.signal('sendPayout', { operator: 'carol' });
  // Without a code: refused as an unproven decision, the batch is not sent.
  await handle.signal('sendPayout', { operator: 'carol', note: 'no code' });
  await handle.signal('sendPayout', { ...(await stack.operators.proof('carol')), note: 'from the Web UI' });
  const refused = await waitFor('refused', async () => {
    const x = await getBatch(nocreds.id);
    return x.history.some((h) => /carol tried to send: refused, .*names no NVP credentials/.test(h.what)) && x;
  });
  expect(refused).toMatchObject({ state: 'approved', channel: null, send: null, attention: [] });
  expect(refused.history.map((h) => h.what).join('\n')).toMatch(/ignored a malformed sendPayout signal/);
  expect(callsFor(nocreds.items.map((i) => i.uniqueId))).toEqual([]);
  // Nothing reached PayPal: the batch may still be cancelled, and its money comes back.
  expect(await action(nocreds.id, 'cancel')).toMatchObject({ status: 200, body: { state: { state: 'cancelled' } } });
  expect(await balanceMinor(stack, 'c-cred', 'USD')).toBe(3_000 - 200);
  for (const id of [nocreds.id, noenv.id, moved.id])
    expect(await workflowTaskFailures(stack.client, payoutWorkflowId(id))).toEqual([]);
  // Seven decisions by bob and erin: one wait for a fresh TOTP step at most.
}, 120_000);
