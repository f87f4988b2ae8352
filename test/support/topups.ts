import type { TestStack } from './stack';
import { waitFor } from './stack';

/** A REST app for Orders v2 top-ups on the simulator, and its integration (sandbox, USD, 5..500). */
export const TOPUP_APP = {
  clientId: 'TopupShopClient',
  secret: 'topup-shop-secret',
  webhookId: 'WH-TOPUP-SHOP-0001',
  merchantEmail: 'shop@topups.example.com',
};
export const TOPUP_LIMITS = {
  currencies: ['USD'],
  minMinor: { USD: 500 },
  maxMinor: { USD: 50_000 },
  choicesMinor: { USD: [1_000, 2_500, 5_000] },
};

/** Sets the REST app's credentials in the environment (the integration names their prefix). */
export function topupEnv(prefix = 'PAYPAL_TOPUP_SHOP'): string {
  process.env[`${prefix}_CLIENT_ID`] = TOPUP_APP.clientId;
  process.env[`${prefix}_CLIENT_SECRET`] = TOPUP_APP.secret;
  process.env[`${prefix}_WEBHOOK_ID`] = TOPUP_APP.webhookId;
  return prefix;
}

/** The Orders v2 shop on a stack: the simulator's app posts webhooks and IPNs to it. */
export async function ordersShop(stack: TestStack, shop: string): Promise<void> {
  const prefix = topupEnv();
  stack.sim.rest.addApp({
    ...TOPUP_APP,
    webhookUrl: `${stack.baseUrl}/webhooks/paypal/${shop}`,
    ipnUrl: `${stack.baseUrl}/ipn/${shop}`,
  });
  const put = await stack.admin('PUT', `/admin/integrations/${shop}`, {
    name: 'Top-ups by Orders v2',
    mode: 'sandbox',
    allowedCurrencies: ['USD', 'EUR'],
    receiverEmails: [TOPUP_APP.merchantEmail],
    payoutsRestEnv: prefix,
    topups: TOPUP_LIMITS,
  });
  expect(put.status).toBe(200);
}

let made = 0;
/** A fresh customer (each test its own, so its ledger shows only its own top-ups). */
export async function newCustomer(stack: TestStack, name = 'Top-up Customer'): Promise<string> {
  const id = `tc${++made}-${Date.now().toString(36)}`;
  const put = await stack.admin('PUT', `/admin/customers/${id}`, { name, paypalEmails: [] });
  expect(put.status).toBe(200);
  return id;
}

/** The buyer's click on the simulator's approval page: where PayPal sends the browser next. */
export async function buyerAt(stack: TestStack, approveUrl: string, action: 'approve' | 'cancel'): Promise<string> {
  const token = new URL(approveUrl).searchParams.get('token')!;
  const res = await fetch(`${stack.sim.url}/checkoutnow`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, action }).toString(),
    redirect: 'manual',
  });
  expect(res.status).toBe(303);
  return res.headers.get('location')!;
}

/** The browser following PayPal's redirect to our return (or cancel) page: our answer, not followed. */
export async function follow(url: string): Promise<{ status: number; location: string | null; text: string }> {
  const res = await fetch(url, { redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), text: await res.text() };
}

export async function getTopup(stack: TestStack, id: string) {
  const res = await stack.admin('GET', `/admin/topups/${id}`);
  expect(res.status).toBe(200);
  return res.body as {
    id: string;
    state: string;
    reason: string | null;
    paypal: { orderId?: string; token?: string; captureId: string | null; captureStatus: string | null };
    credit: { entryId: string; amountMinor: number; idempotencyKey: string } | null;
  };
}

export async function topupReaches(stack: TestStack, id: string, state: string, timeoutMs = 60_000) {
  return waitFor(
    `top-up ${id} ${state}`,
    async () => {
      const t = await getTopup(stack, id);
      return t.state === state ? t : undefined;
    },
    timeoutMs,
  );
}

/** Every ledger entry of a customer (the one-credit assertions read it). */
export async function entriesOf(stack: TestStack, customerId: string) {
  return stack.ledger.entries(customerId);
}

/** The payment entity of a capture once it settled the capture's IPN (credited from it, or found it credited). */
export async function paymentCredited(stack: TestStack, integrationId: string, captureId: string) {
  return waitFor(
    `payment ${captureId} credited`,
    async () => {
      const p = await stack.db.models.Payment.findById(`${integrationId}:${captureId}`).lean();
      return p?.state === 'credited' ? p : undefined;
    },
    60_000,
  );
}
