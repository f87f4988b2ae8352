import { createTestStack, type TestStack } from '../support/stack';

/**
 * The webhook door's limit (src/webhooks/door-limit.ts): what it can store is stored and answered 200,
 * however much of it comes; only POSTs it refuses unstored (unknown integration, too large, not JSON)
 * count, and an address past its allowance is answered 429 until the window passes.
 */
let stack: TestStack;
const SHOP = 'door';
const WINDOW_SECONDS = 2;

beforeAll(async () => {
  stack = await createTestStack('webhook-door-limit', {
    WEBHOOK_REFUSED_POINTS: '3',
    WEBHOOK_REFUSED_WINDOW_SECONDS: String(WINDOW_SECONDS),
  });
  const put = await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
    name: 'Webhook door',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['door@example.com'],
  });
  expect(put.status).toBe(200);
}, 120_000);
afterAll(() => stack?.close());

const post = (integrationId: string, body: string, contentType = 'application/json') =>
  fetch(`${stack.baseUrl}/webhooks/paypal/${integrationId}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
const stored = () => stack.db.models.WebhookMessage.countDocuments({ integrationId: SHOP });

test('stored webhooks never count; refused ones do, and past the allowance the address gets 429', async () => {
  const before = await stored();
  // Twenty unsigned bodies for a known integration: each stored (then refused for its signature), 200.
  const junk = await Promise.all(
    Array.from({ length: 20 }, (_, i) => post(SHOP, JSON.stringify({ id: `J${i}`, event_type: 'X', resource: {} }))),
  );
  expect(junk.map((r) => r.status)).toEqual(Array(20).fill(200));
  expect((await stored()) - before).toBe(20);

  // Refused unstored: an unknown integration, a body over the cap, a body that is not JSON.
  expect((await post('nobody', '{}')).status).toBe(404);
  expect((await post(SHOP, 'x'.repeat(70 * 1024))).status).toBe(413);
  expect((await post(SHOP, 'a=b', 'application/x-www-form-urlencoded')).status).toBe(415);
  // Over the allowance (3 in the window): 429 with Retry-After, nothing looked up or stored.
  const limited = await post('nobody', '{}');
  expect(limited.status).toBe(429);
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  const blockedStore = await post(SHOP, JSON.stringify({ id: 'late', event_type: 'X', resource: {} }));
  expect(blockedStore.status).toBe(429);
  expect((await stored()) - before).toBe(20);

  // Once the window has passed, the address is heard again and its webhook stored.
  await new Promise((r) => setTimeout(r, WINDOW_SECONDS * 1000 + 300));
  const again = await post(SHOP, JSON.stringify({ id: 'again', event_type: 'X', resource: {} }));
  expect(again.status).toBe(200);
  expect((await stored()) - before).toBe(21);
});
