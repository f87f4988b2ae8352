import { balanceMinor, createTestStack, waitFor, type TestStack } from '../support/stack';
import { workflowTaskFailures } from '../support/workflow-task-failures';
import { topupWorkflowId } from '../../src/shared/ids';
import {
  buyerAt,
  entriesOf,
  follow,
  getTopup,
  newCustomer,
  ordersShop,
  paymentCredited,
  topupReaches,
} from '../support/topups';
import { createTopup } from '../../src/topups/service';
import { topupStateQuery } from '../../src/topups/contract';
import { newTopupId } from '../../src/topups/links';

/**
 * Customer top-ups through Orders v2 on the real stack, PayPal simulated: the return page, the IPN
 * (to the payment entity keyed by the capture id), the webhook and the workflow's own poll may each
 * get to a COMPLETED capture first; every test ends with exactly one ledger entry (or none) and the
 * exact balance.
 */
let stack: TestStack;
const SHOP = 'topshop';
const LONG = 120_000;
const PORTAL = 'https://portal.example.com/account';

beforeAll(async () => {
  stack = await createTestStack('topups', { TOPUP_POLL_SECONDS: '1', TOPUP_EXPIRY_SECONDS: '6' });
  await ordersShop(stack, SHOP);
}, LONG);
afterAll(() => stack?.close());
afterEach(() => {
  stack.sim.rest.checkoutNotify = { ipn: true, webhook: true };
});

async function create(customerId: string, amount = '25.00') {
  const res = await stack.admin('POST', '/admin/topups', {
    integrationId: SHOP,
    customerId,
    amount,
    currency: 'USD',
    returnUrl: `${PORTAL}/topped-up`,
    cancelUrl: `${PORTAL}/cancelled`,
  });
  expect(res.status).toBe(201);
  return res.body as { id: string; approveUrl: string; expiresAt: string };
}

/** Exactly one credit, of `minor`, keyed by the capture, and the balance it makes. */
async function creditedOnce(customerId: string, captureId: string, minor: number) {
  const entries = await entriesOf(stack, customerId);
  expect(entries.map((e) => [e.amountMinor, e.idempotencyKey])).toEqual([[minor, `credit:${SHOP}:${captureId}`]]);
  expect(await balanceMinor(stack, customerId, 'USD')).toBe(minor);
}

const paypalCaptured = (orderId: string) => (stack.sim.rest.orders.orders.get(orderId)?.capture ? 1 : 0);

describe('top-ups through Orders v2', () => {
  it(
    'create, approve, return: credited once; the IPN and the webhook that follow find it credited',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer);
      expect(t.id).toMatch(/^tu_[a-z0-9]{20}$/);
      expect(new URL(t.approveUrl).origin).toBe(stack.sim.url);
      const order = stack.sim.rest.orders.orders.get(new URL(t.approveUrl).searchParams.get('token')!)!;
      expect(order).toMatchObject({ customId: t.id, value: '25.00', currency: 'USD' });
      const back = await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      // An API top-up goes back to the portal, naming the top-up; by then it is credited.
      expect(back.status).toBe(303);
      expect(back.location).toBe(`${PORTAL}/topped-up?topup=${t.id}`);
      const view = await getTopup(stack, t.id);
      expect(view).toMatchObject({ state: 'credited', paypal: { orderId: order.id, captureStatus: 'COMPLETED' } });
      const captureId = view.paypal.captureId!;
      expect(view.credit).toMatchObject({ amountMinor: 2_500, idempotencyKey: `credit:${SHOP}:${captureId}` });
      // The capture's IPN reaches the payment entity of that capture id: same key, nothing more.
      await paymentCredited(stack, SHOP, captureId);
      await waitFor('webhook settled', async () =>
        (
          await stack.db.models.WebhookMessage.find({
            integrationId: SHOP,
            eventType: 'PAYMENT.CAPTURE.COMPLETED',
          }).lean()
        ).some((m) => m.state === 'applied'),
      );
      await creditedOnce(customer, captureId, 2_500);
      expect(await workflowTaskFailures(stack.client, topupWorkflowId(t.id))).toEqual([]);
    },
    LONG,
  );

  it(
    'bad input: 400 or 422 naming the field, nothing created',
    async () => {
      const customer = await newCustomer(stack);
      const before = await stack.db.models.Topup.countDocuments({});
      const base = {
        integrationId: SHOP,
        customerId: customer,
        amount: '25.00',
        currency: 'USD',
        returnUrl: PORTAL,
        cancelUrl: PORTAL,
      };
      const cases: Array<[Record<string, unknown>, number, string]> = [
        [{ ...base, amount: '25,00' }, 400, 'amount'],
        [{ ...base, returnUrl: 'javascript:alert(1)' }, 400, 'returnUrl'],
        [{ ...base, currency: 'usd' }, 400, 'currency'],
        [{ ...base, amount: '4.99' }, 422, 'amount'],
        [{ ...base, amount: '500.01' }, 422, 'amount'],
        [{ ...base, amount: '1.234' }, 400, 'amount'],
        [{ ...base, currency: 'EUR' }, 422, 'currency'],
        [{ ...base, customerId: 'nobody-here' }, 422, 'customerId'],
        [{ ...base, integrationId: 'no-such-shop' }, 422, 'integrationId'],
      ];
      for (const [body, status, field] of cases) {
        const res = await stack.admin('POST', '/admin/topups', body);
        expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), status]);
        const named = JSON.stringify(res.body);
        expect(named).toContain(field);
      }
      expect(await stack.db.models.Topup.countDocuments({})).toBe(before);
      expect(await entriesOf(stack, customer)).toEqual([]);
    },
    LONG,
  );

  it(
    'the IPN and the webhook before the capture answer: one credit, whichever of the entity and the return posts first',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '40.00');
      stack.sim.rest.injectFaults([{ kind: 'notify_first', on: 'capture_order' }]);
      const back = await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      expect(back.status).toBe(303);
      const view = await topupReaches(stack, t.id, 'credited');
      await paymentCredited(stack, SHOP, view.paypal.captureId!);
      await creditedOnce(customer, view.paypal.captureId!, 4_000);
    },
    LONG,
  );

  it(
    'a reload, a double click and two tabs on the return: one capture, one credit, the same answer each time',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '10.00');
      const orderId = new URL(t.approveUrl).searchParams.get('token')!;
      const returnUrl = await buyerAt(stack, t.approveUrl, 'approve');
      const answers = await Promise.all([follow(returnUrl), follow(returnUrl), follow(returnUrl)]);
      expect(answers.map((a) => a.location)).toEqual(Array(3).fill(`${PORTAL}/topped-up?topup=${t.id}`));
      const replayed = await follow(returnUrl);
      expect(replayed.location).toBe(`${PORTAL}/topped-up?topup=${t.id}`);
      const view = await topupReaches(stack, t.id, 'credited');
      const asked = stack.sim.rest.calls.filter(
        (c) => c.operation === 'capture_order' && c.requestId === `${t.id}:capture`,
      );
      expect(asked).toHaveLength(1);
      expect(paypalCaptured(orderId)).toBe(1);
      await creditedOnce(customer, view.paypal.captureId!, 1_000);
    },
    LONG,
  );

  it(
    'a lost capture answer: asked again with the same request id, PayPal answers the first capture',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '12.34');
      stack.sim.rest.injectFaults([{ kind: 'lost_answer', on: 'capture_order' }]);
      await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      const view = await topupReaches(stack, t.id, 'credited');
      const asked = stack.sim.rest.calls.filter(
        (c) => c.operation === 'capture_order' && c.requestId === `${t.id}:capture`,
      );
      expect(asked.length).toBeGreaterThanOrEqual(2);
      expect(asked[0]!.fault).toBe('lost_answer');
      await creditedOnce(customer, view.paypal.captureId!, 1_234);
    },
    LONG,
  );

  it(
    'captured behind our back (a second capture elsewhere): ORDER_ALREADY_CAPTURED, read back, credited once',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '15.00');
      const orderId = new URL(t.approveUrl).searchParams.get('token')!;
      const returnUrl = await buyerAt(stack, t.approveUrl, 'approve');
      stack.sim.rest.checkoutNotify = { ipn: false, webhook: false };
      const app = stack.sim.rest.oauth.app('TopupShopClient')!;
      stack.sim.rest.orders.capture(app, orderId, 'someone-else');
      await follow(returnUrl);
      const view = await topupReaches(stack, t.id, 'credited');
      const answered = stack.sim.rest.calls.filter(
        (c) => c.operation === 'capture_order' && c.requestId === `${t.id}:capture`,
      );
      expect(answered.map((c) => c.status)).toEqual([422]);
      await creditedOnce(customer, view.paypal.captureId!, 1_500);
    },
    LONG,
  );

  it(
    'a PENDING capture waits; the IPN that completes it credits through the payment entity, once',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '30.00');
      stack.sim.rest.orders.captureOutcomes.push('PENDING');
      stack.sim.rest.checkoutNotify = { ipn: true, webhook: false };
      await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      const pending = await getTopup(stack, t.id);
      expect(pending).toMatchObject({ state: 'pending', credit: null, paypal: { captureStatus: 'PENDING' } });
      const captureId = pending.paypal.captureId!;
      // The pending capture's IPN credits nothing.
      await waitFor(
        'pending IPN settled',
        async () => (await stack.db.models.Payment.findById(`${SHOP}:${captureId}`).lean())?.state === 'pending',
      );
      expect(await entriesOf(stack, customer)).toEqual([]);
      await stack.sim.rest.settleCapture(captureId, 'COMPLETED');
      // The IPN's custom is the top-up id: the entity credits the top-up's customer, under the same key.
      expect(await paymentCredited(stack, SHOP, captureId)).toMatchObject({ customerId: customer });
      await topupReaches(stack, t.id, 'credited');
      await creditedOnce(customer, captureId, 3_000);
    },
    LONG,
  );

  it(
    'the buyer approves and closes the tab: the workflow captures by itself; the webhook alone tells the rest',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '20.00');
      stack.sim.rest.checkoutNotify = { ipn: false, webhook: true };
      await buyerAt(stack, t.approveUrl, 'approve'); // never comes back
      const view = await topupReaches(stack, t.id, 'credited');
      await creditedOnce(customer, view.paypal.captureId!, 2_000);
    },
    LONG,
  );

  it(
    'the buyer cancels: cancelled, nothing captured; a return after it captures nothing',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '25.00');
      const orderId = new URL(t.approveUrl).searchParams.get('token')!;
      const cancel = await follow(await buyerAt(stack, t.approveUrl, 'cancel'));
      expect(cancel.location).toBe(`${PORTAL}/cancelled?topup=${t.id}`);
      expect(await getTopup(stack, t.id)).toMatchObject({ state: 'cancelled', reason: 'buyer_cancelled' });
      // A forged or replayed return afterwards: the top-up is over.
      await follow(`${stack.baseUrl}/topup/return?topup=${t.id}&token=${orderId}&PayerID=X`);
      expect(await getTopup(stack, t.id)).toMatchObject({ state: 'cancelled', credit: null });
      expect(paypalCaptured(orderId)).toBe(0);
      // Once its workflow is gone (closed after its linger; here: terminated), a return reads what it ended as.
      await stack.client.workflow.getHandle(topupWorkflowId(t.id)).terminate('test: closed');
      const afterClose = await follow(`${stack.baseUrl}/topup/return?topup=${t.id}&token=${orderId}&PayerID=X`);
      expect([afterClose.status, afterClose.location]).toEqual([303, `${PORTAL}/topped-up?topup=${t.id}`]);
      expect(await getTopup(stack, t.id)).toMatchObject({ state: 'cancelled', credit: null });
      expect(await entriesOf(stack, customer)).toEqual([]);
      expect(await balanceMinor(stack, customer, 'USD')).toBe(0);
    },
    LONG,
  );

  it(
    'PayPal reports another payee than the integration: held for a person in /admin/held, nothing credited',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '25.00');
      const app = stack.sim.rest.oauth.app('TopupShopClient')!;
      const merchant = app.merchantEmail;
      app.merchantEmail = 'someone-else@example.com';
      try {
        await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      } finally {
        app.merchantEmail = merchant;
      }
      expect(await getTopup(stack, t.id)).toMatchObject({ state: 'held', reason: 'payee_mismatch', credit: null });
      const held = await stack.admin('GET', '/admin/held');
      expect(held.body.topups.map((h: { _id: string }) => h._id)).toContain(t.id);
      // Its IPN (to another receiver) is held by the payment entity too: no money moved.
      const captureId = (await getTopup(stack, t.id)).paypal.captureId!;
      await waitFor(
        'the IPN held',
        async () => (await stack.db.models.Payment.findById(`${SHOP}:${captureId}`).lean())?.state === 'held',
      );
      expect(await entriesOf(stack, customer)).toEqual([]);
    },
    LONG,
  );

  it(
    'never approved: expired after its window, visibly; nothing captured or credited',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '25.00');
      const orderId = new URL(t.approveUrl).searchParams.get('token')!;
      const view = await topupReaches(stack, t.id, 'expired', 30_000);
      expect(view.reason).toBe('not_approved_in_time');
      // A return after the window (a replayed URL): still expired, a clear page, no capture.
      const late = await follow(`${stack.baseUrl}/topup/return?topup=${t.id}&token=${orderId}&PayerID=X`);
      expect(late.status).toBe(303);
      expect(await getTopup(stack, t.id)).toMatchObject({ state: 'expired', credit: null });
      expect(paypalCaptured(orderId)).toBe(0);
      expect(await entriesOf(stack, customer)).toEqual([]);
    },
    LONG,
  );

  it(
    'asked again for a top-up whose workflow is gone (its request died after the order): started, credited once',
    async () => {
      const customer = await newCustomer(stack, 'Crash Survivor');
      const deps = { models: stack.db.models, client: stack.client, config: stack.config };
      const req = {
        ...{ integrationId: SHOP, customerId: customer, amount: '12.00', currency: 'USD' },
        ...{ returnUrl: `${PORTAL}/topped-up`, cancelUrl: `${PORTAL}/cancelled` },
      };
      const opts = { id: newTopupId(), baseUrl: stack.baseUrl, createdBy: 'test' };
      const first = await createTopup(deps, req, opts);
      // What a crash between PayPal's order and the workflow's start leaves: the order, no workflow running
      // (terminated once its first task is done: a task cut short by a termination is recorded as failed).
      const handle = stack.client.workflow.getHandle(topupWorkflowId(first.id));
      // Its handlers are set once its state is loaded (its first task): a query answers from then on.
      await waitFor('the first task done', () =>
        handle.query(topupStateQuery).then(
          (state) => !!state,
          () => false,
        ),
      );
      await handle.terminate('a crash before the start');
      // The same request again (the hosted page's second POST of one attempt names the same top-up).
      const again = await createTopup(deps, req, opts);
      expect(again.approveUrl).toBe(first.approveUrl);
      const back = await follow(await buyerAt(stack, first.approveUrl, 'approve'));
      expect(back.status).toBe(303);
      const view = await topupReaches(stack, first.id, 'credited');
      await creditedOnce(customer, view.paypal.captureId!, 1_200);
    },
    LONG,
  );
});
