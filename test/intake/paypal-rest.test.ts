import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startPayPalSimulator, type PayPalSimulator } from '../../tools/paypal-sim';
import { PayPalRestClient, PayPalRestError, restUrl } from '../../src/shared/paypal/rest-client';
import { certUrlAllowed, createCertCache, verifyWebhookSignature } from '../../src/webhooks/signature';

/** The REST client and the webhook signature check against the simulator's OAuth, Payouts and signed webhooks. */

interface Received {
  body: Buffer;
  headers: Record<string, string | undefined>;
}

let sim: PayPalSimulator;
let hook: http.Server;
let hookUrl: string;
const received: Received[] = [];
const APP = { clientId: 'AcmeClient', secret: 'acme-secret', webhookId: 'WH-0SIMULATED0001' };

beforeAll(async () => {
  sim = await startPayPalSimulator();
  hook = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks), headers: req.headers as Record<string, string | undefined> });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/webhooks/paypal/acme`;
  sim.rest.addApp({ ...APP, webhookUrl: hookUrl });
});

afterAll(async () => {
  await sim.close();
  await new Promise((resolve) => hook.close(resolve));
});

beforeEach(() => {
  received.length = 0;
  sim.rest.webhookFaults = {};
});

const item = (i: number, receiver = `payee${i}@example.com`) => ({
  recipient_type: 'EMAIL',
  receiver,
  amount: { value: '1.50', currency: 'USD' },
  sender_item_id: `item-${i}`,
});

const client = () => new PayPalRestClient(sim.url, APP);

describe('PayPal REST client', () => {
  it('live always goes to PayPal’s own host; sandbox to the configured one', () => {
    expect(restUrl('live', 'http://127.0.0.1:1')).toBe('https://api-m.paypal.com');
    expect(restUrl('sandbox', 'http://127.0.0.1:1/')).toBe('http://127.0.0.1:1');
  });

  it('fetches one token for many calls, and renews it once after PayPal revokes it', async () => {
    const c = client();
    const before = sim.rest.oauth.issued.get(APP.clientId) ?? 0;
    const created = await c.request<{ batch_header: { payout_batch_id: string } }>('POST', '/v1/payments/payouts', {
      body: { sender_batch_header: { sender_batch_id: 'tok-1' }, items: [item(1)] },
      context: 'create',
    });
    const id = created.body.batch_header.payout_batch_id;
    await Promise.all([1, 2, 3].map(() => c.request('GET', `/v1/payments/payouts/${id}`, { context: 'get' })));
    expect(sim.rest.oauth.issued.get(APP.clientId)! - before).toBe(1);
    sim.rest.oauth.expireAllTokens();
    await c.request('GET', `/v1/payments/payouts/${id}`, { context: 'get' });
    expect(sim.rest.oauth.issued.get(APP.clientId)! - before).toBe(2);
  });

  it('a wrong secret is PayPal’s invalid_client, not retryable', async () => {
    const bad = new PayPalRestClient(sim.url, { ...APP, secret: 'wrong' });
    const err = await bad.request('GET', '/v1/payments/payouts/X', { context: 'get' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayPalRestError);
    expect(err).toMatchObject({ status: 401, errorName: 'invalid_client', retryable: false });
    expect(String((err as Error).message)).not.toContain('wrong');
  });

  it('a sender_batch_id used before is USER_BUSINESS_ERROR on SENDER_BATCH_ID; nothing new is created', async () => {
    const c = client();
    const body = { sender_batch_header: { sender_batch_id: 'dup-1' }, items: [item(1)] };
    await c.request('POST', '/v1/payments/payouts', { body, context: 'create' });
    const count = sim.rest.payouts.batches.size;
    const err = await c.request('POST', '/v1/payments/payouts', { body, context: 'create' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, errorName: 'USER_BUSINESS_ERROR' });
    expect((err as PayPalRestError).details[0]?.field).toBe('SENDER_BATCH_ID');
    expect(sim.rest.payouts.batches.size).toBe(count);
  });

  it('one bad item refuses the whole batch, naming the item; more than 15,000 items are refused', async () => {
    const c = client();
    const bad = { sender_batch_header: { sender_batch_id: 'val-1' }, items: [item(0), item(1, 'not-an-email')] };
    const err = await c.request('POST', '/v1/payments/payouts', { body: bad, context: 'create' }).catch((e) => e);
    expect(err).toMatchObject({ status: 400, errorName: 'VALIDATION_ERROR' });
    expect((err as PayPalRestError).details.map((d) => d.field)).toEqual(['items[1].receiver']);
    const many = {
      sender_batch_header: { sender_batch_id: 'val-2' },
      items: [...Array(15_001).keys()].map((i) => item(i)),
    };
    const tooMany = await c.request('POST', '/v1/payments/payouts', { body: many, context: 'c' }).catch((e) => e);
    expect(tooMany).toMatchObject({ status: 400, errorName: 'VALIDATION_ERROR' });
    expect([...sim.rest.payouts.batches.values()].some((b) => b.senderBatchId.startsWith('val-'))).toBe(false);
  });

  it('a lost answer: the batch exists at PayPal though the caller saw an error; a 5xx creates nothing', async () => {
    const c = client();
    sim.rest.injectFaults([{ kind: 'lost_answer', on: 'create_payout' }]);
    const body = { sender_batch_header: { sender_batch_id: 'lost-1' }, items: [item(1)] };
    await expect(c.request('POST', '/v1/payments/payouts', { body, context: 'create' })).rejects.toThrow();
    expect([...sim.rest.payouts.batches.values()].filter((b) => b.senderBatchId === 'lost-1')).toHaveLength(1);
    sim.rest.injectFaults([{ kind: 'status', status: 503, on: 'create_payout' }]);
    const body2 = { sender_batch_header: { sender_batch_id: 'five-1' }, items: [item(1)] };
    const err = await c.request('POST', '/v1/payments/payouts', { body: body2, context: 'create' }).catch((e) => e);
    expect(err).toMatchObject({ status: 503, retryable: true });
    expect([...sim.rest.payouts.batches.values()].filter((b) => b.senderBatchId === 'five-1')).toHaveLength(0);
  });
});

describe('webhook signatures', () => {
  const certs = createCertCache();
  const verifyReceived = (r: Received, opts: { production?: boolean; webhookId?: string } = {}) =>
    verifyWebhookSignature({
      rawBody: r.body,
      headers: r.headers,
      webhookId: opts.webhookId ?? APP.webhookId,
      mode: 'sandbox',
      production: opts.production ?? false,
      sandboxRestUrl: sim.url,
      certs,
    });

  async function processedBatch(senderBatchId: string): Promise<void> {
    const created = await client().request<{ batch_header: { payout_batch_id: string } }>(
      'POST',
      '/v1/payments/payouts',
      { body: { sender_batch_header: { sender_batch_id: senderBatchId }, items: [item(1), item(2)] }, context: 'c' },
    );
    await sim.rest.process(created.body.batch_header.payout_batch_id);
  }

  it('signed events verify over the exact raw bytes, and fail for other bytes or another webhook id', async () => {
    await processedBatch('sig-1');
    expect(received.map((r) => JSON.parse(r.body.toString()).event_type)).toEqual([
      'PAYMENT.PAYOUTSBATCH.PROCESSING',
      'PAYMENT.PAYOUTS-ITEM.SUCCEEDED',
      'PAYMENT.PAYOUTS-ITEM.SUCCEEDED',
      'PAYMENT.PAYOUTSBATCH.SUCCESS',
    ]);
    for (const r of received) expect(await verifyReceived(r)).toEqual({ ok: true });
    const first = received[0]!;
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(first.body.toString()), null, 1));
    expect(await verifyReceived({ ...first, body: reserialised })).toEqual({
      ok: false,
      refusal: { code: 'bad_signature' },
    });
    expect(await verifyReceived(first, { webhookId: 'WH-SOMEONE-ELSE' })).toMatchObject({
      refusal: { code: 'bad_signature' },
    });
  });

  it('refused: a forged signature, a foreign certificate URL, the simulator in production', async () => {
    sim.rest.webhookFaults = { badSignature: true };
    await processedBatch('sig-2');
    expect(await verifyReceived(received[0]!)).toMatchObject({ refusal: { code: 'bad_signature' } });
    received.length = 0;
    sim.rest.webhookFaults = { foreignCertUrl: 'https://evil.example/cert.pem' };
    await processedBatch('sig-3');
    expect(await verifyReceived(received[0]!)).toMatchObject({ refusal: { code: 'cert_url_not_allowed' } });
    received.length = 0;
    sim.rest.webhookFaults = {};
    await processedBatch('sig-4');
    expect(await verifyReceived(received[0]!, { production: true })).toMatchObject({
      refusal: { code: 'cert_url_not_allowed' },
    });
    const missing = { ...received[0]!, headers: { ...received[0]!.headers, 'paypal-transmission-sig': undefined } };
    expect(await verifyReceived(missing)).toMatchObject({ refusal: { code: 'missing_headers' } });
  });

  it('the allow-list: PayPal’s HTTPS API hosts for each mode, nothing else', () => {
    const opts = { production: true, sandboxRestUrl: 'https://api-m.sandbox.paypal.com' };
    expect(certUrlAllowed('https://api-m.paypal.com/v1/notifications/certs/CERT-1', 'live', opts)).toBe(true);
    expect(certUrlAllowed('https://api.sandbox.paypal.com/v1/notifications/certs/C', 'sandbox', opts)).toBe(true);
    for (const bad of [
      'http://api-m.paypal.com/cert',
      'https://api-m.paypal.com.evil.example/cert',
      'https://api-m.paypal.com:8443/cert',
      'https://user@api-m.paypal.com/cert',
      'https://api-m.sandbox.paypal.com/cert',
      'not a url',
    ]) {
      expect([bad, certUrlAllowed(bad, 'live', opts)]).toEqual([bad, false]);
    }
    expect(
      certUrlAllowed('http://127.0.0.1:9/c', 'live', { production: false, sandboxRestUrl: 'http://127.0.0.1:9' }),
    ).toBe(false);
  });

  it('duplicate and reversed deliveries carry the same event ids', async () => {
    sim.rest.webhookFaults = { duplicate: true, reverse: true };
    await processedBatch('sig-5');
    const ids = received.map((r) => JSON.parse(r.body.toString()).id as string);
    expect(ids).toHaveLength(8);
    expect(new Set(ids).size).toBe(4);
    expect(JSON.parse(received[0]!.body.toString()).event_type).toBe('PAYMENT.PAYOUTSBATCH.SUCCESS');
  });
});
