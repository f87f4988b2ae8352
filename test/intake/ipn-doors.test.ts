import net from 'node:net';
import { balanceMinor, createTestStack, sample, waitFor, withFields, type TestStack } from '../support/stack';

/**
 * PayPal's door refuses cheaply (issue 13, finding 6): an unknown integration or a client over its
 * rate is answered before the body is read, slow clients are cut off by short server timeouts, and
 * the rate limit never loses a message: a throttled delivery is not stored and PayPal resends it.
 */
let stack: TestStack;
const SHOP = 'doors';
const POINTS = 6;
const WINDOW_SECONDS = 2;

beforeAll(async () => {
  stack = await createTestStack('ipn-doors', {
    IPN_RATE_LIMIT_POINTS: String(POINTS),
    IPN_RATE_LIMIT_WINDOW_SECONDS: String(WINDOW_SECONDS),
    HTTP_HEADERS_TIMEOUT_MS: '1000',
    HTTP_REQUEST_TIMEOUT_MS: '2000',
    IPN_VERIFY_GIVE_UP_SECONDS: '3',
  });
  const integration = {
    name: 'Doors',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['seller@paypalsandbox.com'],
  };
  expect(await stack.admin('PUT', `/admin/integrations/${SHOP}`, integration)).toMatchObject({ status: 200 });
  const customer = { name: 'Doors', paypalEmails: ['buyer@paypalsandbox.com'] };
  expect(await stack.admin('PUT', '/admin/customers/c-doors', customer)).toMatchObject({ status: 200 });
});
afterAll(() => stack?.close());

interface RawAnswer {
  status: number | null;
  headers: string;
  afterMs: number;
}

/**
 * One request written by hand on a socket, `head` then `body` (which may stop short of the length
 * the head declares): the status line the server answered with and when, or null when it did not
 * answer within `waitMs`. Each test names its own client (X-Forwarded-For), as the proxy would.
 */
function rawRequest(head: string, body: Buffer | string = '', waitMs = 5_000): Promise<RawAnswer> {
  const url = new URL(stack.baseUrl);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(Number(url.port), url.hostname);
    let received = '';
    const done = (status: number | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, headers: received.split('\r\n\r\n')[0] ?? '', afterMs: Date.now() - started });
    };
    const timer = setTimeout(() => done(null), waitMs);
    socket.on('error', (err) => (received ? done(statusOf(received)) : reject(err)));
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n')) done(statusOf(received));
    });
    socket.on('close', () => done(received ? statusOf(received) : null));
    socket.write(head);
    if (body.length > 0) socket.write(body);
  });
}

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

const postHead = (path: string, client: string, length: number) =>
  `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
  `Content-Length: ${length}\r\nX-Forwarded-For: ${client}\r\n\r\n`;

const MEGABYTE = 1024 * 1024;

test('an unknown integration is answered 404 before its body is read', async () => {
  // A megabyte announced, a few bytes sent: only an answer that does not wait for the body comes back.
  const answer = await rawRequest(postHead('/ipn/no-such-integration', '192.0.2.10', MEGABYTE), 'txn_id=1&');
  expect(answer.status).toBe(404);
  expect(answer.afterMs).toBeLessThan(1_500);
  expect(answer.headers).toMatch(/^Connection: close$/im);
});

test('slow clients are cut off (HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS)', async () => {
  const slowHeaders = await rawRequest(`POST /ipn/${SHOP} HTTP/1.1\r\nHost: localhost\r\n`, '', 8_000);
  expect(slowHeaders.status).toBe(408);
  expect(slowHeaders.afterMs).toBeLessThan(4_000);

  // A known integration waits for its body, but not for ever.
  const stalledBody = await rawRequest(postHead(`/ipn/${SHOP}`, '192.0.2.11', MEGABYTE), 'txn_id=1&', 8_000);
  expect(stalledBody.status).toBe(408);
  expect(stalledBody.afterMs).toBeGreaterThanOrEqual(1_500);
  expect(stalledBody.afterMs).toBeLessThan(5_000);
  expect(await stack.db.models.IpnMessage.countDocuments({ integrationId: SHOP })).toBe(0);
});

test('over its rate a client gets 429 with Retry-After before its body is read, and nothing is stored', async () => {
  const client = '192.0.2.12';
  const body = withFields(sample('web_accept_completed_ipn_simulator_01'), { txn_id: 'DOORS-RL-0' });
  const statuses: number[] = [];
  // Small bodies cost a point each: the window's points pass, then every request is refused.
  for (let i = 0; i < POINTS + 2; i++) {
    statuses.push((await rawRequest(postHead(`/ipn/${SHOP}`, client, body.length), body)).status!);
  }
  expect(statuses).toEqual([...Array<number>(POINTS).fill(200), 429, 429]);
  const refused = await rawRequest(postHead(`/ipn/${SHOP}`, client, MEGABYTE), 'txn_id=2&');
  expect(refused.status).toBe(429);
  expect(refused.afterMs).toBeLessThan(1_500);
  const retryAfter = Number(/^Retry-After: (\d+)$/im.exec(refused.headers)?.[1]);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
  // Another client is not held up by this one.
  expect((await rawRequest(postHead(`/ipn/${SHOP}`, '192.0.2.13', body.length), body)).status).toBe(200);
  // Every 200 stored, nothing else.
  expect(await stack.db.models.IpnMessage.countDocuments({ integrationId: SHOP, txnId: 'DOORS-RL-0' })).toBe(
    POINTS + 1,
  );
  // After the window the client is welcome again.
  await new Promise((r) => setTimeout(r, (retryAfter + 0.2) * 1000));
  expect((await rawRequest(postHead(`/ipn/${SHOP}`, client, body.length), body)).status).toBe(200);
});

test('a burst from PayPal over the rate loses nothing: refused deliveries are resent, each credited once', async () => {
  const before = await balanceMinor(stack, 'c-doors', 'USD');
  const txns = Array.from({ length: POINTS + 6 }, (_, i) => `DOORS-BURST-${i}`);
  const deliveries = txns.map((txn) =>
    stack.sim.sendIpn({
      listenerUrl: `${stack.baseUrl}/ipn/${SHOP}`,
      body: withFields(sample('web_accept_completed_ipn_simulator_01'), { txn_id: txn }),
    }),
  );
  const outcomes = await Promise.all(deliveries.map((d) => d.done));
  expect(outcomes.every((o) => o.delivered)).toBe(true);
  const attempts = deliveries.flatMap((d) => d.attempts);
  const statuses = attempts.map((a) => a.status);
  expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(txns.length - POINTS);
  // 200 or 429, or (on a busy machine) an answer slower than the simulator waits: resent, as PayPal does.
  expect(attempts.filter((a) => a.status !== 200 && a.status !== 429 && a.status !== undefined)).toEqual([]);

  await waitFor(
    'every payment credited',
    async () => (await balanceMinor(stack, 'c-doors', 'USD')) === before + 1234 * txns.length,
    60_000,
  );
  // Every payment stored, never for a 429 (only attempts that got no 429 may have been stored: a slow
  // answer's resend is stored again); each payment credited exactly once.
  const stored = await stack.db.models.IpnMessage.find({ integrationId: SHOP, txnId: { $in: txns } }).lean();
  expect(new Set(stored.map((m) => m.txnId)).size).toBe(txns.length);
  expect(stored.length).toBeLessThanOrEqual(statuses.filter((s) => s !== 429).length);
  const entries = await stack.db.models.LedgerEntry.find({ integrationId: SHOP, txnId: { $in: txns } }).lean();
  expect(entries).toHaveLength(txns.length);
});

test('two messages of one payment parked side by side: a decision goes to the message it names', async () => {
  const txn = 'DOORS-PARK';
  const base = sample('web_accept_completed_ipn_simulator_01');
  const genuine = withFields(base, { txn_id: txn, payment_status: 'Pending', pending_reason: 'echeck' });
  const forged = withFields(base, { txn_id: txn, mc_gross: '999.00' });
  // PayPal's postback is down: both give up after IPN_VERIFY_GIVE_UP_SECONDS and park.
  stack.sim.injectFaults(Array.from({ length: 200 }, () => ({ kind: 'status' as const, status: 503 as const })));
  const ids: string[] = [];
  for (const [raw, client] of [
    [genuine, '192.0.2.20'],
    [forged, '192.0.2.21'],
  ] as const) {
    expect((await rawRequest(postHead(`/ipn/${SHOP}`, client, raw.length), raw)).status).toBe(200);
    ids.push(String((await stack.db.models.IpnMessage.findOne({ integrationId: SHOP }).sort({ _id: -1 }).lean())!._id));
  }
  const [genuineId, forgedId] = ids as [string, string];
  const stateOf = async (id: string) => (await stack.db.models.IpnMessage.findById(id).lean())!.state;
  await waitFor(
    'both parked',
    async () => (await stateOf(genuineId)) === 'parked' && (await stateOf(forgedId)) === 'parked',
  );
  stack.sim.clearFaults();

  // Rejecting the forgery (named second) leaves the genuine message parked.
  const decision = { operator: 'ops', reason: 'not from PayPal' };
  expect((await stack.admin('POST', `/admin/messages/${forgedId}/reject`, decision)).status).toBe(202);
  await waitFor('forgery rejected', async () => (await stateOf(forgedId)) === 'rejected_by_operator');
  expect(await stateOf(genuineId)).toBe('parked');

  // PayPal is back: the genuine one, retried by name, verifies and is applied.
  stack.sim.registerMessage(genuine);
  const retry = { operator: 'ops', reason: 'PayPal is back' };
  expect((await stack.admin('POST', `/admin/messages/${genuineId}/retry`, retry)).status).toBe(202);
  await waitFor('genuine applied', async () => (await stateOf(genuineId)).startsWith('applied:'));
});
