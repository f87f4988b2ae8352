import { readFileSync } from 'node:fs';
import path from 'node:path';
import { payoutWorkflowId } from '../../src/shared/contract';
import { PAYOUT_BATCH_MAX_ITEMS } from '../../src/masspay/state';
import { balanceMinor, createTestStack, deliverIpn, waitFor, withFields, type TestStack } from '../support/stack';
import { workflowTaskFailures } from '../support/workflow-task-failures';

/**
 * Mass Pay batches we send, on the real stack: the admin API creates and moves a batch, PayPal's
 * (simulated) IPNs report its items, and every payee's balance is exact at each step.
 */
let stack: TestStack;
const SHOP = 'mp';
const fixture = (name: string) => readFileSync(path.join(__dirname, '..', 'fixtures', 'ipn', `${name}.ipn`));
// 1 item, USD 10.00, fee 0.20, item Completed, payment_status Processed, test_ipn=1.
const ONE = fixture('masspay_processed_02');
// 2 items, USD 25.99 Completed and 9.99 Unclaimed, payment_status Processed, test_ipn=1.
const TWO = fixture('masspay_processed_01');

type Item = {
  uniqueId: string;
  state: string;
  customerId: string;
  amountMinor: number;
  feeMinor: number | null;
  reasonCode: string | null;
  contradictions: unknown[];
  history: Array<{ what: string }>;
  reserved: boolean;
  released: boolean;
};
const getBatch = async (id: string) => {
  const res = await stack.admin('GET', `/admin/payouts/${id}`);
  expect(res.status).toBe(200);
  return res.body as {
    id: string;
    state: string;
    reserved: boolean;
    counts: Record<string, number>;
    attention: string[];
    appliedMessages: string[];
    approvedBy: string | null;
    approvals: Array<{ operator: string }>;
    contradictions: Array<Record<string, unknown>>;
    pendingReleases: unknown[];
    history: Array<{ what: string }>;
    items: Item[];
  };
};
const action = (id: string, name: string, body: Record<string, unknown> = {}) =>
  stack.admin('POST', `/admin/payouts/${id}/${name}`, { operator: 'bob', note: `${name} it`, ...body });

async function fund(customerId: string, amountMinor: number, currency = 'USD') {
  await stack.ledger.post({
    customerId,
    currency,
    amountMinor,
    idempotencyKey: `fund:${customerId}:${currency}`,
    reason: 'manual',
    mode: 'sandbox',
  });
}

/** Created by alice, reserved, approved by bob, submitted: ready for PayPal's IPNs. */
async function sentBatch(items: Array<{ customerId: string; amount: string; receiverEmail?: string }>) {
  const res = await stack.admin('POST', '/admin/payouts', {
    integrationId: SHOP,
    currency: 'USD',
    operator: 'alice',
    // Each customer is paid at its own registered address (see beforeAll).
    items: items.map((i) => ({ receiverEmail: `${i.customerId}@example.com`, ...i })),
  });
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  // Approved as soon as created: the batch reserves first, then answers the approval (no polling).
  expect(await action(id, 'approve')).toMatchObject({
    status: 200,
    body: { state: { state: 'approved', reserved: true } },
  });
  expect(await action(id, 'submitted', { operator: 'alice' })).toMatchObject({
    status: 200,
    body: { applied: true, state: { state: 'submitted' }, inFlight: [] },
  });
  return res.body as { id: string; items: Array<{ uniqueId: string; amountMinor: number }> };
}

/** A Mass Pay IPN from a sample, its items rewritten to ours (`_x` fields replaced in place). */
function ipn(
  base: Buffer,
  paymentStatus: string,
  items: Array<{ uniqueId: string; status: string; gross: string; txn?: string; reasonCode?: string }>,
) {
  const fields: Record<string, string> = { payment_status: paymentStatus };
  items.forEach((item, i) => {
    const x = i + 1;
    Object.assign(fields, {
      [`unique_id_${x}`]: item.uniqueId,
      [`status_${x}`]: item.status,
      [`mc_gross_${x}`]: item.gross,
    });
    fields[`masspay_txn_id_${x}`] = item.txn ?? `T${item.uniqueId}`;
    if (item.reasonCode) fields[`reason_code_${x}`] = item.reasonCode;
  });
  return withFields(base, fields);
}

async function deliver(batchId: string, raw: Buffer) {
  const msg = await deliverIpn(stack, SHOP, raw);
  expect(msg.state).toBe('masspay_routed');
  return waitFor('applied', async () => {
    const b = await getBatch(batchId);
    return b.appliedMessages.includes(String(msg._id)) && b;
  });
}

const itemOf = (b: Awaited<ReturnType<typeof getBatch>>, uniqueId: string) =>
  b.items.find((i) => i.uniqueId === uniqueId)!;

beforeAll(async () => {
  stack = await createTestStack('masspay');
  const integration = {
    name: 'Payouts',
    mode: 'sandbox',
    allowedCurrencies: ['USD', 'GBP'],
    receiverEmails: ['robert@hisowncompany.com'],
  };
  expect(await stack.admin('PUT', `/admin/integrations/${SHOP}`, integration)).toMatchObject({ status: 200 });
  for (const c of ['c-a', 'c-b', 'c-c', 'c-d', 'c-e', 'c-f', 'c-g', 'c-h']) {
    // Payouts go only to a customer's registered PayPal addresses.
    const paypalEmails = [`${c}@example.com`, ...(c === 'c-g' ? ['g@example.com', 'g2@example.com'] : [])];
    expect(await stack.admin('PUT', `/admin/customers/${c}`, { name: c, paypalEmails })).toMatchObject({
      status: 200,
    });
    await fund(c, 10_000);
  }
});
afterAll(() => stack?.close());

describe('creating a batch', () => {
  test('bad input is a 400 naming the item and field; nothing is created', async () => {
    const base = { integrationId: SHOP, currency: 'USD', operator: 'alice' };
    const cases: Array<[unknown, string]> = [
      [
        {
          ...base,
          items: [
            { customerId: 'c-a', receiverEmail: 'a@example.com', amount: '1.00' },
            { customerId: 'c-a', receiverEmail: 'a@example.com', amount: '1.005' },
          ],
        },
        'items.1.amount',
      ],
      [{ ...base, items: [{ customerId: 'c-a', receiverEmail: 'a@example.com', amount: '0.00' }] }, 'items.0.amount'],
      [{ ...base, items: [{ customerId: 'c-a', receiverEmail: 'a@example.com', amount: '-1.00' }] }, 'items.0.amount'],
      [
        { ...base, items: [{ customerId: 'c-a', receiverEmail: 'not-an-email', amount: '1.00' }] },
        'items.0.receiverEmail',
      ],
      [
        { ...base, items: [{ customerId: 'c-a', receiverEmail: 'a@example.com', amount: '1.00', note: 'tab\there' }] },
        'items.0.note',
      ],
      [
        { ...base, currency: 'XYZ', items: [{ customerId: 'c-a', receiverEmail: 'a@example.com', amount: '1' }] },
        'currency',
      ],
      [
        { ...base, currency: 'JPY', items: [{ customerId: 'c-a', receiverEmail: 'a@example.com', amount: '1.5' }] },
        'items.0.amount',
      ],
      [
        {
          ...base,
          // One over our cap (two Payouts calls' worth): PayPal's 5,000 is the upload file's alone now.
          items: Array.from({ length: PAYOUT_BATCH_MAX_ITEMS + 1 }, () => ({
            customerId: 'c-a',
            receiverEmail: 'a@example.com',
            amount: '0.01',
          })),
        },
        'items',
      ],
    ];
    for (const [body, where] of cases) {
      const res = await stack.admin('POST', '/admin/payouts', body);
      expect({ where, status: res.status, paths: res.body.issues?.map((i: { path: string }) => i.path) }).toEqual({
        where,
        status: 400,
        paths: [where],
      });
    }
    const unknown = await stack.admin('POST', '/admin/payouts', {
      ...base,
      items: [{ customerId: 'nobody', receiverEmail: 'a@example.com', amount: '1.00' }],
    });
    expect(unknown).toMatchObject({ status: 400, body: { error: 'items[0].customerId: no customer nobody' } });
    expect(await stack.db.models.PayoutBatch.countDocuments()).toBe(0);
    expect(await stack.db.models.PayoutItem.countDocuments()).toBe(0);
  });

  test('an item beyond the payee balance is refused (409) and nothing is reserved', async () => {
    const res = await stack.admin('POST', '/admin/payouts', {
      integrationId: SHOP,
      currency: 'USD',
      operator: 'alice',
      items: [
        { customerId: 'c-h', receiverEmail: 'c-h@example.com', amount: '60.00' },
        { customerId: 'c-h', receiverEmail: 'c-h@example.com', amount: '40.01' },
      ],
    });
    expect(res).toMatchObject({
      status: 409,
      body: {
        error: expect.stringMatching(/^items\[1\]\.amount: 40\.01 USD is beyond c-h's sandbox balance .*40\.00 USD/),
      },
    });
    expect(await balanceMinor(stack, 'c-h', 'USD')).toBe(10_000);
    expect(await stack.db.models.PayoutBatch.countDocuments()).toBe(0);
  });

  test('created: 201 with unique ids; reserved; file; four eyes; cancel releases; list paginates', async () => {
    const res = await stack.admin('POST', '/admin/payouts', {
      integrationId: SHOP,
      currency: 'USD',
      operator: 'alice',
      note: 'March',
      items: [
        { customerId: 'c-g', receiverEmail: 'G@Example.com', amount: '12.34', note: 'thanks' },
        { customerId: 'c-g', receiverEmail: 'g2@example.com', amount: '1' },
      ],
    });
    expect(res).toMatchObject({ status: 201, body: { state: 'created' } });
    const { id, items } = res.body as {
      id: string;
      items: Array<{ uniqueId: string; customerId: string; receiverEmail: string; amountMinor: number; state: string }>;
    };
    expect(items.map(({ uniqueId: _uniqueId, ...rest }) => rest)).toEqual([
      { customerId: 'c-g', receiverEmail: 'g@example.com', amountMinor: 1234, state: 'Pending' },
      { customerId: 'c-g', receiverEmail: 'g2@example.com', amountMinor: 100, state: 'Pending' },
    ]);
    for (const { uniqueId } of items) expect(uniqueId).toMatch(/^[A-Z0-9]{1,13}$/);
    await waitFor('reserved', async () => (await getBatch(id)).reserved);
    expect(await balanceMinor(stack, 'c-g', 'USD')).toBe(10_000 - 1334);

    const file = await fetch(`${stack.baseUrl}/admin/payouts/${id}/masspay-file`, {
      headers: { authorization: `Bearer ${stack.adminToken}` },
    });
    const text = await file.text();
    expect(text).toBe(
      `g@example.com\t12.34\tUSD\t${items[0]!.uniqueId}\tthanks\ng2@example.com\t1.00\tUSD\t${items[1]!.uniqueId}\t\n`,
    );

    expect(await action(id, 'approve', { operator: 'alice' })).toMatchObject({
      status: 422,
      body: { error: expect.stringMatching(/four eyes/) },
    });
    expect(await action(id, 'submitted')).toMatchObject({
      status: 409,
      body: { error: expect.stringMatching(/only an approved batch/) },
    });
    expect(await action(id, 'cancel', { operator: 'carol' })).toMatchObject({ status: 200 });
    await waitFor('cancelled', async () => (await getBatch(id)).state === 'cancelled');
    expect(await getBatch(id)).toMatchObject({ counts: { Cancelled: 2 } });
    expect(await balanceMinor(stack, 'c-g', 'USD')).toBe(10_000);
    expect(await action(id, 'cancel')).toMatchObject({ status: 409 });
    const audit = (await stack.admin('GET', `/admin/audit?txnId=${id}`)).body.map(
      (a: { action: string; actor: string }) => `${a.action}:${a.actor}`,
    );
    expect(audit).toEqual([
      'payout_create:alice',
      'payout_approve_refused:alice',
      'payout_submitted_refused:bob',
      'payout_cancel:carol',
      'payout_cancel_refused:bob',
    ]);

    const page1 = await stack.admin('GET', '/admin/payouts?limit=1');
    expect(page1.body.batches).toHaveLength(1);
    expect(page1.body.batches[0]!.id).toBe(id);
  });
});

describe('mass payments we receive', () => {
  // One item, paid to this integration's address by the IPN's payer: a customer topping up by Mass Pay.
  const paidToUs = (txn: string, status: string) =>
    withFields(ONE, {
      payer_email: 'payer-rcv%40example.com',
      receiver_email_1: 'robert%40hisowncompany.com',
      masspay_txn_id_1: txn,
      unique_id_1: '',
      status_1: status,
      mc_gross_1: '12.34',
    });

  test('credit the payer once per item when Completed; an Unclaimed one waits; Returned takes it back', async () => {
    const customer = 'c-rcv';
    const created = await stack.admin('PUT', `/admin/customers/${customer}`, {
      name: 'Pays by Mass Pay',
      paypalEmails: ['payer-rcv@example.com'],
    });
    expect(created).toMatchObject({ status: 200 });
    const entries = () => stack.db.models.LedgerEntry.find({ integrationId: SHOP, parentTxnId: 'MPRCV1' }).lean();
    const credits = () => stack.db.models.LedgerEntry.find({ integrationId: SHOP, txnId: 'MPRCV1' }).lean();

    expect((await deliverIpn(stack, SHOP, paidToUs('MPRCV1', 'Unclaimed'))).state).toBe('masspay_received');
    expect(await balanceMinor(stack, customer, 'USD')).toBe(0);

    expect((await deliverIpn(stack, SHOP, paidToUs('MPRCV1', 'Completed'))).state).toBe('masspay_received');
    await waitFor('credited', async () => (await balanceMinor(stack, customer, 'USD')) === 1234);
    // PayPal delivers the same Mass Pay IPN twice: nothing more.
    await deliverIpn(stack, SHOP, withFields(paidToUs('MPRCV1', 'Completed'), { resend: 'true' }));
    expect((await credits()).map((e) => e.amountMinor)).toEqual([1234]);

    expect((await deliverIpn(stack, SHOP, paidToUs('MPRCV1', 'Returned'))).state).toBe('masspay_received');
    await waitFor('taken back', async () => (await balanceMinor(stack, customer, 'USD')) === 0);
    expect((await entries()).map((e) => [e.reason, e.amountMinor])).toEqual([['reversal', -1234]]);
    expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true } });
  });
});

describe('two batches created at the same moment for one payee', () => {
  test(
    'both pass the API check; the ledger lets one reserve, the other answers 409 naming the payee, ' +
      'nothing reserved for it; approve right after 201 applies',
    async () => {
      const customer = 'c-race';
      const other = 'c-race-other';
      for (const [id, email] of [
        [customer, 'race@example.com'],
        [other, 'race-other@example.com'],
      ] as const) {
        expect(await stack.admin('PUT', `/admin/customers/${id}`, { name: id, paypalEmails: [email] })).toMatchObject({
          status: 200,
        });
      }
      await fund(customer, 10_000);
      await fund(other, 10_000);
      // The second batch also pays another payee first: if it loses, that reservation is released again.
      const create = (items: Array<{ customerId: string; receiverEmail: string; amount: string }>) =>
        stack.admin('POST', '/admin/payouts', { integrationId: SHOP, currency: 'USD', operator: 'alice', items });
      const [a, b] = await Promise.all([
        create([{ customerId: customer, receiverEmail: 'race@example.com', amount: '60.00' }]),
        create([
          { customerId: other, receiverEmail: 'race-other@example.com', amount: '10.00' },
          { customerId: customer, receiverEmail: 'race@example.com', amount: '60.00' },
        ]),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      const [won, lost] = a.status === 201 ? [a, b] : [b, a];
      expect(won.body).toMatchObject({ state: 'created', reserved: true });
      // Refused by the API's check, or (both passed it) by the ledger: either way the payee is named.
      expect(lost.body.error).toMatch(/c-race\b.*nothing was reserved/);
      expect(lost.body.details).toMatchObject({ customerIds: [customer] });
      // Created means reserved: an approval right away is applied, never a 409 for an internal race.
      expect(
        await stack.admin('POST', `/admin/payouts/${won.body.id}/approve`, { operator: 'bob', reason: 'ok' }),
      ).toMatchObject({ status: 200, body: { state: { state: 'approved', reserved: true } } });
      expect(await balanceMinor(stack, customer, 'USD')).toBe(4_000);
      expect(await balanceMinor(stack, other, 'USD')).toBe(won === b ? 9_000 : 10_000);
      // Whatever the refused batch posted (if it got that far) was released: the payouts' movements
      // of both payees add up to the winning batch's reservations alone.
      const moved = await stack.db.models.LedgerEntry.find({
        customerId: { $in: [customer, other] },
        reason: { $in: ['payout_reserve', 'payout_release'] },
      }).lean();
      expect(moved.reduce((sum, e) => sum + e.amountMinor, 0)).toBe(won === b ? -7_000 : -6_000);
      expect(moved.filter((e) => e.idempotencyKey.includes(won.body.id)).map((e) => e.amountMinor)).toEqual(
        won === b ? [-1_000, -6_000] : [-6_000],
      );
      if (lost.body.details.batchId) {
        // Refused after it was stored: kept, cancelled, for the record.
        const refused = await getBatch(lost.body.details.batchId);
        expect(refused).toMatchObject({ state: 'cancelled', reserved: false });
        expect(refused.items.every((i) => i.state === 'Cancelled' && i.reserved === i.released)).toBe(true);
      }
      expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true } });
    },
  );
});

describe('PayPal reports the items', () => {
  test('single item: Processed then Completed; fee recorded, reservation settled', async () => {
    const b = await sentBatch([{ customerId: 'c-a', amount: '10.00' }]);
    const u = b.items[0]!.uniqueId;
    expect(await balanceMinor(stack, 'c-a', 'USD')).toBe(9_000);
    let batch = await deliver(b.id, ipn(ONE, 'Processed', [{ uniqueId: u, status: 'Completed', gross: '10.00' }]));
    expect(batch).toMatchObject({ state: 'processed', counts: { Completed: 1 }, attention: [] });
    expect(itemOf(batch, u)).toMatchObject({ state: 'Completed', feeMinor: 20 });
    batch = await deliver(b.id, ipn(ONE, 'Completed', [{ uniqueId: u, status: 'Completed', gross: '10.00' }]));
    expect(batch).toMatchObject({ state: 'completed', counts: { Completed: 1 }, attention: [] });
    expect(await balanceMinor(stack, 'c-a', 'USD')).toBe(9_000);
  });

  test(
    'multi-item: Unclaimed then Returned releases once; ' +
      'Completed before Processed; a duplicated IPN changes nothing',
    async () => {
      const b = await sentBatch([
        { customerId: 'c-b', amount: '25.99' },
        { customerId: 'c-c', amount: '9.99' },
      ]);
      const [u1, u2] = b.items.map((i) => i.uniqueId);
      const completed = ipn(TWO, 'Completed', [
        { uniqueId: u1!, status: 'Completed', gross: '25.99' },
        { uniqueId: u2!, status: 'Returned', gross: '9.99' },
      ]);
      let batch = await deliver(b.id, completed);
      expect(batch).toMatchObject({ state: 'completed', counts: { Completed: 1, Returned: 1 }, attention: [] });
      expect([await balanceMinor(stack, 'c-b', 'USD'), await balanceMinor(stack, 'c-c', 'USD')]).toEqual([
        10_000 - 2599,
        10_000,
      ]);
      // Processed (with the item still Unclaimed) arrives late, then the Completed again.
      batch = await deliver(
        b.id,
        ipn(TWO, 'Processed', [
          { uniqueId: u1!, status: 'Completed', gross: '25.99' },
          { uniqueId: u2!, status: 'Unclaimed', gross: '9.99' },
        ]),
      );
      expect(batch).toMatchObject({ state: 'completed', counts: { Completed: 1, Returned: 1 }, attention: [] });
      batch = await deliver(b.id, completed);
      expect(batch).toMatchObject({ state: 'completed', counts: { Completed: 1, Returned: 1 }, attention: [] });
      expect(itemOf(batch, u2!).history.filter((h) => /released/.test(h.what))).toHaveLength(1);
      expect([await balanceMinor(stack, 'c-b', 'USD'), await balanceMinor(stack, 'c-c', 'USD')]).toEqual([
        10_000 - 2599,
        10_000,
      ]);
      const releases = await stack.db.models.LedgerEntry.find({ reason: 'payout_release', customerId: 'c-c' }).lean();
      expect(releases.map((e) => e.amountMinor)).toEqual([999]);
    },
  );

  test('Processed with Unclaimed, then Completed with Returned', async () => {
    const b = await sentBatch([
      { customerId: 'c-d', amount: '25.99' },
      { customerId: 'c-d', amount: '9.99' },
    ]);
    const [u1, u2] = b.items.map((i) => i.uniqueId);
    expect(await balanceMinor(stack, 'c-d', 'USD')).toBe(10_000 - 3598);
    let batch = await deliver(
      b.id,
      ipn(TWO, 'Processed', [
        { uniqueId: u1!, status: 'Completed', gross: '25.99' },
        { uniqueId: u2!, status: 'Unclaimed', gross: '9.99' },
      ]),
    );
    expect(batch).toMatchObject({ state: 'processed', counts: { Completed: 1, Unclaimed: 1 } });
    batch = await deliver(
      b.id,
      ipn(TWO, 'Completed', [
        { uniqueId: u1!, status: 'Completed', gross: '25.99' },
        { uniqueId: u2!, status: 'Returned', gross: '9.99' },
      ]),
    );
    expect(batch).toMatchObject({ state: 'completed', counts: { Completed: 1, Returned: 1 }, attention: [] });
    expect(await balanceMinor(stack, 'c-d', 'USD')).toBe(10_000 - 2599);
  });

  test('a Failed item with its reason code is released', async () => {
    const b = await sentBatch([{ customerId: 'c-e', amount: '10.00' }]);
    const u = b.items[0]!.uniqueId;
    const batch = await deliver(
      b.id,
      ipn(ONE, 'Processed', [{ uniqueId: u, status: 'Failed', gross: '10.00', reasonCode: '1001' }]),
    );
    expect(itemOf(batch, u)).toMatchObject({ state: 'Failed', reasonCode: '1001' });
    expect(batch.counts).toEqual({ Failed: 1 });
    expect(await balanceMinor(stack, 'c-e', 'USD')).toBe(10_000);
  });

  test('a Denied batch releases every reservation once', async () => {
    const b = await sentBatch([
      { customerId: 'c-f', amount: '25.99' },
      { customerId: 'c-f', amount: '9.99' },
    ]);
    const [u1, u2] = b.items.map((i) => i.uniqueId);
    expect(await balanceMinor(stack, 'c-f', 'USD')).toBe(10_000 - 3598);
    const denied = ipn(TWO, 'Denied', [
      { uniqueId: u1!, status: 'Pending', gross: '25.99' },
      { uniqueId: u2!, status: 'Pending', gross: '9.99' },
    ]);
    let batch = await deliver(b.id, denied);
    expect(batch).toMatchObject({ state: 'denied', counts: { Denied: 2 } });
    expect(await balanceMinor(stack, 'c-f', 'USD')).toBe(10_000);
    batch = await deliver(b.id, denied);
    expect(batch).toMatchObject({ state: 'denied', counts: { Denied: 2 } });
    expect(await balanceMinor(stack, 'c-f', 'USD')).toBe(10_000);
    expect(await workflowTaskFailures(stack.client, payoutWorkflowId(b.id))).toEqual([]);
    expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true } });
  });

  test('items of no batch of ours: the message is held for a person, never dropped', async () => {
    const msg = await deliverIpn(stack, SHOP, TWO);
    expect(msg.state).toBe('masspay_unmatched');
    expect(msg.flags).toContain('held');
    const held = (await stack.admin('GET', '/admin/held')).body;
    expect(held.masspayUnmatchedMessages.map((m: { _id: string }) => m._id)).toContain(String(msg._id));
    expect(msg.outcome).toMatch(/2 of 2 item\(s\) match no batch: #1 12345, #2 45678/);
  });

  test('a signal no verified message backs moves nothing and shows the batch in /admin/held', async () => {
    const b = await sentBatch([{ customerId: 'c-a', amount: '1.00' }]);
    await stack.client.workflow
      .getHandle(payoutWorkflowId(b.id))
      .signal('masspayIpn', { messageId: '0123456789abcdef01234567' });
    await stack.client.workflow.getHandle(payoutWorkflowId(b.id)).signal('approvePayout', { operator: 42 });
    const batch = await waitFor('attention', async () => {
      const x = await getBatch(b.id);
      return x.attention.length > 0 && x;
    });
    expect(batch).toMatchObject({
      state: 'submitted',
      counts: { Pending: 1 },
      attention: ['unproven_message:0123456789abcdef01234567'],
    });
    const held = (await stack.admin('GET', '/admin/held')).body;
    expect(held.payoutBatches.map((p: { _id: string }) => p._id)).toContain(b.id);
    expect(await action(b.id, 'stop-waiting', { operator: 'carol' })).toMatchObject({ status: 200 });
    await waitFor('cleared', async () => (await getBatch(b.id)).attention.length === 0);
    expect(await workflowTaskFailures(stack.client, payoutWorkflowId(b.id))).toEqual([]);
  });
});

describe('matching by masspay_txn_id', () => {
  test('an item named only by the txn id PayPal gave it earlier reaches its batch', async () => {
    const b = await sentBatch([{ customerId: 'c-b', amount: '1.00' }]);
    const u = b.items[0]!.uniqueId;
    const before = await balanceMinor(stack, 'c-b', 'USD');
    await deliver(b.id, ipn(ONE, 'Processed', [{ uniqueId: u, status: 'Unclaimed', gross: '1.00', txn: 'TXNONLY1' }]));
    // No unique_id_1 at all: blank, so the summary treats it as absent.
    const batch = await deliver(
      b.id,
      withFields(ipn(ONE, 'Completed', [{ uniqueId: u, status: 'Returned', gross: '1.00', txn: 'TXNONLY1' }]), {
        unique_id_1: '',
      }),
    );
    expect(itemOf(batch, u)).toMatchObject({ state: 'Returned' });
    expect(await balanceMinor(stack, 'c-b', 'USD')).toBe(before + 100);
  });
});

describe('payees are registered; four eyes by identity; caps need a second approver', () => {
  const counts = () =>
    Promise.all([
      stack.db.models.PayoutBatch.countDocuments(),
      stack.db.models.PayoutItem.countDocuments(),
      stack.db.models.PayoutRef.countDocuments(),
    ]);
  async function customer(id: string, amountMinor: number) {
    const body = { name: id, paypalEmails: [`${id}@example.com`] };
    expect(await stack.admin('PUT', `/admin/customers/${id}`, body)).toMatchObject({ status: 200 });
    await fund(id, amountMinor);
  }

  test('a payout to an address not registered for its customer: 422, nothing stored or reserved', async () => {
    await customer('c-pay', 10_000);
    const before = await counts();
    // The whole balance, to an address of the attacker's, or of another customer's.
    for (const receiverEmail of ['me@elsewhere.example', 'c-b@example.com']) {
      const res = await stack.admin('POST', '/admin/payouts', {
        integrationId: SHOP,
        currency: 'USD',
        operator: 'mallory',
        items: [
          { customerId: 'c-pay', receiverEmail: 'c-pay@example.com', amount: '1.00' },
          { customerId: 'c-pay', receiverEmail, amount: '99.00' },
        ],
      });
      expect(res).toMatchObject({
        status: 422,
        body: {
          error: expect.stringMatching(
            /^items\[1\]\.receiverEmail: not a PayPal address registered for customer c-pay/,
          ),
          details: { item: 1, field: 'receiverEmail' },
        },
      });
    }
    expect(await counts()).toEqual(before);
    expect(await balanceMinor(stack, 'c-pay', 'USD')).toBe(10_000);
    // The customer's own address, however it is capitalised, is theirs.
    const own = await stack.admin('POST', '/admin/payouts', {
      integrationId: SHOP,
      currency: 'USD',
      operator: 'mallory',
      items: [{ customerId: 'c-pay', receiverEmail: 'C-Pay@Example.COM', amount: '1.00' }],
    });
    expect(own).toMatchObject({ status: 201, body: { items: [{ receiverEmail: 'c-pay@example.com' }] } });
  });

  test("'alice.', 'ALICE' and alice with a zero-width space may not approve Alice's batch", async () => {
    await customer('c-eyes', 10_000);
    const res = await stack.admin('POST', '/admin/payouts', {
      integrationId: SHOP,
      currency: 'USD',
      operator: 'Alice',
      items: [{ customerId: 'c-eyes', receiverEmail: 'c-eyes@example.com', amount: '25.00' }],
    });
    expect(res.status).toBe(201);
    const id = res.body.id as string;
    await waitFor('reserved', async () => (await getBatch(id)).reserved);
    // Through the API each spelling is alice's own key (the batch records her operator id, alice).
    for (const operator of ['alice.', 'ALICE', 'alice\u200b', 'Alice'])
      expect(await action(id, 'approve', { operator })).toMatchObject({
        status: 422,
        body: { error: expect.stringMatching(/^four eyes: .* was created by alice, another operator must approve it/) },
      });
    // From the Web UI, past the API: the workflow refuses the same.
    await stack.client.workflow
      .getHandle(payoutWorkflowId(id))
      .signal('approvePayout', { ...(await stack.operators.proof('alice')), note: 'x' });
    await waitFor('refused in the workflow', async () =>
      (await stack.admin('GET', `/admin/audit?txnId=${id}`)).body.some(
        (a: { action: string; actor: string }) => a.action === 'payout_approve_refused' && a.actor === 'alice',
      ),
    );
    expect(await getBatch(id)).toMatchObject({ state: 'created', approvedBy: null });
    expect(await action(id, 'approve')).toMatchObject({ status: 200 });
    await waitFor('approved', async () => (await getBatch(id)).state === 'approved');
    expect(await getBatch(id)).toMatchObject({ approvedBy: 'bob' });
    expect(await balanceMinor(stack, 'c-eyes', 'USD')).toBe(7_500);
  });

  test('over the per-batch or the per-day cap: two approvals by two operators, neither the creator', async () => {
    const capped = {
      name: 'Capped payouts',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['caps@example.com'],
      payoutCaps: { perBatchMinor: { USD: 5_000 }, perDayMinor: { USD: 8_000 } },
    };
    expect(await stack.admin('PUT', '/admin/integrations/mp-caps', capped)).toMatchObject({ status: 200 });
    await customer('c-cap', 20_000);
    const create = async (amount: string) => {
      const res = await stack.admin('POST', '/admin/payouts', {
        integrationId: 'mp-caps',
        currency: 'USD',
        operator: 'alice',
        items: [{ customerId: 'c-cap', receiverEmail: 'c-cap@example.com', amount }],
      });
      expect(res.status).toBe(201);
      await waitFor('reserved', async () => (await getBatch(res.body.id)).reserved);
      return res.body as { id: string; requiredApprovals: number; capsExceeded: unknown[] };
    };
    const big = await create('60.00');
    expect(big).toMatchObject({
      requiredApprovals: 2,
      capsExceeded: [{ cap: 'per_batch', currency: 'USD', capMinor: 5_000, totalMinor: 6_000 }],
    });
    expect(await action(big.id, 'approve', { operator: 'bob' })).toMatchObject({ status: 200 });
    await waitFor('first approval', async () => (await getBatch(big.id)).approvals.length === 1);
    expect(await getBatch(big.id)).toMatchObject({ state: 'created', approvedBy: null });
    for (const operator of ['Bob.', 'alice'])
      expect(await action(big.id, 'approve', { operator })).toMatchObject({
        status: 422,
        body: { error: expect.stringMatching(/^four eyes/) },
      });
    expect(await action(big.id, 'approve', { operator: 'carol' })).toMatchObject({ status: 200 });
    await waitFor('approved', async () => (await getBatch(big.id)).state === 'approved');
    expect(await getBatch(big.id)).toMatchObject({
      approvedBy: 'carol',
      approvals: [{ operator: 'bob' }, { operator: 'carol' }],
    });

    // Under the per-batch cap, but 60.00 + 30.00 is over the day's 80.00.
    const second = await create('30.00');
    expect(second).toMatchObject({
      requiredApprovals: 2,
      capsExceeded: [{ cap: 'per_day', currency: 'USD', capMinor: 8_000, totalMinor: 9_000 }],
    });
    expect(await action(second.id, 'approve', { operator: 'bob' })).toMatchObject({ status: 200 });
    await waitFor('first approval', async () => (await getBatch(second.id)).approvals.length === 1);
    expect((await getBatch(second.id)).state).toBe('created');
    expect(await balanceMinor(stack, 'c-cap', 'USD')).toBe(20_000 - 9_000);
  });
});

describe('contradictions are problems, never silence', () => {
  async function customer(id: string) {
    const body = { name: id, paypalEmails: [`${id}@example.com`] };
    expect(await stack.admin('PUT', `/admin/customers/${id}`, body)).toMatchObject({ status: 200 });
    await fund(id, 10_000);
  }
  const held = async () =>
    (await stack.admin('GET', '/admin/held')).body.payoutBatches as Array<{ _id: string; contradictions: unknown[] }>;
  const audit = async (id: string) =>
    ((await stack.admin('GET', `/admin/audit?txnId=${id}`)).body as Array<{ action: string; actor: string }>).map(
      (a) => `${a.action}:${a.actor}`,
    );

  test(
    'a release by two operators, then PayPal says Completed: held as a contradiction, ' +
      'not cleared by stopWaiting, cleared only by its own decision',
    async () => {
      await customer('c-con');
      const b = await sentBatch([
        { customerId: 'c-con', amount: '10.00' },
        { customerId: 'c-con', amount: '5.00' },
      ]);
      const [uA, uB] = b.items.map((i) => i.uniqueId) as [string, string];
      await deliver(
        b.id,
        ipn(TWO, 'Processed', [
          { uniqueId: uA, status: 'Unclaimed', gross: '10.00' },
          { uniqueId: uB, status: 'Completed', gross: '5.00' },
        ]),
      );
      // Within the waiting period a release is a request: the money stays reserved.
      const resolve = (operator: string) =>
        stack.admin('POST', `/admin/payouts/${b.id}/items/${uA}/resolve`, { operator, note: 'gone', state: 'Failed' });
      expect(await resolve('carol')).toMatchObject({ status: 200, body: { needsSecondOperator: true } });
      await waitFor('requested', async () => (await getBatch(b.id)).pendingReleases.length === 1);
      expect(await balanceMinor(stack, 'c-con', 'USD')).toBe(10_000 - 1_500);
      for (const same of ['carol', 'Carol.'])
        expect(await resolve(same)).toMatchObject({
          status: 422,
          body: { error: expect.stringMatching(/^four eyes/) },
        });
      expect(await resolve('dave')).toMatchObject({ status: 200 });
      await waitFor('released', async () => itemOf(await getBatch(b.id), uA).state === 'Failed');
      expect(await balanceMinor(stack, 'c-con', 'USD')).toBe(10_000 - 500);

      // PayPal paid it after all.
      const batch = await deliver(
        b.id,
        ipn(TWO, 'Completed', [
          { uniqueId: uA, status: 'Completed', gross: '10.00' },
          { uniqueId: uB, status: 'Completed', gross: '5.00' },
        ]),
      );
      const contradiction = {
        code: 'state_contradicts_final',
        id: `state_contradicts_final:${uA}:Completed`,
        uniqueId: uA,
        ours: 'Failed',
        paypal: 'Completed',
      };
      expect(batch).toMatchObject({
        state: 'completed',
        counts: { Failed: 1, Completed: 1 },
        attention: [],
        contradictions: [contradiction],
      });
      expect(itemOf(batch, uA)).toMatchObject({ state: 'Failed', released: true, contradictions: [contradiction] });
      expect((await held()).find((h) => h._id === b.id)).toMatchObject({ contradictions: [contradiction] });
      expect(await audit(b.id)).toContain('payout_contradiction_raised:paypal');

      // stopWaiting closes nothing of it: refused by the API, and by the workflow from the Web UI.
      expect(await action(b.id, 'stop-waiting', { operator: 'carol' })).toMatchObject({
        status: 409,
        body: { error: expect.stringMatching(/contradictions, each cleared by its own decision/) },
      });
      await stack.client.workflow
        .getHandle(payoutWorkflowId(b.id))
        .signal('stopWaitingPayout', { ...(await stack.operators.proof('eve')), note: 'make it go away' });
      await waitFor('refused in the workflow', async () =>
        (await audit(b.id)).includes('payout_stopWaiting_refused:eve'),
      );
      expect((await getBatch(b.id)).contradictions).toEqual([expect.objectContaining(contradiction)]);
      expect((await held()).map((h) => h._id)).toContain(b.id);

      const clear = (contradictionId: string) =>
        action(b.id, 'clear-contradiction', { operator: 'carol', note: 'debited by hand', contradictionId });
      expect(await clear(`state_contradicts_final:${uB}:Completed`)).toMatchObject({ status: 409 });
      expect(await clear(contradiction.id)).toMatchObject({ status: 200 });
      await waitFor('cleared', async () => (await getBatch(b.id)).contradictions.length === 0);
      expect((await held()).map((h) => h._id)).not.toContain(b.id);
      expect(await audit(b.id)).toContain('payout_clearContradiction:carol');
      // No money moved for the contradiction or its clearing: a person decides that.
      expect(await balanceMinor(stack, 'c-con', 'USD')).toBe(10_000 - 500);
      expect(await workflowTaskFailures(stack.client, payoutWorkflowId(b.id))).toEqual([]);
      expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true } });
    },
  );

  test('a second masspay_txn_id for one unique id: a contradiction for a person; no money moves', async () => {
    await customer('c-twice');
    const b = await sentBatch([{ customerId: 'c-twice', amount: '10.00' }]);
    const u = b.items[0]!.uniqueId;
    await deliver(b.id, ipn(ONE, 'Processed', [{ uniqueId: u, status: 'Completed', gross: '10.00', txn: 'TWICE1' }]));
    const batch = await deliver(
      b.id,
      ipn(ONE, 'Completed', [{ uniqueId: u, status: 'Completed', gross: '10.00', txn: 'TWICE2' }]),
    );
    expect(batch.contradictions).toEqual([
      expect.objectContaining({ code: 'second_txn_id', uniqueId: u, firstTxnId: 'TWICE1', txnId: 'TWICE2' }),
    ]);
    expect(itemOf(batch, u)).toMatchObject({ state: 'Completed', masspayTxnId: 'TWICE1' });
    expect((await held()).map((h) => h._id)).toContain(b.id);
    expect(await balanceMinor(stack, 'c-twice', 'USD')).toBe(9_000);
  });
});

describe('one operator convention: every decision answered once applied', () => {
  test(
    '/approve right after creating, then /submitted at once: both 200 with the applied state, no retry; ' +
      'a refused decision is a 409 naming its rule and changes nothing; a malformed one a 400, not recorded',
    async () => {
      expect(
        await stack.admin('PUT', '/admin/customers/c-conv', { name: 'c-conv', paypalEmails: ['c-conv@example.com'] }),
      ).toMatchObject({ status: 200 });
      await fund('c-conv', 1_000);
      const created = await stack.admin('POST', '/admin/payouts', {
        integrationId: SHOP,
        currency: 'USD',
        operator: 'alice',
        items: [{ customerId: 'c-conv', amount: '2.50', receiverEmail: 'c-conv@example.com' }],
      });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      // No waiting for the reservation: the batch reserves first, then takes the approval.
      const approved = await action(id, 'approve', { reason: 'checked the payees' });
      expect(approved).toMatchObject({
        status: 200,
        body: {
          applied: true,
          detail: expect.stringMatching(/^approved by bob: checked the payees/),
          state: { id, state: 'approved', reserved: true, approvedBy: 'bob' },
          inFlight: [],
        },
      });
      expect(await balanceMinor(stack, 'c-conv', 'USD')).toBe(1_000 - 250);
      // At once, no retry: the approval is applied, so the upload is taken (`note` still read as the reason).
      const submitted = await action(id, 'submitted', { operator: 'alice', note: 'uploaded on paypal.com' });
      expect(submitted).toMatchObject({
        status: 200,
        body: { applied: true, state: { state: 'submitted', channel: 'upload' }, inFlight: [] },
      });

      const before = await getBatch(id);
      const audited = async () => (await stack.admin('GET', `/admin/audit?txnId=${id}`)).body as Array<any>;
      const auditsBefore = (await audited()).length;
      const refused = await action(id, 'approve', { operator: 'carol' });
      expect(refused).toMatchObject({
        status: 409,
        body: {
          error: `only a created batch can be approved; ${id} is submitted`,
          details: { rule: 'batch_state' },
          state: { state: 'submitted' },
        },
      });
      const after = await getBatch(id);
      expect([after.state, after.approvedBy, after.approvals, after.counts, after.attention]).toEqual([
        before.state,
        before.approvedBy,
        before.approvals,
        before.counts,
        before.attention,
      ]);
      expect(await balanceMinor(stack, 'c-conv', 'USD')).toBe(1_000 - 250);
      const audits = await audited();
      expect(audits).toHaveLength(auditsBefore + 1);
      expect(audits.at(-1)).toMatchObject({
        action: 'payout_approve_refused',
        actor: 'carol',
        details: { rule: 'batch_state' },
      });

      // Not the action's body: refused by the update's validator, before anything is recorded.
      const malformed = await action(id, 'clear-contradiction', { contradictionId: '' });
      expect(malformed).toMatchObject({ status: 400, body: { error: 'invalid request body' } });
      expect(await audited()).toHaveLength(auditsBefore + 1);
      expect((await getBatch(id)).history).toEqual(after.history);
    },
  );
});
