import { createPayoutActivities } from '../../activities/masspay';
import { payoutWorkflowId } from '../../src/shared/contract';
import { createLogger } from '../../src/shared/logger';
import { SLICE_ITEMS } from '../../src/masspay/items-engine';
import { balanceMinor, createTestStack, deliverIpn, waitFor, type TestStack } from '../support/stack';
import { workflowTaskFailures } from '../support/workflow-task-failures';

/**
 * A Mass Pay batch larger than one slice of a message, on the real stack: each IPN is applied in
 * several activities, every balance and item count ends exact, and neither a re-delivered IPN nor
 * a slice applied again (as after a worker crash) changes anything.
 */
let stack: TestStack;
const SHOP = 'mp-large';
const COUNT = 600;
const CUSTOMERS = ['l-0', 'l-1', 'l-2', 'l-3', 'l-4', 'l-5'];
const FUNDS = 100_000;
// Item i: customer i % 6, 1.00 to 5.00 USD.
const amountOf = (i: number) => 100 * (1 + (i % 5));
const processedStatus = (i: number) => (i % 7 === 0 ? 'Failed' : i % 10 === 0 ? 'Unclaimed' : 'Completed');
const completedStatus = (i: number) => (processedStatus(i) === 'Unclaimed' ? 'Returned' : processedStatus(i));

beforeAll(async () => {
  stack = await createTestStack('masspay-large');
  // No postback: the simulator's postback takes at most 64 KB, a 600-item IPN is ~75 KB.
  const integration = {
    name: 'Large payouts',
    mode: 'sandbox',
    verifyTransaction: false,
    allowedCurrencies: ['USD'],
    receiverEmails: ['payer@example.com'],
  };
  expect(await stack.admin('PUT', `/admin/integrations/${SHOP}`, integration)).toMatchObject({ status: 200 });
  for (const c of CUSTOMERS) {
    // Payouts go only to a customer's registered address.
    const customer = { name: c, paypalEmails: [`${c}@example.com`] };
    expect(await stack.admin('PUT', `/admin/customers/${c}`, customer)).toMatchObject({ status: 200 });
    await stack.ledger.post({
      customerId: c,
      currency: 'USD',
      amountMinor: FUNDS,
      idempotencyKey: `fund:${c}`,
      reason: 'manual',
      mode: 'sandbox',
    });
  }
});
afterAll(() => stack?.close());

function masspayIpn(paymentStatus: string, uniqueIds: string[], status: (i: number) => string): Buffer {
  const items = uniqueIds.map((u, i) => {
    const x = i + 1;
    const gross = (amountOf(i) / 100).toFixed(2);
    return (
      `&unique_id_${x}=${u}&status_${x}=${status(i)}&mc_gross_${x}=${gross}` +
      `&mc_currency_${x}=USD&masspay_txn_id_${x}=T${u}`
    );
  });
  const head =
    `txn_type=masspay&payment_status=${paymentStatus}&test_ipn=1&charset=windows-1252` +
    '&payer_email=payer%40example.com&verify_sign=x';
  return Buffer.from(head + items.join(''), 'latin1');
}

/** What each customer should hold once PayPal said `status` of every item. */
function expectedBalances(status: (i: number) => string): number[] {
  const held = CUSTOMERS.map(() => FUNDS);
  for (let i = 0; i < COUNT; i++) {
    if (!['Failed', 'Returned'].includes(status(i))) held[i % CUSTOMERS.length]! -= amountOf(i);
  }
  return held;
}

function countsOf(status: (i: number) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < COUNT; i++) counts[status(i)] = (counts[status(i)] ?? 0) + 1;
  return counts;
}

const balances = () => Promise.all(CUSTOMERS.map((c) => balanceMinor(stack, c, 'USD')));
const snapshot = async (id: string) => ({
  items: await stack.db.models.PayoutItem.find({ batchId: id }).sort({ _id: 1 }).lean(),
  entries: await stack.db.models.LedgerEntry.countDocuments(),
  balances: await balances(),
});

test(`a ${COUNT}-item batch reconciles exactly from IPNs applied in slices; again, nothing changes`, async () => {
  const created = await stack.admin('POST', '/admin/payouts', {
    integrationId: SHOP,
    currency: 'USD',
    operator: 'alice',
    items: Array.from({ length: COUNT }, (_, i) => ({
      customerId: CUSTOMERS[i % CUSTOMERS.length],
      receiverEmail: `${CUSTOMERS[i % CUSTOMERS.length]}@example.com`,
      amount: (amountOf(i) / 100).toFixed(2),
    })),
  });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const uniqueIds = (created.body.items as Array<{ uniqueId: string }>).map((i) => i.uniqueId);
  const batch = async () => (await stack.admin('GET', `/admin/payouts/${id}`)).body;
  // 600 reservations take a few seconds alone, far longer while a 2-core machine runs other suites.
  await waitFor('reserved', async () => (await batch()).reserved, 120_000);
  expect(await balances()).toEqual(expectedBalances(() => 'Pending'));
  expect(await stack.admin('POST', `/admin/payouts/${id}/approve`, { operator: 'bob', reason: 'ok' })).toMatchObject({
    status: 200,
    body: { state: { state: 'approved' } },
  });
  const submitted = { operator: 'alice', reason: 'uploaded' };
  expect(await stack.admin('POST', `/admin/payouts/${id}/submitted`, submitted)).toMatchObject({
    status: 200,
    body: { state: { state: 'submitted' } },
  });

  const apply = async (raw: Buffer, applied: number) => {
    const msg = await deliverIpn(stack, SHOP, raw);
    expect(msg.state).toBe('masspay_routed');
    await waitFor('applied', async () => (await batch()).appliedMessages.length === applied, 120_000);
    return String(msg._id);
  };
  const processed = await apply(masspayIpn('Processed', uniqueIds, processedStatus), 1);
  expect(await batch()).toMatchObject({ state: 'processed', counts: countsOf(processedStatus), attention: [] });
  expect(await balances()).toEqual(expectedBalances(processedStatus));

  const completed = masspayIpn('Completed', uniqueIds, completedStatus);
  await apply(completed, 2);
  expect(await batch()).toMatchObject({ state: 'completed', counts: countsOf(completedStatus), attention: [] });
  expect(await balances()).toEqual(expectedBalances(completedStatus));
  const releases = await stack.db.models.LedgerEntry.countDocuments({ reason: 'payout_release' });
  expect(releases).toBe(countReleased());
  expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true } });

  // The same IPN delivered again: recognised item by item, nothing written, nothing moved.
  const before = await snapshot(id);
  await apply(completed, 3);
  expect(await snapshot(id)).toEqual(before);
  expect((await batch()).history.at(-1).what).toContain(`0 item(s) moved, ${COUNT} unchanged`);

  // A slice of the Processed message applied again, as after a worker that crashed before reporting it.
  const { applyMasspaySlice } = createPayoutActivities({
    db: stack.db,
    client: stack.client,
    config: stack.config,
    logger: createLogger('silent'),
  });
  const again = await applyMasspaySlice({ batchId: id, integrationId: SHOP, messageId: processed, slice: 1 });
  expect(again).toMatchObject({ ok: true, moved: COUNT - SLICE_ITEMS, ignored: 0, last: true });
  expect(await snapshot(id)).toEqual(before);

  // Each message went through in slices: its own activity per 500 items, the workflow holding counts only.
  const history = await stack.client.workflow.getHandle(payoutWorkflowId(id)).fetchHistory();
  const sliceCalls = (history.events ?? []).filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'applyMasspaySlice',
  );
  const slicesOf = new Map<string, number[]>();
  for (const e of sliceCalls) {
    const data = e.activityTaskScheduledEventAttributes!.input!.payloads![0]!.data!;
    const input = JSON.parse(Buffer.from(data).toString()) as { messageId: string; slice: number };
    slicesOf.set(input.messageId, [...(slicesOf.get(input.messageId) ?? []), input.slice]);
  }
  // Three deliveries (a busy machine may make the simulator resend one more: applied alike, moving nothing).
  expect(slicesOf.size).toBeGreaterThanOrEqual(3);
  const perMessage = Array.from({ length: Math.ceil(COUNT / SLICE_ITEMS) }, (_, i) => i);
  for (const slices of slicesOf.values()) expect(slices).toEqual(perMessage);
  expect(JSON.stringify(history).length).toBeLessThan(200_000);
  expect(await workflowTaskFailures(stack.client, payoutWorkflowId(id))).toEqual([]);
}, 360_000);

function countReleased(): number {
  let n = 0;
  for (let i = 0; i < COUNT; i++) if (['Failed', 'Returned'].includes(completedStatus(i))) n++;
  return n;
}
