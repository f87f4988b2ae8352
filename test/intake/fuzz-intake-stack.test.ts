import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  buildBody,
  buildFlowBody,
  decodeOrReason,
  flowCaseArb,
  fuzzCaseArb,
  fuzzSeed,
  type Mutation,
} from '../support/ipn-fuzz';
import { createTestStack, sample, withField, type TestStack } from '../support/stack';

const SEED = fuzzSeed('fuzz-intake-stack');

type HistoryEvents = {
  events?: Array<{
    workflowTaskFailedEventAttributes?: { failure?: { message?: string | null } | null } | null;
  }> | null;
};

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const describeCase = (c: unknown) =>
  JSON.stringify(c, (_k, v: unknown) =>
    typeof v === 'string' && v.length > 80 ? `${v.slice(0, 40)}…(${v.length} chars)` : v,
  );

/** Runs `work` over `items` with `concurrency` lanes until done or `deadline`; returns how many ran. */
async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  deadline: number,
  work: (item: T, i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  const lane = async () => {
    while (next < items.length && Date.now() < deadline) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return Math.min(next, items.length);
}

describe(`on the test stack (seed ${SEED})`, () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await createTestStack('fuzz-intake-stack');
    const put = async (path: string, body: object) => {
      expect((await stack.admin('PUT', path, body)).status).toBe(200);
    };
    const integration = {
      mode: 'sandbox',
      receiverEmails: ['seller@paypalsandbox.com', 'test_business@example.com'],
      receiverIds: ['S8XGHLYDW9T3S'],
    };
    // Disabled: thousands of stored bodies must not start thousands of workflows on a 2-core CI
    // machine; the workflow-level fuzz covers dispatch and processing.
    await put('/admin/integrations/fuzz-http', {
      ...integration,
      name: 'HTTP',
      ipnEnabled: false,
      allowedCurrencies: ['USD'],
    });
    const currencies = ['USD', 'EUR', 'JPY', 'GBP', 'CAD', 'AUD'];
    await put('/admin/integrations/fuzz-flow', {
      ...integration,
      name: 'Flows',
      feePolicy: 'net',
      allowedCurrencies: currencies,
    });
    await put('/admin/customers/fuzz-buyer', {
      name: 'Buyer',
      paypalEmails: ['buyer@paypalsandbox.com', 'test_user@example.com'],
    });
  });
  afterAll(() => stack?.close());

  it('runs 200 mutated IPNs through the real workflows: each ends recorded, no workflow task fails', async () => {
    const base = sample('web_accept_completed_ipn_simulator_01');
    // Always there, whatever the seed: inputs that once broke (or could break) a workflow.
    const pinned: Array<[string, Buffer]> = [
      ['1,100-character txn_id', withField(base, 'txn_id', 'T'.repeat(1_100))],
      ['lower-case currency', withField(withField(base, 'txn_id', 'PINNEDUSDLOWER001'), 'mc_currency', 'usd')],
      ['unsupported currency INR', withField(withField(base, 'txn_id', 'PINNEDINR00000001'), 'mc_currency', 'INR')],
      ['three decimals', withField(withField(base, 'txn_id', 'PINNEDDECIMALS001'), 'mc_gross', '12.345')],
      [
        '2,000-character custom',
        withField(withField(base, 'txn_id', 'PINNEDCUSTOM00001'), 'custom', 'c'.repeat(2_000)),
      ],
      ['NUL in txn_id', withField(base, 'txn_id', 'PINNED%00NUL00001')],
    ];
    const cases = fc.sample(flowCaseArb, { seed: SEED + 2, numRuns: 200 });
    const bodies = [
      ...pinned.map(([what, raw]) => ({ what, raw, verified: true })),
      ...cases.map((c) => ({ what: describeCase(c), raw: buildFlowBody(c), verified: c.verified })),
    ];
    const whatByDigest = new Map(bodies.map((b) => [sha(b.raw), b.what]));
    for (const b of bodies) if (b.verified) stack.sim.registerMessage(b.raw);

    const started = Date.now();
    const answers: number[] = [];
    const posted = await runPool(bodies, 4, started + 60_000, async (b) => {
      const res = await stack.postIpn('fuzz-flow', b.raw);
      await res.arrayBuffer();
      answers.push(res.status);
    });
    process.stderr.write(`[fuzz-intake-stack] workflows: ${posted} messages posted in ${Date.now() - started} ms\n`);
    expect(answers.filter((s) => s !== 200)).toEqual([]);
    expect(posted).toBeGreaterThanOrEqual(Math.min(bodies.length, 100)); // bounded by time, but never hollow

    const inFlight = ['received', 'dispatched', 'routed'];
    let msgs: Array<{ state: string }>;
    const deadline = Date.now() + 60_000;
    for (;;) {
      msgs = await stack.db.models.IpnMessage.find({ integrationId: 'fuzz-flow' }, { state: 1 }).lean();
      if ((msgs.length === posted && msgs.every((m) => !inFlight.includes(m.state))) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const states = msgs.reduce<Record<string, number>>(
      (acc, m) => ({ ...acc, [m.state]: (acc[m.state] ?? 0) + 1 }),
      {},
    );
    process.stderr.write(
      `[fuzz-intake-stack] workflows: ${posted} messages settled in ${Date.now() - started} ms: ` +
        `${JSON.stringify(states)}\n`,
    );

    const failedTasks = new Map<string, { workflowId: string; failure: string; times: number }>();
    let workflows = 0;
    for await (const { workflowId, history } of stack.client.workflow
      .list({ query: `TaskQueue = "${stack.config.TEMPORAL_TASK_QUEUE}"` })
      .intoHistories()) {
      workflows++;
      for (const e of (history as HistoryEvents | undefined)?.events ?? []) {
        if (!e.workflowTaskFailedEventAttributes) continue;
        const failure = e.workflowTaskFailedEventAttributes.failure?.message ?? '(no message)';
        const seen = failedTasks.get(`${workflowId} ${failure}`);
        if (seen) seen.times++;
        else failedTasks.set(`${workflowId} ${failure}`, { workflowId, failure, times: 1 });
      }
    }
    const stuckDocs = await stack.db.models.IpnMessage.find(
      { integrationId: 'fuzz-flow', state: { $in: inFlight } },
      { state: 1, raw: 1, workflowId: 1 },
    ).lean();
    // What the workflow says, next to what the message says: a completed workflow behind a message
    // still "dispatched" means its recorded outcome was lost.
    const workflowStatus = async (id?: string | null): Promise<string> => {
      if (!id) return 'none';
      const described = await stack.client.workflow
        .getHandle(id)
        .describe()
        .catch(() => undefined);
      return described?.status.name ?? 'not found';
    };
    const stuck = await Promise.all(
      stuckDocs.map(async (m) => ({
        state: m.state,
        workflow: await workflowStatus(m.workflowId),
        input: whatByDigest.get(sha(Buffer.from(m.raw.buffer))),
      })),
    );
    process.stderr.write(
      `[fuzz-intake-stack] workflows: ${workflows} histories scanned, ${failedTasks.size} failing workflows, ` +
        `${stuck.length} messages stuck\n`,
    );

    // Together, so one report shows both the failing workflows and the inputs stuck behind them.
    expect({ failedTasks: [...failedTasks.values()], stuck }).toEqual({ failedTasks: [], stuck: [] });
    expect(msgs).toHaveLength(posted);
    // Not hollow: the mix reached refusals, money and lifecycle records alike.
    expect(Object.keys(states)).toEqual(expect.arrayContaining(['invalid', 'malformed', 'recorded_no_money']));
    expect(Object.keys(states).some((s) => s.startsWith('applied:'))).toBe(true);
  }, 150_000);

  it('stores every body it answers 200 for, byte for byte; 413 and 415 only where due; never a 5xx', async () => {
    const FORM_TYPES = [
      'application/x-www-form-urlencoded',
      'application/x-www-form-urlencoded; charset=windows-1252',
      'Application/X-WWW-Form-URLEncoded',
      'application/x-www-form-urlencoded;charset=UTF-8',
    ];
    const OTHER_TYPES = ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'text/html', null];
    const limit = stack.config.IPN_MAX_BODY_BYTES;
    const cases = fc.sample(
      fc.record({
        body: fuzzCaseArb,
        contentType: fc.oneof(
          { weight: 12, arbitrary: fc.constantFrom(...FORM_TYPES) },
          { weight: 1, arbitrary: fc.constantFrom(...OTHER_TYPES) },
        ),
        // Now and then a body around the size limit, on either side of it.
        padTo: fc.oneof(
          { weight: 30, arbitrary: fc.constant(null) },
          { weight: 1, arbitrary: fc.integer({ min: limit - 200, max: limit + 200 }) },
        ),
      }),
      { seed: SEED + 1, numRuns: 2_000 },
    );
    // First, whatever the seed: both sides of the size limit, an empty body, no and a wrong media type.
    const pinned = (contentType: string | null, padTo: number | null, mutations: Mutation[] = []) => ({
      body: { fixture: 'web_accept_completed_01.ipn', mutations },
      contentType,
      padTo,
    });
    const form = FORM_TYPES[0]!;
    cases.unshift(
      pinned(form, limit),
      pinned(form, limit + 1),
      pinned(form, null, [{ op: 'replaceBody', bytes: [] }]),
      pinned(null, null),
      pinned('application/json', null),
    );
    const sent: Array<{ i: number; raw: Buffer; status: number; expected: number }> = [];
    const started = Date.now();
    const ran = await runPool(cases, 4, started + 25_000, async (c, i) => {
      let raw = buildBody(c.body);
      if (c.padTo !== null && raw.length < c.padTo)
        raw = Buffer.concat([raw, Buffer.from(`&memo=${'m'.repeat(Math.max(0, c.padTo - raw.length - 6))}`)]).subarray(
          0,
          c.padTo,
        );
      const expected =
        c.contentType === null || !FORM_TYPES.includes(c.contentType) ? 415 : raw.length > limit ? 413 : 200;
      const res = await fetch(`${stack.baseUrl}/ipn/fuzz-http`, {
        method: 'POST',
        headers: c.contentType === null ? {} : { 'content-type': c.contentType },
        body: raw,
      });
      await res.arrayBuffer();
      sent.push({ i, raw, status: res.status, expected });
    });
    const byStatus = sent.reduce<Record<number, number>>(
      (acc, s) => ({ ...acc, [s.status]: (acc[s.status] ?? 0) + 1 }),
      {},
    );
    process.stderr.write(
      `[fuzz-intake-stack] HTTP: ${ran} bodies in ${Date.now() - started} ms, answers ${JSON.stringify(byStatus)}\n`,
    );

    const wrong = sent
      .filter((s) => s.status !== s.expected)
      .map((s) => ({ status: s.status, expected: s.expected, bytes: s.raw.length, case: describeCase(cases[s.i]) }));
    expect(wrong).toEqual([]);
    expect(ran).toBeGreaterThanOrEqual(300); // bounded by time, but never hollow
    expect(byStatus[413]).toBeGreaterThan(0);
    expect(byStatus[415]).toBeGreaterThan(0);

    const checking = Date.now();
    const docs = await stack.db.models.IpnMessage.find(
      { integrationId: 'fuzz-http' },
      { raw: 1, txnId: 1, decodeError: 1, state: 1 },
    ).lean();
    const storedDigests = docs.map((d) => sha(Buffer.from(d.raw.buffer))).sort();
    const answered200 = sent
      .filter((s) => s.status === 200)
      .map((s) => sha(s.raw))
      .sort();
    expect(storedDigests).toEqual(answered200); // every 200 stored exactly, nothing else stored
    for (const d of docs) {
      const got = decodeOrReason(Buffer.from(d.raw.buffer));
      expect({ state: d.state, txnId: d.txnId ?? null, malformed: d.decodeError !== undefined }).toEqual({
        state: 'ignored',
        txnId: 'reason' in got ? null : got.summary.txnId,
        malformed: 'reason' in got,
      });
    }
    process.stderr.write(
      `[fuzz-intake-stack] HTTP: ${docs.length} stored messages checked in ${Date.now() - checking} ms\n`,
    );
    // Thousands of large documents slow every later scan of the collection (FerretDB more so).
    await stack.db.models.IpnMessage.deleteMany({ integrationId: 'fuzz-http' });
  }, 60_000);
});
