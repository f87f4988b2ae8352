import { payoutWorkflowId } from '../../src/shared/contract';
import { initialBatchState } from '../../src/masspay/rules';
import { newPayoutItem, payoutItemId, type PayoutItem } from '../../src/masspay/state';
import { balanceMinor, createTestStack, deliverIpn, waitFor, type TestStack } from '../support/stack';
import { workflowTaskFailures } from '../support/workflow-task-failures';

/**
 * Paying out through PayPal's Payouts REST API on the real stack: the simulator (as PayPal) takes the
 * batch, settles its items, posts signed webhooks, answers polls and cancels unclaimed items. Every
 * test ends with exact payee balances and item states.
 */
let stack: TestStack;
const SHOP = 'rest';
const APP = { clientId: 'RestShopClient', secret: 'rest-shop-secret', webhookId: 'WH-REST-SHOP-0001' };
const LONG = 180_000;

type Batch = {
  id: string;
  state: string;
  channel: string | null;
  counts: Record<string, number>;
  attention: string[];
  contradictions: unknown[];
  send: { channel: string; chunks: Array<{ state: string; calls: number; correlationId: string | null }> } | null;
  items: Array<{ uniqueId: string; customerId: string; state: string; reasonCode: string | null; released: boolean }>;
};
const getBatch = async (id: string) => {
  const res = await stack.admin('GET', `/admin/payouts/${id}`);
  expect(res.status).toBe(200);
  return res.body as Batch;
};
const action = (id: string, name: string, body: Record<string, unknown> = {}) =>
  stack.admin('POST', `/admin/payouts/${id}/${name}`, { operator: 'bob', reason: `${name} it`, ...body });

let funded = 0;
/** A fresh customer holding `amountMinor`, paid out only at its own address. */
async function customer(amountMinor: number): Promise<string> {
  const id = `rc${++funded}-${Date.now().toString(36)}`;
  const put = await stack.admin('PUT', `/admin/customers/${id}`, { name: id, paypalEmails: [`${id}@example.com`] });
  expect(put.status).toBe(200);
  await stack.ledger.post({
    customerId: id,
    currency: 'USD',
    amountMinor,
    idempotencyKey: `fund:${id}`,
    reason: 'manual',
    mode: 'sandbox',
  });
  return id;
}

async function sentBatch(customers: Array<{ id: string; amount: string }>, integrationId = SHOP) {
  const res = await stack.admin('POST', '/admin/payouts', {
    integrationId,
    currency: 'USD',
    operator: 'alice',
    items: customers.map((c) => ({ customerId: c.id, amount: c.amount, receiverEmail: `${c.id}@example.com` })),
  });
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  expect(await action(id, 'approve')).toMatchObject({ status: 200, body: { state: { state: 'approved' } } });
  const sent = await action(id, 'send');
  expect(sent).toMatchObject({ status: 200, body: { state: { send: { channel: 'rest' } } } });
  await waitFor('sent', async () => (await getBatch(id)).send?.chunks.every((c) => c.state === 'acked') ?? false, LONG);
  return { id, uniqueIds: res.body.items.map((i: { uniqueId: string }) => i.uniqueId) as string[] };
}

const paypalBatchOf = async (id: string) => (await getBatch(id)).send!.chunks[0]!.correlationId!;
const itemState = async (id: string, uniqueId: string) =>
  (await getBatch(id)).items.find((i) => i.uniqueId === uniqueId)!.state;

beforeAll(async () => {
  process.env.PAYPAL_REST_SHOP_CLIENT_ID = APP.clientId;
  process.env.PAYPAL_REST_SHOP_CLIENT_SECRET = APP.secret;
  process.env.PAYPAL_REST_SHOP_WEBHOOK_ID = APP.webhookId;
  stack = await createTestStack('payouts-rest', { PAYOUTS_POLL_SECONDS: '2' });
  stack.sim.rest.addApp({ ...APP, webhookUrl: `${stack.baseUrl}/webhooks/paypal/${SHOP}` });
  const put = await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
    name: 'Payouts by REST',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['payouts@rest.example.com'],
    payoutsRestEnv: 'PAYPAL_REST_SHOP',
  });
  expect(put.status).toBe(200);
}, LONG);
afterAll(() => stack?.close());

describe('Payouts REST', () => {
  it(
    'sends one Payouts call; items Completed, Unclaimed then Returned, Failed with PayPal’s error name',
    async () => {
      const [paid, unclaimed, failed] = [await customer(10_000), await customer(10_000), await customer(10_000)];
      stack.sim.rest.payouts.setOutcome(`${unclaimed}@example.com`, { status: 'UNCLAIMED' });
      stack.sim.rest.payouts.setOutcome(`${failed}@example.com`, { status: 'FAILED', error: 'RECEIVER_UNREGISTERED' });
      const { id, uniqueIds } = await sentBatch([
        { id: paid, amount: '12.34' },
        { id: unclaimed, amount: '20.00' },
        { id: failed, amount: '5.00' },
      ]);
      const creates = stack.sim.rest.calls.filter((c) => c.operation === 'create_payout' && c.requestId === `${id}:0`);
      expect(creates).toHaveLength(1);
      const ppBatch = stack.sim.rest.payouts.batches.get(await paypalBatchOf(id))!;
      expect(ppBatch.senderBatchId).toBe(`${id}:0`);
      expect(ppBatch.items.map((i) => [i.senderItemId, i.value])).toEqual([
        [uniqueIds[0], '12.34'],
        [uniqueIds[1], '20.00'],
        [uniqueIds[2], '5.00'],
      ]);
      await stack.sim.rest.process(ppBatch.payoutBatchId);
      await waitFor(
        'items settled by webhooks',
        async () => (await getBatch(id)).counts['Pending'] === undefined,
        LONG,
      );
      let batch = await getBatch(id);
      expect(batch.items.map((i) => i.state)).toEqual(['Completed', 'Unclaimed', 'Failed']);
      expect(batch.items[2]!.reasonCode).toBe('RECEIVER_UNREGISTERED');
      expect(batch.state).toBe('processed');
      expect(await balanceMinor(stack, paid, 'USD')).toBe(10_000 - 1_234);
      expect(await balanceMinor(stack, unclaimed, 'USD')).toBe(10_000 - 2_000);
      expect(await balanceMinor(stack, failed, 'USD')).toBe(10_000);
      // 30 days later PayPal returns the unclaimed money.
      await stack.sim.rest.change(ppBatch.items[1]!.payoutItemId, 'RETURNED');
      await waitFor('returned', async () => (await itemState(id, uniqueIds[1]!)) === 'Returned', LONG);
      await waitFor('completed', async () => (await getBatch(id)).state === 'completed', LONG);
      expect(await balanceMinor(stack, unclaimed, 'USD')).toBe(10_000);
      batch = await getBatch(id);
      expect(batch.contradictions).toEqual([]);
      expect(await workflowTaskFailures(stack.client, payoutWorkflowId(id))).toEqual([]);
    },
    LONG,
  );

  it(
    'a lost answer and a 5xx: sent again under the same sender_batch_id, one PayPal batch',
    async () => {
      const c = await customer(5_000);
      stack.sim.rest.injectFaults([
        { kind: 'status', status: 503, on: 'create_payout' },
        { kind: 'lost_answer', on: 'create_payout' },
      ]);
      const { id } = await sentBatch([{ id: c, amount: '10.00' }]);
      const creates = stack.sim.rest.calls.filter((x) => x.operation === 'create_payout' && x.requestId === `${id}:0`);
      expect(creates.map((x) => x.status)).toEqual([503, 201, 400]);
      const atPayPal = [...stack.sim.rest.payouts.batches.values()].filter((b) => b.senderBatchId === `${id}:0`);
      expect(atPayPal).toHaveLength(1);
      expect(await paypalBatchOf(id)).toBe(atPayPal[0]!.payoutBatchId);
      await stack.sim.rest.process(atPayPal[0]!.payoutBatchId);
      await waitFor('completed', async () => (await getBatch(id)).state === 'completed', LONG);
      expect(await balanceMinor(stack, c, 'USD')).toBe(4_000);
    },
    LONG,
  );

  it(
    'duplicate and out-of-order webhooks change nothing twice',
    async () => {
      const [a, b] = [await customer(5_000), await customer(5_000)];
      stack.sim.rest.payouts.setOutcome(`${b}@example.com`, { status: 'FAILED', error: 'RECEIVER_ACCOUNT_LOCKED' });
      stack.sim.rest.webhookFaults = { duplicate: true, reverse: true };
      try {
        const { id } = await sentBatch([
          { id: a, amount: '1.00' },
          { id: b, amount: '2.00' },
        ]);
        await stack.sim.rest.process(await paypalBatchOf(id));
        await waitFor('completed', async () => (await getBatch(id)).state === 'completed', LONG);
        expect((await getBatch(id)).items.map((i) => [i.state, i.released])).toEqual([
          ['Completed', false],
          ['Failed', true],
        ]);
        expect(await balanceMinor(stack, a, 'USD')).toBe(4_900);
        expect(await balanceMinor(stack, b, 'USD')).toBe(5_000);
        const stored = await stack.db.models.WebhookMessage.find({ integrationId: SHOP, state: 'ignored' }).lean();
        expect(
          stored.filter((m) => (m.outcome as { code: string }).code === 'duplicate').length,
        ).toBeGreaterThanOrEqual(4);
      } finally {
        stack.sim.rest.webhookFaults = {};
      }
    },
    LONG,
  );

  it(
    'no webhook at all: polling alone completes the batch',
    async () => {
      const c = await customer(3_000);
      stack.sim.rest.webhookFaults = { none: true };
      try {
        const { id } = await sentBatch([{ id: c, amount: '3.00' }]);
        await stack.sim.rest.process(await paypalBatchOf(id));
        await waitFor('completed by polling', async () => (await getBatch(id)).state === 'completed', LONG);
        expect(await balanceMinor(stack, c, 'USD')).toBe(2_700);
        expect(stack.sim.rest.calls.some((x) => x.operation === 'get_payout')).toBe(true);
      } finally {
        stack.sim.rest.webhookFaults = {};
      }
    },
    LONG,
  );

  it(
    'forged webhooks (a bad signature, a foreign certificate URL) are stored and never applied',
    async () => {
      const c = await customer(3_000);
      const { id, uniqueIds } = await sentBatch([{ id: c, amount: '3.00' }]);
      const ppId = await paypalBatchOf(id);
      const before = await stack.db.models.WebhookMessage.countDocuments({ integrationId: SHOP, state: 'refused' });
      // PayPal paid the item; a forger says it failed (which would give the money back to the customer).
      stack.sim.rest.webhookFaults = { none: true };
      const paid = await stack.sim.rest.process(ppId);
      const forged = paid
        .filter((e) => e.event_type === 'PAYMENT.PAYOUTS-ITEM.SUCCEEDED')
        .map((e) => ({
          ...e,
          id: `${e.id}-F`,
          event_type: 'PAYMENT.PAYOUTS-ITEM.FAILED',
          resource: { ...e.resource, transaction_status: 'FAILED' },
        }));
      stack.sim.rest.webhookFaults = { badSignature: true };
      await stack.sim.rest.resend(APP.clientId, forged);
      stack.sim.rest.webhookFaults = { foreignCertUrl: 'https://evil.example/cert.pem' };
      await stack.sim.rest.resend(APP.clientId, forged);
      stack.sim.rest.webhookFaults = {};
      await waitFor('refused', async () => {
        const n = await stack.db.models.WebhookMessage.countDocuments({ integrationId: SHOP, state: 'refused' });
        return n - before === forged.length * 2;
      });
      const refused = await stack.db.models.WebhookMessage.find({ integrationId: SHOP, state: 'refused' })
        .sort({ _id: -1 })
        .limit(forged.length * 2)
        .lean();
      const codes = new Set(refused.map((m) => (m.outcome as { refusal: { code: string } }).refusal.code));
      expect(codes).toEqual(new Set(['bad_signature', 'cert_url_not_allowed']));
      expect(refused.every((m) => Buffer.from(m.raw.buffer).length > 0)).toBe(true);
      await waitFor('polled', async () => (await itemState(id, uniqueIds[0]!)) === 'Completed', LONG);
      expect(await balanceMinor(stack, c, 'USD')).toBe(2_700);
      expect((await getBatch(id)).items[0]!.released).toBe(false);
    },
    LONG,
  );

  it(
    'an unclaimed item cancelled at PayPal comes back once',
    async () => {
      const c = await customer(8_000);
      stack.sim.rest.payouts.setOutcome(`${c}@example.com`, { status: 'UNCLAIMED' });
      const { id, uniqueIds } = await sentBatch([{ id: c, amount: '50.00' }]);
      await stack.sim.rest.process(await paypalBatchOf(id));
      await waitFor('unclaimed', async () => (await itemState(id, uniqueIds[0]!)) === 'Unclaimed', LONG);
      expect(await balanceMinor(stack, c, 'USD')).toBe(3_000);
      const cancel = () => action(id, `items/${uniqueIds[0]}/cancel-unclaimed`, { operator: 'carol' });
      expect(await cancel()).toMatchObject({ status: 200 });
      expect(await itemState(id, uniqueIds[0]!)).toBe('Returned');
      expect(await balanceMinor(stack, c, 'USD')).toBe(8_000);
      expect(await cancel()).toMatchObject({ status: 409, body: { details: { rule: 'item_state' } } });
      await stack.sim.rest.settled();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await balanceMinor(stack, c, 'USD')).toBe(8_000);
    },
    LONG,
  );
  it(
    'a Mass Pay IPN for the same items (PayPal may send both) reconciles them without a second release',
    async () => {
      const [paid, failed] = [await customer(6_000), await customer(6_000)];
      stack.sim.rest.payouts.setOutcome(`${failed}@example.com`, { status: 'FAILED', error: 'RECEIVER_UNREGISTERED' });
      const { id, uniqueIds } = await sentBatch([
        { id: paid, amount: '10.00' },
        { id: failed, amount: '20.00' },
      ]);
      const ppBatch = stack.sim.rest.payouts.batches.get(await paypalBatchOf(id))!;
      await stack.sim.rest.process(ppBatch.payoutBatchId);
      await waitFor('completed by webhooks', async () => (await getBatch(id)).state === 'completed', LONG);
      const releasesBefore = await stack.db.models.LedgerEntry.countDocuments({ reason: 'payout_release' });
      const item = (i: number, status: string) => {
        const x = i + 1;
        const txn = ppBatch.items[i]!.transactionId ?? `T${uniqueIds[i]}`;
        const gross = ppBatch.items[i]!.value;
        return (
          `&unique_id_${x}=${uniqueIds[i]}&status_${x}=${status}&mc_gross_${x}=${gross}` +
          `&mc_currency_${x}=USD&masspay_txn_id_${x}=${txn}`
        );
      };
      const raw = Buffer.from(
        'txn_type=masspay&payment_status=Completed&test_ipn=1&charset=windows-1252' +
          '&payer_email=payouts%40rest.example.com&verify_sign=x' +
          item(0, 'Completed') +
          item(1, 'Failed'),
        'latin1',
      );
      const msg = await deliverIpn(stack, SHOP, raw);
      expect(msg.state).toBe('masspay_routed');
      await waitFor(
        'IPN applied',
        async () => {
          const doc = await stack.db.models.PayoutBatch.findById(id, { 'snapshot.appliedMessages': 1 }).lean();
          return ((doc?.snapshot as { appliedMessages?: string[] }).appliedMessages ?? []).includes(String(msg._id));
        },
        LONG,
      );
      const batch = await getBatch(id);
      expect(batch.items.map((i) => [i.state, i.released])).toEqual([
        ['Completed', false],
        ['Failed', true],
      ]);
      expect(batch.contradictions).toEqual([]);
      expect(await stack.db.models.LedgerEntry.countDocuments({ reason: 'payout_release' })).toBe(releasesBefore);
      expect(await balanceMinor(stack, paid, 'USD')).toBe(5_000);
      expect(await balanceMinor(stack, failed, 'USD')).toBe(6_000);
    },
    LONG,
  );
});

describe('creation answers once reserved', () => {
  it(
    'two batches for one payee whose balance covers one: the second is a 409 naming the payee, nothing reserved',
    async () => {
      const [payee, other] = [await customer(5_000), await customer(5_000)];
      const first = await stack.admin('POST', '/admin/payouts', {
        integrationId: SHOP,
        currency: 'USD',
        operator: 'alice',
        items: [{ customerId: payee, receiverEmail: `${payee}@example.com`, amount: '40.00' }],
      });
      expect(first).toMatchObject({ status: 201, body: { state: 'created', reserved: true } });
      expect(await balanceMinor(stack, payee, 'USD')).toBe(1_000);
      const second = await stack.admin('POST', '/admin/payouts', {
        integrationId: SHOP,
        currency: 'USD',
        operator: 'alice',
        items: [
          { customerId: other, receiverEmail: `${other}@example.com`, amount: '10.00' },
          { customerId: payee, receiverEmail: `${payee}@example.com`, amount: '20.00' },
        ],
      });
      expect(second.status).toBe(409);
      expect(second.body.error).toContain(payee);
      expect(second.body.details).toMatchObject({ customerIds: [payee] });
      expect(await balanceMinor(stack, payee, 'USD')).toBe(1_000);
      expect(await balanceMinor(stack, other, 'USD')).toBe(5_000);
      // Approved right after its 201: applied, no 409 for a reservation still under way.
      expect(await action(first.body.id, 'approve')).toMatchObject({
        status: 200,
        body: { state: { reserved: true } },
      });
    },
    LONG,
  );

  it(
    'a creation that died between storing and reserving: the workflow reserves by the same keys, ' +
      'withdraws the claim it cannot post, and a cancel releases only what was reserved',
    async () => {
      const [covered, short] = [await customer(5_000), await customer(1_000)];
      // What the route had stored when it died: the batch (not reserved) and its items claiming it.
      const batchId = `PBCRASH${funded}`;
      const now = new Date().toISOString();
      const item = (index: number, customerId: string, amountMinor: number): PayoutItem =>
        newPayoutItem({
          batchId,
          uniqueId: `CRASH${funded}X${index}`,
          index,
          integrationId: SHOP,
          customerId,
          receiverEmail: `${customerId}@example.com`,
          currency: 'USD',
          mode: 'sandbox',
          amountMinor,
        });
      const items = [item(0, covered, 3_000), item(1, short, 2_000)];
      await stack.db.models.PayoutItem.insertMany(items.map((i) => ({ _id: payoutItemId(batchId, i.uniqueId), ...i })));
      const snapshot = initialBatchState({
        id: batchId,
        integrationId: SHOP,
        currency: 'USD',
        mode: 'sandbox',
        createdBy: 'alice',
        createdAt: now,
        note: null,
        itemCount: 2,
        totalMinor: 5_000,
      });
      await stack.db.models.PayoutBatch.create({
        _id: batchId,
        integrationId: SHOP,
        state: 'created',
        currency: 'USD',
        itemCount: 2,
        totalMinor: 5_000,
        createdBy: 'alice',
        snapshot,
      });
      // The first action starts the workflow, which reserves before anything else.
      const approve = await action(batchId, 'approve');
      expect(approve).toMatchObject({ status: 409, body: { details: { rule: 'not_reserved' } } });
      let batch = await getBatch(batchId);
      expect(batch.attention).toContain('reservation_failed');
      expect(batch.items.map((i) => [i.customerId, (i as { reserved?: boolean }).reserved])).toEqual([
        [covered, true],
        [short, false],
      ]);
      expect(await balanceMinor(stack, covered, 'USD')).toBe(2_000);
      expect(await balanceMinor(stack, short, 'USD')).toBe(1_000);
      expect(await action(batchId, 'cancel')).toMatchObject({ status: 200, body: { state: { state: 'cancelled' } } });
      batch = await getBatch(batchId);
      expect(batch.items.map((i) => [i.state, i.released])).toEqual([
        ['Cancelled', true],
        ['Cancelled', false],
      ]);
      expect(await balanceMinor(stack, covered, 'USD')).toBe(5_000);
      expect(await balanceMinor(stack, short, 'USD')).toBe(1_000);
      expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true } });
    },
    LONG,
  );
});
