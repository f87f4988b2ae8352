import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_RESEND_SCHEDULE_MS,
  FATAL_FAILURE_BODY,
  MAX_DELIVERIES,
  PAYPAL_IPN_USER_AGENT,
  RESEND_WINDOW_MS,
  startPayPalSimulator,
  withResendFlag,
  type PayPalSimulator,
} from '../../tools/paypal-sim';
import { sample } from '../support/samples';

const PREFIX = Buffer.from('cmd=_notify-validate&', 'latin1');
const withPrefix = (raw: Buffer): Buffer => Buffer.concat([PREFIX, raw]);

/** Tiny enough that the whole default schedule (~69.5 h of delays) runs in well under a second. */
const FAST = 1e-6;

interface Received {
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

interface Listener {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** A real HTTP listener answering each delivery with the next status (the last one repeats); 'hang' never answers. */
async function startListener(statuses: Array<number | 'hang'>): Promise<Listener> {
  const received: Received[] = [];
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks), headers: req.headers });
      const next = statuses[Math.min(received.length - 1, statuses.length - 1)] ?? 200;
      if (next === 'hang') return;
      res.writeHead(next).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ipn/demo`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function postback(
  sim: PayPalSimulator,
  body: Buffer,
): Promise<{ status: number; text: string; contentType: string | null }> {
  const res = await fetch(sim.verifyUrl, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': 'ipnflow-test/1.0' },
  });
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
}

/** The classic listener bug: decode every field, then re-encode it with encodeURIComponent. */
function reencode(raw: Buffer, charset: 'latin1' | 'utf8'): Buffer {
  const decodeField = (s: string): string => {
    const bytes: number[] = [];
    for (let i = 0; i < s.length; i++) {
      const ch = s[i];
      if (ch === '+') bytes.push(0x20);
      else if (ch === '%') {
        bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(s.charCodeAt(i));
    }
    return Buffer.from(bytes).toString(charset);
  };
  const text = raw
    .toString('latin1')
    .split('&')
    .map((field) => {
      const eq = field.indexOf('=');
      const [key, value] = [field.slice(0, eq), field.slice(eq + 1)].map((part) =>
        encodeURIComponent(decodeField(part)),
      );
      return `${key}=${value}`;
    })
    .join('&');
  return Buffer.from(text, 'latin1');
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function sim(opts: Parameters<typeof startPayPalSimulator>[0] = {}): Promise<PayPalSimulator> {
  const s = await startPayPalSimulator(opts);
  cleanups.push(() => s.close());
  return s;
}

async function listener(statuses: Array<number | 'hang'>): Promise<Listener> {
  const l = await startListener(statuses);
  cleanups.push(() => l.close());
  return l;
}

describe('verification postback', () => {
  const names = [
    'web_accept_completed_01',
    'cart_completed_eur_windows1252_01',
    'express_checkout_completed_windows1252_01',
    'mp_notification_billing_agreement_shift_jis_01',
    'recurring_payment_failed_utf8_01',
    'masspay_completed_01',
  ];

  it.each(names)('delivers %s byte-exact, as PayPal does, and VERIFIES those exact bytes', async (name) => {
    const s = await sim();
    const l = await listener([200]);
    const raw = sample(name);
    const delivery = s.sendIpn({ listenerUrl: l.url, body: raw });
    await expect(delivery.done).resolves.toEqual({ delivered: true, attempts: 1 });

    const got = l.received[0];
    expect(l.received).toHaveLength(1);
    expect(got?.body.equals(raw)).toBe(true);
    expect(got?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(got?.headers['user-agent']).toBe(PAYPAL_IPN_USER_AGENT);

    const answer = await postback(s, withPrefix(got?.body ?? Buffer.alloc(0)));
    expect(answer).toEqual({ status: 200, text: 'VERIFIED', contentType: expect.stringMatching(/^text\/plain/) });
    expect(s.postbacks).toHaveLength(1);
    expect(s.postbacks[0]).toMatchObject({ answer: 'VERIFIED', status: 200, userAgent: 'ipnflow-test/1.0' });
    expect(s.postbacks[0]?.body.equals(withPrefix(raw))).toBe(true);
  });

  it('answers INVALID for bytes PayPal never sent, and registerMessage makes them verifiable', async () => {
    const s = await sim();
    const raw = sample('subscr_signup_01');
    expect((await postback(s, withPrefix(raw))).text).toBe('INVALID');
    s.registerMessage(raw);
    expect((await postback(s, withPrefix(raw))).text).toBe('VERIFIED');
  });

  it.each([
    ['web_accept_completed_01', 'latin1'],
    ['cart_completed_eur_windows1252_01', 'latin1'],
    ['express_checkout_completed_windows1252_01', 'latin1'],
    ['mp_notification_billing_agreement_shift_jis_01', 'utf8'],
    ['recurring_payment_failed_utf8_01', 'utf8'],
  ] as const)('answers INVALID for a decoded and re-encoded %s', async (name, charset) => {
    const s = await sim();
    const raw = sample(name);
    s.registerMessage(raw);
    const reencoded = reencode(raw, charset);
    // Same fields and values, different bytes (`+` -> %20, %F6 -> %C3%B6, @ -> %40): the classic bug.
    expect(reencoded.equals(raw)).toBe(false);
    expect(await postback(s, withPrefix(reencoded))).toMatchObject({ status: 200, text: 'INVALID' });
  });

  it(
    'answers INVALID without the cmd prefix, with a ' + 'tampered amount, with extra bytes or a misplaced cmd',
    async () => {
      const s = await sim();
      const raw = sample('web_accept_completed_01');
      s.registerMessage(raw);
      const tampered = Buffer.from(raw.toString('latin1').replace('mc_gross=500.00', 'mc_gross=5000.00'), 'latin1');
      expect(tampered.equals(raw)).toBe(false);
      const cases = [
        raw,
        withPrefix(tampered),
        Buffer.concat([withPrefix(raw), Buffer.from('\n')]),
        Buffer.concat([raw, Buffer.from('&cmd=_notify-validate')]),
        Buffer.from('cmd=_notify-validate&'),
        Buffer.from('cmd=_notify-validate'),
      ];
      for (const body of cases) {
        expect((await postback(s, body)).text).toBe('INVALID');
      }
      expect((await postback(s, withPrefix(raw))).text).toBe('VERIFIED');
      expect(s.postbacks.map((p) => p.answer)).toEqual([...cases.map(() => 'INVALID'), 'VERIFIED']);
    },
  );

  it('refuses GET on the postback endpoint', async () => {
    const s = await sim();
    const res = await fetch(s.verifyUrl);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});

describe('postback faults (FIFO, one per request)', () => {
  it('applies delay, status, html, fatal and drop in order, then answers normally', async () => {
    const s = await sim();
    const raw = sample('cart_completed_eur_windows1252_01');
    s.registerMessage(raw);
    const body = withPrefix(raw);
    s.injectFaults([
      { kind: 'delay', ms: 150 },
      { kind: 'status', status: 500 },
      { kind: 'status', status: 502 },
      { kind: 'status', status: 503 },
      { kind: 'html' },
      { kind: 'fatal' },
      { kind: 'drop' },
    ]);
    expect(s.pendingFaults).toHaveLength(7);

    const t0 = Date.now();
    expect(await postback(s, body)).toMatchObject({ status: 200, text: 'VERIFIED' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);

    for (const status of [500, 502, 503]) {
      const r = await postback(s, body);
      expect(r.status).toBe(status);
      expect(r.contentType).toMatch(/^text\/html/);
      expect(r.text).toContain('<html');
      expect(r.text).not.toMatch(/^(VERIFIED|INVALID)$/);
    }

    const html = await postback(s, body);
    expect(html.status).toBe(200);
    expect(html.contentType).toMatch(/^text\/html/);
    expect(html.text).toContain('<html');
    expect(html.text.trim()).not.toBe('VERIFIED');

    expect(await postback(s, body)).toMatchObject({ status: 200, text: FATAL_FAILURE_BODY });
    expect(FATAL_FAILURE_BODY).toBe('Fatal Failure<br>');

    await expect(postback(s, body)).rejects.toThrow();

    expect(s.pendingFaults).toHaveLength(0);
    expect(await postback(s, body)).toMatchObject({ status: 200, text: 'VERIFIED' });

    expect(s.postbacks.map((p) => [p.status, p.fault])).toEqual([
      [200, 'delay'],
      [500, 'status'],
      [502, 'status'],
      [503, 'status'],
      [200, 'html'],
      [200, 'fatal'],
      [0, 'drop'],
      [200, undefined],
    ]);
    expect(s.postbacks[6]?.answer).toBe('');
  });

  it('clearFaults empties the queue; invalid faults are rejected with context', async () => {
    const s = await sim();
    const raw = sample('web_accept_completed_01');
    s.registerMessage(raw);
    s.injectFaults([{ kind: 'fatal' }, { kind: 'drop' }]);
    s.clearFaults();
    expect(s.pendingFaults).toEqual([]);
    expect((await postback(s, withPrefix(raw))).text).toBe('VERIFIED');
    expect(() => s.injectFaults([{ kind: 'status', status: 404 as 500 }])).toThrow(/status must be 500, 502 or 503/);
    expect(s.pendingFaults).toEqual([]);
  });
});

describe('IPN delivery and resends', () => {
  it(
    'resends after two 500s, with resend=true on the ' + '2nd and 3rd deliveries, and the resent bytes verify',
    async () => {
      const s = await sim({ timeScale: FAST });
      const l = await listener([500, 500, 200]);
      const raw = sample('web_accept_pending_unilateral_windows1252_01');
      const delivery = s.sendIpn({ listenerUrl: l.url, body: raw });
      await expect(delivery.done).resolves.toEqual({ delivered: true, attempts: 3 });
      expect(delivery.state).toBe('delivered');
      expect(delivery.attempts.map((a) => a.status)).toEqual([500, 500, 200]);

      const resent = Buffer.concat([raw, Buffer.from('&resend=true')]);
      expect(l.received.map((r) => r.body.equals(raw))).toEqual([true, false, false]);
      expect(l.received[1]?.body.equals(resent)).toBe(true);
      expect(l.received[2]?.body.equals(resent)).toBe(true);
      expect(delivery.attempts[2]?.body.equals(resent)).toBe(true);

      expect((await postback(s, withPrefix(resent))).text).toBe('VERIFIED');
      expect((await postback(s, withPrefix(raw))).text).toBe('VERIFIED');
    },
  );

  it('makes exactly 16 deliveries to a listener that never answers 200, then gives up', async () => {
    const s = await sim({ timeScale: FAST });
    const l = await listener([503]);
    const raw = sample('express_checkout_completed_01');
    const delivery = s.sendIpn({ listenerUrl: l.url, body: raw });
    await expect(delivery.done).resolves.toEqual({ delivered: false, attempts: MAX_DELIVERIES });
    expect(MAX_DELIVERIES).toBe(16);
    expect(l.received).toHaveLength(16);
    expect(delivery.state).toBe('failed');
    expect(delivery.nextAttemptAt).toBeUndefined();
    const resendCount = (b: Buffer): number =>
      b
        .toString('latin1')
        .split('&')
        .filter((f) => f === 'resend=true').length;
    expect(l.received.map((r) => resendCount(r.body))).toEqual([0, ...Array<number>(15).fill(1)]);
    // Nothing after giving up.
    await new Promise((r) => setTimeout(r, 50));
    expect(l.received).toHaveLength(16);
  });

  it('counts connection errors as failures and retries them too', async () => {
    const s = await sim({ timeScale: FAST });
    const closed = await startListener([200]);
    await closed.close();
    const delivery = s.sendIpn({ listenerUrl: closed.url, body: sample('subscr_cancel_01') });
    await expect(delivery.done).resolves.toEqual({ delivered: false, attempts: 16 });
    expect(delivery.attempts.every((a) => a.status === undefined && /ECONNREFUSED/.test(a.error ?? ''))).toBe(true);
    expect(delivery.attempts[0]?.error).toContain(closed.url);
  });

  it('times out a listener that never answers and resends', async () => {
    const s = await sim({ resendScheduleMs: [5], attemptTimeoutMs: 100 });
    const l = await listener(['hang', 200]);
    const delivery = s.sendIpn({ listenerUrl: l.url, body: sample('subscr_signup_01') });
    await expect(delivery.done).resolves.toEqual({ delivered: true, attempts: 2 });
    expect(delivery.attempts[0]?.error).toMatch(/did not answer within 100 ms/);
    expect(delivery.attempts[0]?.durationMs).toBeGreaterThanOrEqual(90);
    expect(delivery.attempts[1]?.status).toBe(200);
  });

  it('does not add a second resend=true to a body that already carries it', () => {
    const raw = Buffer.from('txn_id=ABC&resend=true&mc_gross=1.00');
    expect(withResendFlag(raw).equals(raw)).toBe(true);
    const plain = Buffer.from('txn_id=ABC&not_resend=true');
    expect(withResendFlag(plain).toString()).toBe('txn_id=ABC&not_resend=true&resend=true');
  });

  it('cancel() stops pending resends; close() cancels the rest', async () => {
    const s = await sim({ resendScheduleMs: [60_000] });
    const l = await listener([500]);
    const a = s.sendIpn({ listenerUrl: l.url, body: sample('web_accept_completed_01') });
    const b = s.sendIpn({ listenerUrl: l.url, body: sample('cart_completed_01') });
    await waitFor(() => a.nextAttemptAt !== undefined && b.nextAttemptAt !== undefined);
    a.cancel();
    await expect(a.done).resolves.toEqual({ delivered: false, attempts: 1 });
    expect(a.state).toBe('cancelled');
    await s.close();
    await expect(b.done).resolves.toEqual({ delivered: false, attempts: 1 });
    expect(s.deliveries.map((d) => d.state)).toEqual(['cancelled', 'cancelled']);
  });

  it('uses PayPal’s documented schedule by default and rejects impossible ones', async () => {
    expect(DEFAULT_RESEND_SCHEDULE_MS).toHaveLength(15);
    expect(DEFAULT_RESEND_SCHEDULE_MS.slice(0, 4)).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(Math.max(...DEFAULT_RESEND_SCHEDULE_MS)).toBe(24 * 3600 * 1000);
    expect(DEFAULT_RESEND_SCHEDULE_MS.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(RESEND_WINDOW_MS);
    await expect(startPayPalSimulator({ resendScheduleMs: Array<number>(16).fill(1) })).rejects.toThrow(
      /at most 16 deliveries/,
    );
    await expect(startPayPalSimulator({ resendScheduleMs: [RESEND_WINDOW_MS, 1] })).rejects.toThrow(/4 days/);
    await expect(startPayPalSimulator({ resendScheduleMs: [-1] })).rejects.toThrow(/resendScheduleMs\[0\]/);
    await expect(startPayPalSimulator({ timeScale: 0 })).rejects.toThrow(/timeScale/);
    const s = await sim();
    expect(() => s.sendIpn({ listenerUrl: 'ftp://example.com/ipn', body: Buffer.from('a=b') })).toThrow(
      /http or https/,
    );
    expect(() => s.sendIpn({ listenerUrl: 'http://127.0.0.1:1/ipn', body: Buffer.alloc(0) })).toThrow(/empty/);
  });
});

describe('control API', () => {
  async function call(
    s: PayPalSimulator,
    method: string,
    p: string,
    body?: unknown,
  ): Promise<{ status: number; json: any }> {
    const res = await fetch(`${s.url}${p}`, {
      method,
      ...(body === undefined
        ? {}
        : {
            body: typeof body === 'string' ? body : JSON.stringify(body),
            headers: { 'Content-Type': 'application/json' },
          }),
    });
    return { status: res.status, json: await res.json() };
  }

  it('starts a delivery from base64 bytes and reports its state', async () => {
    const s = await sim({ timeScale: FAST });
    const l = await listener([500, 200]);
    const raw = sample('cart_completed_eur_windows1252_01');
    const started = await call(s, 'POST', '/sim/ipn', { listenerUrl: l.url, bodyBase64: raw.toString('base64') });
    expect(started.status).toBe(202);
    expect(started.json.id).toMatch(/^dlv_/);

    let state: any;
    await waitFor(async () => {
      state = (await call(s, 'GET', `/sim/deliveries/${started.json.id}`)).json;
      return state.state !== 'pending';
    });
    expect(state).toMatchObject({ id: started.json.id, state: 'delivered', delivered: true, listenerUrl: l.url });
    expect(state.attempts.map((a: any) => [a.n, a.status, a.resend])).toEqual([
      [1, 500, false],
      [2, 200, true],
    ]);
    expect(Buffer.from(state.attempts[0].bodyBase64, 'base64').equals(raw)).toBe(true);
    expect(l.received[0]?.body.equals(raw)).toBe(true);

    expect((await call(s, 'GET', '/sim/deliveries/dlv_nope')).status).toBe(404);
    expect((await call(s, 'GET', '/sim/deliveries')).json.deliveries).toHaveLength(1);
  });

  it('registers messages, queues faults and summarises postbacks', async () => {
    const s = await sim();
    const raw = sample('mp_notification_billing_agreement_shift_jis_01');
    const reg = await call(s, 'POST', '/sim/messages', { bodyBase64: raw.toString('base64') });
    expect(reg).toEqual({ status: 201, json: { registered: true, bytes: raw.length } });
    const faults = await call(s, 'POST', '/sim/faults', { faults: [{ kind: 'status', status: 503 }] });
    expect(faults).toEqual({ status: 200, json: { pending: [{ kind: 'status', status: 503 }] } });

    expect((await postback(s, withPrefix(raw))).status).toBe(503);
    expect((await postback(s, withPrefix(raw))).text).toBe('VERIFIED');
    expect((await postback(s, raw)).text).toBe('INVALID');

    const summary = await call(s, 'GET', '/sim/postbacks');
    expect(summary.status).toBe(200);
    expect(summary.json).toMatchObject({
      total: 3,
      byAnswer: { VERIFIED: 1, INVALID: 1, '(fault:status)': 1 },
      pendingFaults: 0,
    });
    expect(summary.json.recent.map((p: any) => p.status)).toEqual([503, 200, 200]);

    await call(s, 'POST', '/sim/faults', { faults: [{ kind: 'drop' }] });
    expect(await call(s, 'DELETE', '/sim/faults')).toEqual({ status: 200, json: { cleared: 1 } });
  });

  it.each([
    ['POST', '/sim/ipn', { bodyBase64: 'YT1i' }, /listenerUrl/],
    ['POST', '/sim/ipn', { listenerUrl: 'ftp://x/ipn', bodyBase64: 'YT1i' }, /http\(s\) URL/],
    ['POST', '/sim/ipn', { listenerUrl: 'http://127.0.0.1:1/ipn', body: 'a=b' }, /bodyBase64/],
    ['POST', '/sim/ipn', { listenerUrl: 'http://127.0.0.1:1/ipn', bodyBase64: 'not base64!' }, /base64/],
    ['POST', '/sim/ipn', { listenerUrl: 'http://127.0.0.1:1/ipn', bodyBase64: '' }, /must not be empty/],
    ['POST', '/sim/ipn', '{"listenerUrl":', /not valid JSON/],
    ['POST', '/sim/messages', { bodyBase64: 'YT1i', extra: 1 }, /Unrecognized key/],
    ['POST', '/sim/faults', { faults: [] }, /at least one fault/],
    ['POST', '/sim/faults', { faults: [{ kind: 'status', status: 404 }] }, /500, 502 or 503/],
    ['POST', '/sim/faults', { faults: [{ kind: 'explode' }] }, /fault kind must be one of/],
    ['POST', '/sim/faults', { faults: [{ kind: 'delay' }] }, /ms/],
  ])('%s %s rejects %j with a clear 400', async (method, p, body, message) => {
    const s = await sim();
    const res = await call(s, method, p, body);
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(message);
    expect(s.deliveries).toHaveLength(0);
    expect(s.pendingFaults).toHaveLength(0);
  });

  it('answers 404 for unknown routes and 405 (with Allow) for wrong methods', async () => {
    const s = await sim();
    expect((await call(s, 'GET', '/sim/nothing')).status).toBe(404);
    const res = await fetch(`${s.url}/sim/ipn`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect((await call(s, 'GET', '/sim/health')).json).toEqual({ ok: true, url: s.url, verifyUrl: s.verifyUrl });
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('MassPay NVP method', () => {
  const CREDS = { username: 'mp_api1.example.com', password: 'pw', signature: 'sig' };
  async function masspaySim() {
    const s = await sim({ timeScale: FAST });
    s.nvp.credentials = CREDS;
    return s;
  }
  async function call(s: PayPalSimulator, params: Record<string, string>, creds = CREDS) {
    const res = await fetch(s.nvpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        USER: creds.username,
        PWD: creds.password,
        SIGNATURE: creds.signature,
        VERSION: '204.0',
        METHOD: 'MassPay',
        ...params,
      }).toString(),
    });
    return { status: res.status, fields: Object.fromEntries(new URLSearchParams(await res.text())) };
  }
  const items = (n: number, prefix = 'U', email = (i: number) => `p${i}@example.com`) =>
    Object.fromEntries(
      Array.from({ length: n }, (_, i) => [
        [`L_EMAIL${i}`, email(i)],
        [`L_AMT${i}`, '1.00'],
        [`L_UNIQUEID${i}`, `${prefix}${i}`],
      ]).flat(),
    ) as Record<string, string>;
  const base = { RECEIVERTYPE: 'EmailAddress', CURRENCYCODE: 'USD', EMAILSUBJECT: 'Payment' };

  test("PayPal's refusals: limits, missing fields, currency, credentials; nothing is paid", async () => {
    const s = await masspaySim();
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ ...base, ...items(251) }, '10004', /greater than maximum allowed/],
      [{ ...base }, '10004', /less than or equal to zero/],
      [{ ...base, CURRENCYCODE: '', ...items(1) }, '10004', /currency is missing/],
      [{ ...base, CURRENCYCODE: 'XYZ', ...items(1) }, '10004', /Currency is not supported/],
      [{ ...base, ...items(1), L_AMT0: '' }, '10004', /amount is missing/],
      [{ ...base, ...items(1), L_AMT0: '1.005' }, '10004', /not a valid number/],
      [{ ...base, CURRENCYCODE: 'JPY', ...items(1), L_AMT0: '1.50' }, '10004', /not a valid number/],
      [{ ...base, ...items(1), L_AMT0: '0.00' }, '10004', /less than or equal to zero/],
      [{ ...base, ...items(1), L_EMAIL0: 'nobody' }, '10004', /receiver email/],
      [{ ...base, ...items(1), L_UNIQUEID0: 'x'.repeat(31) }, '10004', /maximum limit of 30/],
      [{ ...base, RECEIVERTYPE: 'UserID', ...items(1) }, '10001', /receiver_type/],
      [{ ...base, ...items(2), L_UNIQUEID1: 'U0' }, '8331', /already used/],
    ];
    for (const [params, code, long] of cases) {
      const { fields } = await call(s, params);
      expect({ ack: fields.ACK, code: fields.L_ERRORCODE0, long: fields.L_LONGMESSAGE0 }).toEqual({
        ack: 'Failure',
        code,
        long: expect.stringMatching(long),
      });
    }
    const { fields } = await call(s, { ...base, ...items(1) }, { ...CREDS, password: 'wrong' });
    expect(fields).toMatchObject({ ACK: 'Failure', L_ERRORCODE0: '10002' });
    expect(s.nvp.masspay.payments).toEqual([]);
    expect(s.nvp.calls).toHaveLength(cases.length + 1);
  });

  test('250 items pass; a repeated unique id for the account is refused as a duplicate, never paid twice', async () => {
    const s = await masspaySim();
    const ok = await call(s, { ...base, ...items(250) });
    expect(ok.fields).toMatchObject({ ACK: 'Success', CORRELATIONID: expect.stringMatching(/^[0-9a-f]{12}$/) });
    const again = await call(s, { ...base, ...items(1, 'V'), L_UNIQUEID0: 'U7' });
    expect(again.fields).toMatchObject({ ACK: 'Failure', L_ERRORCODE0: '8331' });
    expect(s.nvp.masspay.payments.map((p) => p.items.length)).toEqual([250]);
    expect(s.nvp.masspay.paidUniqueIds.get(CREDS.username)?.size).toBe(250);
  });

  test('a lost answer: the call is paid, the caller sees a 500, the repeat is a duplicate', async () => {
    const s = await masspaySim();
    s.nvp.faults.push({ kind: 'lost_answer' });
    expect((await call(s, { ...base, ...items(2) })).status).toBe(500);
    expect((await call(s, { ...base, ...items(2) })).fields).toMatchObject({ ACK: 'Failure', L_ERRORCODE0: '8331' });
    expect(s.nvp.masspay.payments).toHaveLength(1);
    expect(s.nvp.calls.map((c) => [c.answer.ACK, c.answerLost ?? false])).toEqual([
      ['Success', true],
      ['Failure', false],
    ]);
  });

  test('after Success: Processed then Completed IPNs shaped like the samples, verified by the postback', async () => {
    const s = await masspaySim();
    const l = await listener([200]);
    s.nvp.masspay.settings = {
      listenerUrl: l.url,
      payerEmail: 'payer@example.com',
      processedDelayMs: 5,
      completedDelayMs: 5,
    };
    const emails = ['ok@example.com', 'fail-x@example.com', 'unclaimed-y@example.com'];
    expect((await call(s, { ...base, ...items(3, 'W', (i) => emails[i]!) })).fields.ACK).toBe('Success');
    const deadline = Date.now() + 5000;
    while (l.received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await s.nvp.settled();
    const [processed, completed] = l.received.map((r) => Object.fromEntries(new URLSearchParams(r.body.toString())));
    const txn = processed!.masspay_txn_id_1;
    expect(processed).toMatchObject({
      txn_type: 'masspay',
      payment_status: 'Processed',
      payer_email: 'payer@example.com',
      test_ipn: '1',
      notify_version: '3.8',
      unique_id_1: 'W0',
      receiver_email_1: 'ok@example.com',
      status_1: 'Completed',
      mc_gross_1: '1.00',
      mc_fee_1: '0.02',
      mc_currency_1: 'USD',
      status_2: 'Failed',
      reason_code_2: '1001',
      mc_fee_2: '0.00',
      status_3: 'Unclaimed',
    });
    expect(processed!.verify_sign).toBeTruthy();
    expect(processed!.reason_code_1).toBeUndefined();
    expect(completed).toMatchObject({
      payment_status: 'Completed',
      masspay_txn_id_1: txn,
      status_1: 'Completed',
      status_2: 'Failed',
      status_3: 'Returned',
    });
    for (const r of l.received) expect((await postback(s, withPrefix(r.body))).text).toBe('VERIFIED');
  });

  test("TransactionSearch: the account's Mass Pay payments by payee and date, sent negative, 100 at most", async () => {
    const s = await masspaySim();
    const search = (params: Record<string, string>) => call(s, { METHOD: 'TransactionSearch', ...params });
    const before = new Date(Date.now() - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const emails = (i: number) => (i < 2 ? 'x@example.com' : `many${i % 2}@example.com`);
    expect((await call(s, { ...base, ...items(2, 'S', emails) })).fields.ACK).toBe('Success');
    expect(
      (await call(s, { ...base, ...items(103, 'T', (i) => (i < 2 ? 'y@example.com' : 'many@example.com')) })).fields
        .ACK,
    ).toBe('Success');
    // A lost answer: PayPal acted on it, and it shows.
    s.nvp.faults.push({ kind: 'lost_answer' });
    expect((await call(s, { ...base, ...items(1, 'L', () => 'lost@example.com'), L_AMT0: '12.34' })).status).toBe(500);
    // PayPal never saw it: nothing shows.
    s.nvp.faults.push({ kind: 'unavailable' });
    expect((await call(s, { ...base, ...items(1, 'N', () => 'never@example.com') })).status).toBe(503);

    const found = await search({ STARTDATE: before, RECEIVER: 'lost@example.com', TRANSACTIONCLASS: 'MassPay' });
    expect(found.fields).toMatchObject({
      ACK: 'Success',
      L_EMAIL0: 'lost@example.com',
      L_AMT0: '-12.34',
      L_CURRENCYCODE0: 'USD',
      L_STATUS0: 'Pending',
      L_TIMEZONE0: 'GMT',
      L_TIMESTAMP0: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/),
    });
    expect(found.fields.L_EMAIL1).toBeUndefined();
    const none = async (params: Record<string, string>) =>
      expect(Object.keys((await search(params)).fields).filter((k) => k.startsWith('L_'))).toEqual([]);
    await none({ STARTDATE: before, RECEIVER: 'never@example.com' });
    await none({
      STARTDATE: new Date(Date.now() + 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      RECEIVER: 'x@example.com',
    });
    await none({ STARTDATE: before, RECEIVER: 'x@example.com', TRANSACTIONCLASS: 'Received' });
    await none({ STARTDATE: before, RECEIVER: 'x@example.com', CURRENCYCODE: 'EUR' });
    expect((await search({ STARTDATE: before, RECEIVER: 'X@Example.com' })).fields).toMatchObject({
      L_EMAIL0: 'x@example.com',
      L_EMAIL1: 'x@example.com',
      L_AMT0: '-1.00',
    });
    const many = await search({ STARTDATE: before, RECEIVER: 'many@example.com' });
    expect(many.fields).toMatchObject({ ACK: 'SuccessWithWarning', L_ERRORCODE0: '11002', L_SEVERITYCODE0: 'Warning' });
    expect(many.fields.L_TRANSACTIONID99).toBeTruthy();
    expect(many.fields.L_TRANSACTIONID100).toBeUndefined();
    for (const [params, code] of [
      [{}, '10003'],
      [{ STARTDATE: 'yesterday' }, '10004'],
      [{ STARTDATE: before, TRANSACTIONCLASS: 'Everything' }, '10004'],
    ] as const)
      expect((await search(params)).fields).toMatchObject({ ACK: 'Failure', L_ERRORCODE0: code });
  });
});
