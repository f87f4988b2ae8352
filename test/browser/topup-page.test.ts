import type { Browser } from 'playwright-core';
import { balanceMinor, createTestStack, type TestStack } from '../support/stack';
import { launchChromium, screenshot, waitForUrlAfterDoubleSubmit } from '../support/browser';
import { buyerAt, entriesOf, newCustomer, ordersShop } from '../support/topups';
import { TopupLinks } from '../../src/topups/links';

/**
 * The hosted top-up page in a real headless Chromium, served by the real stack against the PayPal
 * simulator: open the link, choose an amount, pay on PayPal's page, land on the result with the new
 * balance; then a double click, a reload, two tabs and a replayed return URL, each ending with exactly
 * one ledger entry. Every page is saved to test-output/screenshots/.
 */
let stack: TestStack;
let browser: Browser;
const SHOP = 'pageshop';
const LONG = 120_000;

beforeAll(async () => {
  stack = await createTestStack('topup-page', { TOPUP_POLL_SECONDS: '1' });
  await ordersShop(stack, SHOP);
  browser = await launchChromium();
}, LONG);
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

async function linkFor(customerId: string): Promise<string> {
  const res = await stack.admin('POST', '/admin/topups/links', { integrationId: SHOP, customerId });
  expect(res.status).toBe(201);
  const url = res.body.url as string;
  // Nothing about the customer in the URL but the signed token.
  expect(url).toMatch(new RegExp(`^${stack.baseUrl}/topup/[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]{43}$`));
  return url;
}

const captureCalls = () => stack.sim.rest.calls.filter((c) => c.operation === 'capture_order').length;
const topupsOf = (customerId: string) => stack.db.models.Topup.countDocuments({ customerId });

async function oneCredit(customerId: string, minor: number) {
  const entries = await entriesOf(stack, customerId);
  expect(entries.map((e) => [e.amountMinor, e.reason])).toEqual([[minor, 'payment']]);
  expect(await balanceMinor(stack, customerId, 'USD')).toBe(minor);
}

describe('hosted top-up page in Chromium', () => {
  it(
    'open the link, choose 25.00, pay at PayPal, see the new balance; a reload shows the same, captures nothing more',
    async () => {
      const customer = await newCustomer(stack, 'Ada Lovelace');
      const page = await browser.newPage();
      await page.goto(await linkFor(customer));
      await screenshot(page, '01-topup-page');
      expect(await page.getAttribute('html', 'lang')).toBe('en');
      expect(await page.textContent('h1')).toBe('Top up your account');
      expect(await page.textContent('#customer')).toBe('Ada Lovelace');
      expect(await page.textContent('#balance')).toBe('0.00 USD');
      // Every choice has its label (accessible name), inside a fieldset with a legend.
      expect(await page.getByRole('radio', { name: '25.00 USD' }).count()).toBe(1);
      expect(await page.textContent('legend')).toBe('Amount');
      await page.getByRole('radio', { name: '25.00 USD' }).check();
      await page.click('#pay');
      await page.waitForURL(/\/checkoutnow\?token=/);
      await screenshot(page, '02-paypal-approval');
      expect(await page.textContent('#amount')).toBe('25.00 USD');
      await page.click('#approve');
      await page.waitForURL(/\/topup\/return\?/);
      await screenshot(page, '03-topup-result');
      expect(await page.textContent('h1')).toBe('Top-up complete');
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('credited');
      expect(await page.textContent('#balance')).toBe('25.00 USD');
      // Nothing about the customer in the return URL: the top-up id and PayPal's own parameters.
      expect([...new URL(page.url()).searchParams.keys()].sort()).toEqual(['PayerID', 'token', 'topup']);
      const captured = captureCalls();
      await page.reload();
      await screenshot(page, '04-topup-result-reloaded');
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('credited');
      expect(await page.textContent('#balance')).toBe('25.00 USD');
      expect(captureCalls()).toBe(captured);
      await oneCredit(customer, 2_500);
      await page.close();
    },
    LONG,
  );

  it(
    'a double click on Pay makes one top-up; one capture, one credit',
    async () => {
      const customer = await newCustomer(stack, 'Grace Hopper');
      const page = await browser.newPage();
      await page.goto(await linkFor(customer));
      await page.getByRole('radio', { name: '10.00 USD' }).check();
      await page.dblclick('#pay');
      await waitForUrlAfterDoubleSubmit(page, /\/checkoutnow\?token=/);
      await screenshot(page, '05-double-click-approval');
      await page.click('#approve');
      await page.waitForURL(/\/topup\/return\?/);
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('credited');
      expect(await topupsOf(customer)).toBe(1);
      await oneCredit(customer, 1_000);
      await page.close();
    },
    LONG,
  );

  it(
    'two tabs on the return, then the return URL replayed in a new session: one capture, one credit, the same page',
    async () => {
      const customer = await newCustomer(stack, 'Alan Turing');
      const page = await browser.newPage();
      await page.goto(await linkFor(customer));
      await page.getByRole('radio', { name: '50.00 USD' }).check();
      await page.click('#pay');
      await page.waitForURL(/\/checkoutnow\?token=/);
      // The buyer approves; PayPal's redirect to our return page is opened in two tabs at once.
      const returnUrl = await buyerAt(stack, page.url(), 'approve');
      const before = captureCalls();
      const [a, b] = [await browser.newPage(), await browser.newPage()];
      await Promise.all([a.goto(returnUrl), b.goto(returnUrl)]);
      await screenshot(a, '06-two-tabs-first');
      await screenshot(b, '07-two-tabs-second');
      for (const tab of [a, b]) {
        expect(await tab.getAttribute('#outcome', 'data-phase')).toBe('credited');
        expect(await tab.textContent('#balance')).toBe('50.00 USD');
      }
      expect(captureCalls()).toBe(before + 1);
      const replay = await browser.newContext();
      const again = await replay.newPage();
      await again.goto(returnUrl);
      await screenshot(again, '08-replayed-return');
      expect(await again.getAttribute('#outcome', 'data-phase')).toBe('credited');
      expect(captureCalls()).toBe(before + 1);
      await oneCredit(customer, 5_000);
      await replay.close();
      for (const p of [page, a, b]) await p.close();
    },
    LONG,
  );

  it(
    "the back button after paying: PayPal's page again captures nothing more; the form shows the new balance",
    async () => {
      const customer = await newCustomer(stack, 'Margaret Hamilton');
      const page = await browser.newPage();
      await page.goto(await linkFor(customer));
      await page.getByRole('radio', { name: '25.00 USD' }).check();
      await page.click('#pay');
      await page.waitForURL(/\/checkoutnow\?token=/);
      await page.click('#approve');
      await page.waitForURL(/\/topup\/return\?/);
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('credited');
      const captured = captureCalls();
      // Back to PayPal's page for the order already captured, and "Pay now" once more.
      await page.goBack();
      await page.waitForURL(/\/checkoutnow\?token=/);
      await page.click('#approve');
      await page.waitForURL(/\/topup\/return\?/);
      await screenshot(page, '11-back-button-result');
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('credited');
      expect(await page.textContent('#balance')).toBe('25.00 USD');
      expect(captureCalls()).toBe(captured);
      // Back to our form: it says what the account holds now (a new top-up needs a new approval at PayPal).
      await page.goBack();
      await page.goBack();
      await page.waitForURL(/\/topup\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
      await screenshot(page, '12-back-button-form');
      expect(await page.textContent('#balance')).toBe('25.00 USD');
      expect(await topupsOf(customer)).toBe(1);
      await oneCredit(customer, 2_500);
      await page.close();
    },
    LONG,
  );

  it(
    'cancel at PayPal: a clear page, nothing charged; an expired or forged link: a clear page, no form',
    async () => {
      const customer = await newCustomer(stack, 'Edsger Dijkstra');
      const page = await browser.newPage();
      await page.goto(await linkFor(customer));
      await page.click('#pay');
      await page.waitForURL(/\/checkoutnow\?token=/);
      await page.click('#cancel');
      await page.waitForURL(/\/topup\/cancel\?/);
      await screenshot(page, '09-cancelled');
      expect(await page.getAttribute('#outcome', 'data-phase')).toBe('cancelled');
      expect(await page.textContent('#balance')).toBe('0.00 USD');
      const links = new TopupLinks(stack.config);
      const expired = links.sign({ integrationId: SHOP, customerId: customer, expiresAt: new Date(Date.now() - 1000) });
      const res = await page.goto(`${stack.baseUrl}/topup/${expired}`);
      await screenshot(page, '10-expired-link');
      expect(res?.status()).toBe(410);
      expect(await page.locator('form').count()).toBe(0);
      const forged = `${expired.split('.')[0]}.${'A'.repeat(43)}`;
      expect((await page.goto(`${stack.baseUrl}/topup/${forged}`))?.status()).toBe(404);
      expect(await entriesOf(stack, customer)).toEqual([]);
      await page.close();
    },
    LONG,
  );

  it(
    'a form posted from another site or without its CSRF token is refused; nothing is created',
    async () => {
      const customer = await newCustomer(stack, 'Barbara Liskov');
      const link = await linkFor(customer);
      const token = link.split('/topup/')[1]!;
      const post = (headers: Record<string, string>, body: Record<string, string>) =>
        fetch(`${stack.baseUrl}/topup/${token}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body: new URLSearchParams(body).toString(),
          redirect: 'manual',
        });
      const links = new TopupLinks(stack.config);
      const attempt = 'AAAAAAAAAAAAAAAA';
      const good = { choice: 'USD:1000', attempt, csrf: links.csrf(token, attempt) };
      expect((await post({ origin: 'https://evil.example' }, good)).status).toBe(403);
      expect((await post({ 'sec-fetch-site': 'cross-site' }, good)).status).toBe(403);
      expect((await post({}, { ...good, csrf: 'x'.repeat(43) })).status).toBe(403);
      expect((await post({}, { ...good, choice: 'USD:99999999' })).status).toBe(422);
      expect(await topupsOf(customer)).toBe(0);
      // The same form sent twice: one top-up, the same PayPal page.
      const [first, second] = [await post({}, good), await post({}, good)];
      expect(first.status).toBe(303);
      expect(second.headers.get('location')).toBe(first.headers.get('location'));
      expect(await topupsOf(customer)).toBe(1);
    },
    LONG,
  );
});
