import type { Browser } from 'playwright-core';
import { balanceMinor, createTestStack, type TestStack } from '../support/stack';
import { launchChromium, screenshot, waitForUrlAfterDoubleSubmit } from '../support/browser';
import { entriesOf, newCustomer, TOPUP_LIMITS } from '../support/topups';

/**
 * The hosted top-up page for an integration with only its NVP API signature: the same page, paid
 * through Express Checkout (SetExpressCheckout → PayPal's webscr page → DoExpressCheckoutPayment), in
 * a real headless Chromium against the simulator, whose express_checkout IPN for the same txn_id races
 * the return. Each case ends with exactly one ledger entry.
 */
let stack: TestStack;
let browser: Browser;
const SHOP = 'ecpageshop';
const LONG = 120_000;
const CREDS = { username: 'ecpage_api1.shop.example.com', password: 'EC-PAGE-PWD', signature: 'EcPageSignature0001' };

beforeAll(async () => {
  process.env.PAYPAL_EC_PAGE_USERNAME = CREDS.username;
  process.env.PAYPAL_EC_PAGE_PASSWORD = CREDS.password;
  process.env.PAYPAL_EC_PAGE_SIGNATURE = CREDS.signature;
  stack = await createTestStack('topup-page-express', { TOPUP_POLL_SECONDS: '1' });
  stack.sim.nvp.credentials = CREDS;
  stack.sim.nvp.express.ipnUrl = `${stack.baseUrl}/ipn/${SHOP}`;
  const put = await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
    name: 'Hosted page by Express Checkout',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: [stack.sim.nvp.express.merchantEmail],
    nvpCredentialsEnv: 'PAYPAL_EC_PAGE',
    // The customer is credited what they paid; PayPal's fee is the merchant's (feePolicy gross).
    feePolicy: 'gross',
    topups: { ...TOPUP_LIMITS, api: 'express' },
  });
  expect(put.status).toBe(200);
  browser = await launchChromium();
}, LONG);
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

async function linkFor(customerId: string): Promise<string> {
  const res = await stack.admin('POST', '/admin/topups/links', { integrationId: SHOP, customerId });
  expect(res.status).toBe(201);
  return res.body.url as string;
}

const paymentCalls = () => stack.sim.nvp.calls.filter((c) => c.method === 'DoExpressCheckoutPayment').length;

async function oneCredit(customerId: string, minor: number) {
  const entries = await entriesOf(stack, customerId);
  expect(entries.map((e) => [e.amountMinor, e.reason])).toEqual([[minor, 'payment']]);
  expect(await balanceMinor(stack, customerId, 'USD')).toBe(minor);
}

describe('hosted top-up page through Express Checkout, in Chromium', () => {
  it(
    "choose 25.00, pay on PayPal's Express Checkout page, see the balance; reload and a replayed return change nothing",
    async () => {
      const customer = await newCustomer(stack, 'Katherine Johnson');
      const page = await browser.newPage();
      await page.goto(await linkFor(customer));
      expect(await page.textContent('#customer')).toBe('Katherine Johnson');
      expect(await page.textContent('#balance')).toBe('0.00 USD');
      await page.getByRole('radio', { name: '25.00 USD' }).check();
      await page.dblclick('#pay');
      // Express Checkout's approval: PayPal's webscr page with an EC- token, not an Orders v2 checkout.
      await waitForUrlAfterDoubleSubmit(page, /\/cgi-bin\/webscr\?cmd=_express-checkout&token=EC-/);
      await screenshot(page, '21-express-approval');
      expect(await page.textContent('#amount')).toBe('25.00 USD');
      await page.click('#approve');
      await page.waitForURL(/\/topup\/return\?/);
      await screenshot(page, '22-express-result');
      expect(await page.textContent('h1')).toBe('Top-up complete');
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('credited');
      expect(await page.textContent('#balance')).toBe('25.00 USD');
      const paid = paymentCalls();
      expect(paid).toBe(1);
      const returnUrl = page.url();
      await page.reload();
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('credited');
      const replay = await browser.newContext();
      const again = await replay.newPage();
      await again.goto(returnUrl);
      await screenshot(again, '23-express-replayed-return');
      expect(await again.getAttribute('#outcome', 'data-phase')).toBe('credited');
      expect(await again.textContent('#balance')).toBe('25.00 USD');
      expect(paymentCalls()).toBe(paid);
      await oneCredit(customer, 2_500);
      await replay.close();
      await page.close();
    },
    LONG,
  );

  it(
    "cancel on PayPal's Express Checkout page: a clear page, nothing paid or credited",
    async () => {
      const customer = await newCustomer(stack, 'Dorothy Vaughan');
      const page = await browser.newPage();
      await page.goto(await linkFor(customer));
      await page.click('#pay');
      await page.waitForURL(/\/cgi-bin\/webscr\?cmd=_express-checkout&token=EC-/);
      const before = paymentCalls();
      await page.click('#cancel');
      await page.waitForURL(/\/topup\/cancel\?/);
      await screenshot(page, '24-express-cancelled');
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('cancelled');
      expect(await page.textContent('#balance')).toBe('0.00 USD');
      expect(paymentCalls()).toBe(before);
      expect(await entriesOf(stack, customer)).toEqual([]);
      await page.close();
    },
    LONG,
  );
});
