import { balanceMinor, createTestStack, type TestStack } from '../support/stack';
import { workflowTaskFailures } from '../support/workflow-task-failures';
import { topupWorkflowId } from '../../src/shared/ids';
import { parseAmount } from '../../src/shared/money';
import {
  buyerAt,
  entriesOf,
  follow,
  getTopup,
  newCustomer,
  paymentCredited,
  TOPUP_LIMITS,
  topupReaches,
} from '../support/topups';

/**
 * Top-ups through Express Checkout over NVP (an integration with only its API signature), on the
 * real stack: SetExpressCheckout → the buyer approves → GetExpressCheckoutDetails →
 * DoExpressCheckoutPayment, whose IPN (express_checkout, same txn_id) reaches the payment entity.
 * A lost answer and 11607 ("already paid for this token") end in one payment and one credit.
 */
let stack: TestStack;
const SHOP = 'ecshop';
const LONG = 120_000;
const PORTAL = 'https://portal.example.com/account';
const CREDS = { username: 'ec_api1.shop.example.com', password: 'EC-SHOP-PWD', signature: 'EcShopSignature0001' };

beforeAll(async () => {
  process.env.PAYPAL_EC_SHOP_USERNAME = CREDS.username;
  process.env.PAYPAL_EC_SHOP_PASSWORD = CREDS.password;
  process.env.PAYPAL_EC_SHOP_SIGNATURE = CREDS.signature;
  stack = await createTestStack('topups-express', { TOPUP_POLL_SECONDS: '1' });
  stack.sim.nvp.credentials = CREDS;
  stack.sim.nvp.express.ipnUrl = `${stack.baseUrl}/ipn/${SHOP}`;
  const put = await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
    name: 'Top-ups by Express Checkout',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: [stack.sim.nvp.express.merchantEmail],
    nvpCredentialsEnv: 'PAYPAL_EC_SHOP',
    feePolicy: 'net',
    topups: { ...TOPUP_LIMITS, api: 'express' },
  });
  expect(put.status).toBe(200);
}, LONG);
afterAll(() => stack?.close());
afterEach(() => {
  const ec = stack.sim.nvp.express;
  ec.staleDetails = 0;
  ec.honorMsgSubId = true;
});

async function create(customerId: string, amount: string) {
  const res = await stack.admin('POST', '/admin/topups', {
    integrationId: SHOP,
    customerId,
    amount,
    currency: 'USD',
    returnUrl: `${PORTAL}/done`,
    cancelUrl: `${PORTAL}/cancelled`,
  });
  expect(res.status).toBe(201);
  return res.body as { id: string; approveUrl: string };
}

const calls = (method: string, token: string) =>
  stack.sim.nvp.calls.filter((c) => c.method === method && c.params.TOKEN === token);
const tokenOf = (approveUrl: string) => new URL(approveUrl).searchParams.get('token')!;

/** One credit: net of PayPal's fee (this integration's policy), keyed by the payment's txn id. */
async function creditedOnce(customerId: string, txnId: string, grossMinor: number) {
  const txn = stack.sim.nvp.express.txns.get(txnId)!;
  const net = grossMinor - parseAmount(txn.fee, 'USD');
  const entries = await entriesOf(stack, customerId);
  expect(entries.map((e) => [e.amountMinor, e.idempotencyKey])).toEqual([[net, `credit:${SHOP}:${txnId}`]]);
  expect(await balanceMinor(stack, customerId, 'USD')).toBe(net);
}

describe('top-ups through Express Checkout (NVP)', () => {
  it(
    'Set, approve, return, Do: credited once (net of the fee); the IPN with the same txn_id finds it credited',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '25.00');
      const token = tokenOf(t.approveUrl);
      expect(t.approveUrl).toBe(`${stack.sim.url}/cgi-bin/webscr?cmd=_express-checkout&token=${token}`);
      expect(stack.sim.nvp.express.tokens.get(token)).toMatchObject({ amount: '25.00', custom: t.id, invnum: t.id });
      // The approval page a browser sees at that address.
      const page = await fetch(t.approveUrl);
      expect([page.status, (await page.text()).includes('25.00 USD')]).toEqual([200, true]);
      const back = await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      expect(back.location).toBe(`${PORTAL}/done?topup=${t.id}`);
      const view = await getTopup(stack, t.id);
      expect(view).toMatchObject({ state: 'credited', paypal: { token, captureStatus: 'COMPLETED' } });
      const txnId = view.paypal.captureId!;
      expect(calls('DoExpressCheckoutPayment', token)).toHaveLength(1);
      expect(calls('DoExpressCheckoutPayment', token)[0]!.params.MSGSUBID).toBe(t.id);
      await paymentCredited(stack, SHOP, txnId);
      await creditedOnce(customer, txnId, 2_500);
      expect(await workflowTaskFailures(stack.client, topupWorkflowId(t.id))).toEqual([]);
    },
    LONG,
  );

  it(
    'a lost DoExpressCheckoutPayment answer, PayPal lagging and ignoring MSGSUBID: 11607, read back, one payment',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '12.00');
      const token = tokenOf(t.approveUrl);
      const ec = stack.sim.nvp.express;
      ec.honorMsgSubId = false;
      // The retry's details still say "not paid" (a lagging replica), so the payment is asked for again.
      ec.staleDetails = 2;
      stack.sim.nvp.faults.push({ kind: 'lost_answer', method: 'DoExpressCheckoutPayment' });
      await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      const view = await topupReaches(stack, t.id, 'credited');
      const dos = calls('DoExpressCheckoutPayment', token);
      expect(dos.map((c) => c.answerLost ?? c.answer.L_ERRORCODE0)).toEqual([true, '11607']);
      expect([...ec.txns.values()].filter((x) => x.token === token)).toHaveLength(1);
      await creditedOnce(customer, view.paypal.captureId!, 1_200);
    },
    LONG,
  );

  it(
    'a lost answer with MSGSUBID honoured: the repeat gets the first answer, one payment',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '9.99');
      const token = tokenOf(t.approveUrl);
      stack.sim.nvp.express.staleDetails = 2;
      stack.sim.nvp.faults.push({ kind: 'lost_answer', method: 'DoExpressCheckoutPayment' });
      await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      const view = await topupReaches(stack, t.id, 'credited');
      const dos = calls('DoExpressCheckoutPayment', token);
      expect(dos.map((c) => [c.answerLost === true, c.answer.PAYMENTINFO_0_TRANSACTIONID])).toEqual([
        [true, view.paypal.captureId],
        [false, view.paypal.captureId],
      ]);
      await creditedOnce(customer, view.paypal.captureId!, 999);
    },
    LONG,
  );

  it(
    'a Pending payment waits; its Completed IPN credits through the payment entity, the top-up sees it, once',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '30.00');
      stack.sim.nvp.express.paymentOutcomes.push('Pending');
      await follow(await buyerAt(stack, t.approveUrl, 'approve'));
      const pending = await getTopup(stack, t.id);
      expect(pending).toMatchObject({ state: 'pending', credit: null });
      expect(await entriesOf(stack, customer)).toEqual([]);
      stack.sim.nvp.express.settle(pending.paypal.captureId!, 'Completed');
      expect(await paymentCredited(stack, SHOP, pending.paypal.captureId!)).toMatchObject({ customerId: customer });
      await topupReaches(stack, t.id, 'credited');
      await creditedOnce(customer, pending.paypal.captureId!, 3_000);
    },
    LONG,
  );

  it(
    'the buyer cancels: cancelled, no payment asked for',
    async () => {
      const customer = await newCustomer(stack);
      const t = await create(customer, '25.00');
      const back = await follow(await buyerAt(stack, t.approveUrl, 'cancel'));
      expect(back.location).toBe(`${PORTAL}/cancelled?topup=${t.id}`);
      expect(await getTopup(stack, t.id)).toMatchObject({ state: 'cancelled', reason: 'buyer_cancelled' });
      expect(calls('DoExpressCheckoutPayment', tokenOf(t.approveUrl))).toHaveLength(0);
      expect(await entriesOf(stack, customer)).toEqual([]);
    },
    LONG,
  );
});
