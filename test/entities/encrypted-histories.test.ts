import crypto from 'node:crypto';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { paymentWorkflowId } from '../../src/shared/ids';
import { AesGcmCodec, parseCodecKeys } from '../../src/shared/temporal/codec';
import { createTestStack, deliverIpn, sample, withFields, type TestStack } from '../support/stack';

/** Every string in a history, and every byte value read as UTF-8 text (base64 strings and byte arrays alike). */
function stringsIn(value: unknown): string[] {
  if (typeof value === 'string')
    return /^[A-Za-z0-9+/]+=*$/.test(value) ? [value, Buffer.from(value, 'base64').toString('utf8')] : [value];
  if (value instanceof Uint8Array) return [Buffer.from(value).toString('utf8')];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}

/** Payloads in workflow histories are AES-256-GCM encrypted once TEMPORAL_CODEC_KEYS is set. */
let stack: TestStack;
const SHOP = 'enc';
const TXN = 'ENC-TXN-0001';
const EMAIL = 'very-private-payer@example.com';
const UI = 'http://localhost:8233';
const k1 = crypto.randomBytes(32).toString('hex');

beforeAll(async () => {
  stack = await createTestStack('encrypted-histories', { TEMPORAL_CODEC_KEYS: `k1:${k1}`, TEMPORAL_UI_ORIGINS: UI });
  expect(
    await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
      name: 'Encrypted shop',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
    }),
  ).toMatchObject({ status: 200 });
});
afterAll(() => stack?.close());

test('a payer email and the raw IPN body never appear in clear in a history; the codec server decodes', async () => {
  const raw = withFields(sample('web_accept_completed_ipn_simulator_01'), {
    txn_id: TXN,
    payer_email: encodeURIComponent(EMAIL),
  });
  const msg = await deliverIpn(stack, SHOP, raw);
  expect(msg.state).toBe('applied:held');
  // Read the history as the Web UI does without a codec: plain Temporal, no keys.
  const plain = new Client({ connection: stack.client.connection, namespace: stack.config.TEMPORAL_NAMESPACE });
  const workflowIds = [paymentWorkflowId(SHOP, TXN), msg.workflowId!].filter((v, i, a) => a.indexOf(v) === i);
  const texts: string[] = [];
  for (const id of workflowIds) texts.push(...stringsIn(await plain.workflow.getHandle(id).fetchHistory()));
  const all = texts.join('\n');
  // Payloads are the codec's (search attributes stay plain: Temporal indexes them; they hold ids, no PII),
  // and no byte string (payload data, metadata) read as text holds a secret.
  expect(all).toContain('binary/encrypted');
  for (const secret of [EMAIL, encodeURIComponent(EMAIL), 'very-private-payer', raw.toString('latin1').slice(0, 40)])
    expect([secret, all.includes(secret)]).toEqual([secret, false]);
  // Through the codec (the client the API and worker use) the workflow reads as usual.
  const state = await stack.client.workflow.getHandle(paymentWorkflowId(SHOP, TXN)).query<{ phase: string }>('state');
  expect(state.phase).toBe('held');

  // The codec server gives an operator the clear payload; without a key, nothing.
  const history = await plain.workflow.getHandle(paymentWorkflowId(SHOP, TXN)).fetchHistory();
  const payloads = history
    .events!.flatMap((e) => e.workflowExecutionStartedEventAttributes?.input?.payloads ?? [])
    .map((p) => ({
      metadata: Object.fromEntries(
        Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
      ),
      data: Buffer.from(p.data ?? []).toString('base64'),
    }));
  expect(payloads.length).toBeGreaterThan(0);
  const decode = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${stack.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: UI, ...headers },
      body: JSON.stringify({ payloads }),
    });
  expect((await decode('/codec/decode')).status).toBe(401);
  expect((await decode('/codec/ipk.nobody.xxxxxxxx/decode')).status).toBe(401);
  const viewer = await stack.operators.get('ivy', 'viewer');
  for (const res of [
    await decode(`/codec/${viewer.apiKey}/decode`),
    await decode('/codec/decode', { authorization: `Bearer ${viewer.apiKey}` }),
  ]) {
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    const body = (await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    const clear = body.payloads.map((p) => Buffer.from(p.data, 'base64').toString('utf8')).join('\n');
    expect(clear.length).toBeGreaterThan(0);
    expect(Buffer.from(body.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
  }
  const preflight = await fetch(`${stack.baseUrl}/codec/decode`, { method: 'OPTIONS', headers: { origin: UI } });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
});

test('rotation: a new current key still reads payloads of the old one; plain payloads pass through', async () => {
  const k2 = crypto.randomBytes(32).toString('hex');
  const before = new AesGcmCodec(parseCodecKeys(`k1:${k1}`)!);
  const after = new AesGcmCodec(parseCodecKeys(`k1:${k1},k2:${k2}`, 'k2')!);
  const payload = defaultPayloadConverter.toPayload({ email: EMAIL })!;
  const [old] = await before.encode([payload]);
  const [fresh] = await after.encode([payload]);
  expect(Buffer.from(old!.metadata!['encryption-key-id']!).toString()).toBe('k1');
  expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe('k2');
  for (const p of [old!, fresh!])
    expect(defaultPayloadConverter.fromPayload((await after.decode([p]))[0]!)).toEqual({ email: EMAIL });
  // Without k2 a k2 payload cannot be read (and says why); a plain payload is left as it is.
  await expect(before.decode([fresh!])).rejects.toThrow(/key "k2"/);
  expect(await after.decode([payload])).toEqual([payload]);
});
