import {
  batchNeedsPerson,
  batchRefusal,
  batchSettled,
  decideBatch,
  decideItem,
  DEFAULT_RELEASE_AFTER_SECONDS,
  initialBatchState,
  nextBatchDeadline,
  NOT_COMPLETED,
  NOT_PROCESSED,
  resolvePlan,
  type BatchEffect,
  type BatchFacts,
  type BatchInput,
} from '../../src/masspay/rules';
import type { PostingRequest } from '../../src/shared/ledger';
import { newPayoutItem } from '../../src/masspay/state';
import type { ItemCounts, MasspayItemReport, PayoutBatchState, PayoutItem } from '../../src/masspay/state';
import { ItemsEngine, type ItemStore } from '../../src/masspay/items-engine';

/**
 * The Mass Pay rules without Temporal or a database: items in a Map, a ledger that is idempotent by
 * key, and stored messages the batch may apply. Every order PayPal may deliver in ends the same.
 */
const BATCH = 'PBTEST';
const deadlines = { processedWithinSeconds: 48 * 3600, completedWithinSeconds: 35 * 86400 };
let clock = Date.parse('2026-03-01T00:00:00Z');
const now = () => new Date((clock += 1000)).toISOString();

function newItem(uniqueId: string, amountMinor: number, customerId = 'c1', index = 0): PayoutItem {
  return newPayoutItem({
    batchId: BATCH,
    uniqueId,
    index,
    integrationId: 'shop',
    customerId,
    receiverEmail: `${uniqueId.toLowerCase()}@example.com`,
    currency: 'USD',
    mode: 'sandbox',
    amountMinor,
  });
}

const report = (uniqueId: string, status: string, over: Partial<MasspayItemReport> = {}): MasspayItemReport => ({
  uniqueId,
  status,
  masspayTxnId: `TX-${uniqueId}`,
  grossMinor: null,
  feeMinor: null,
  currency: 'USD',
  reasonCode: null,
  ...over,
});

/** Runs statuses through decideItem in order: the final item and every posting made. */
function runItem(statuses: string[], start = newItem('U1', 1000)) {
  let item = start;
  const postings: PostingRequest[] = [];
  for (const s of statuses) {
    const d = decideItem(item, { source: 'paypal', report: report(item.uniqueId, s), messageId: `m-${s}` }, now());
    item = d.item;
    postings.push(...d.postings);
  }
  return { item, postings };
}

describe('items move only forward', () => {
  test.each([
    [['Completed'], 'Completed', 0],
    [['Pending', 'Unclaimed', 'Completed'], 'Completed', 0],
    [['Completed', 'Unclaimed'], 'Completed', 0],
    [['Completed', 'Pending'], 'Completed', 0],
    [['Unclaimed', 'Returned'], 'Returned', 1000],
    [['Returned', 'Unclaimed'], 'Returned', 1000],
    [['Unclaimed', 'Pending'], 'Unclaimed', 0],
    [['Failed'], 'Failed', 1000],
    [['Failed', 'Failed', 'Failed'], 'Failed', 1000],
    [['Blocked', 'Completed'], 'Blocked', 1000],
    [['Completed', 'Reversed'], 'Reversed', 1000],
    [['Reversed', 'Completed'], 'Reversed', 1000],
    [['Completed', 'Reversed', 'Reversed', 'Returned'], 'Reversed', 1000],
    [['Failed', 'Reversed'], 'Failed', 1000],
    [['Returned', 'Failed'], 'Returned', 1000],
  ])('%j ends %s, releasing %d', (statuses, final, released) => {
    const { item, postings } = runItem(statuses);
    expect(item.state).toBe(final);
    expect(postings.reduce((sum, p) => sum + p.amountMinor, 0)).toBe(released);
    expect(
      postings.every((p) => p.reason === 'payout_release' && p.idempotencyKey === `payout_release:${BATCH}:U1`),
    ).toBe(true);
    expect(item.released).toBe(released > 0);
  });

  test(
    'every order of every pair and triple: at most one release, ' +
      'and a repeat of the whole sequence changes nothing',
    () => {
      const statuses = ['Pending', 'Unclaimed', 'Completed', 'Returned', 'Failed', 'Reversed', 'Blocked'];
      const seqs: string[][] = [];
      for (const a of statuses) for (const b of statuses) for (const c of statuses) seqs.push([a, b, c]);
      for (const seq of seqs) {
        const once = runItem(seq);
        expect(once.postings.length).toBeLessThanOrEqual(1);
        const twice = runItem(seq, once.item);
        expect({ seq, state: twice.item.state, postings: twice.postings }).toEqual({
          seq,
          state: once.item.state,
          postings: [],
        });
      }
    },
  );

  test('PayPal facts are recorded: txn id, fee, reason code; differences become problems', () => {
    const d = decideItem(
      newItem('U1', 1000),
      {
        source: 'paypal',
        report: report('U1', 'Failed', { feeMinor: 20, reasonCode: '1001', grossMinor: 999 }),
        messageId: 'm1',
      },
      now(),
    );
    expect(d.item).toMatchObject({
      state: 'Failed',
      masspayTxnId: 'TX-U1',
      feeMinor: 20,
      reasonCode: '1001',
      problems: ['amount_differs:999'],
    });
    expect(d.item.history.at(-1)!.what).toMatch(/reason code 1001.*released 10.00 USD to c1/);
    const unknown = decideItem(
      newItem('U2', 1000),
      { source: 'paypal', report: report('U2', 'Refunded'), messageId: 'm2' },
      now(),
    );
    expect(unknown).toMatchObject({
      moved: false,
      postings: [],
      item: { state: 'Pending', problems: ['unknown_status:Refunded'] },
    });
  });

  test('an item never reserved releases nothing', () => {
    const { item, postings } = runItem(['Failed'], { ...newItem('U1', 1000), reserved: false });
    expect(item.state).toBe('Failed');
    expect(postings).toEqual([]);
  });
});

/** A batch with its items, messages and ledger in memory, driven through decideBatch like the workflow does. */
class World {
  items = new Map<string, PayoutItem>();
  ledger = new Map<string, PostingRequest>();
  messages = new Map<string, { paymentStatus: string; reports: MasspayItemReport[] }>();
  refuse = new Set<string>();
  effects: BatchEffect[] = [];
  /** The checks since patched("masspay-operator-updates"): an item's state asked before a resolution. */
  checks = true;
  state: PayoutBatchState;
  engine: ItemsEngine;

  constructor(items: PayoutItem[], createdBy = 'alice') {
    for (const i of items) this.items.set(i.uniqueId, { ...i, reserved: false });
    const totalMinor = items.reduce((s, i) => s + i.amountMinor, 0);
    this.state = initialBatchState({
      id: BATCH,
      integrationId: 'shop',
      currency: 'USD',
      mode: 'sandbox',
      createdBy,
      createdAt: now(),
      note: null,
      itemCount: items.length,
      totalMinor,
    });
    const store: ItemStore = {
      get: async (_b, ids) =>
        new Map(ids.filter((id) => this.items.has(id)).map((id) => [id, structuredClone(this.items.get(id)!)])),
      forEach: async (_b, fn) => fn([...this.items.values()].map((i) => structuredClone(i))),
      counts: async () => {
        const c: ItemCounts = {};
        for (const i of this.items.values()) c[i.state] = (c[i.state] ?? 0) + 1;
        return c;
      },
      save: async (writes) => writes.forEach(({ item }) => void this.items.set(item.uniqueId, structuredClone(item))),
      post: async (p) => {
        const prior = this.ledger.get(p.idempotencyKey);
        if (this.refuse.has(p.idempotencyKey) || (prior && prior.amountMinor !== p.amountMinor))
          return { ok: false, reason: 'conflict' };
        this.ledger.set(p.idempotencyKey, p);
        return { ok: true };
      },
    };
    this.engine = new ItemsEngine(store);
  }

  balance(customerId: string): number {
    return [...this.ledger.values()].filter((p) => p.customerId === customerId).reduce((s, p) => s + p.amountMinor, 0);
  }

  async run(input: BatchInput, at = now()): Promise<PayoutBatchState> {
    const facts: BatchFacts = {};
    let effectsRun = 0;
    for (let round = 0; round < 20; round++) {
      const d = decideBatch(this.state, input, facts, { now: at, deadlines, checkBeforeActing: this.checks });
      this.effects.push(...d.effects.slice(effectsRun));
      effectsRun = d.effects.length;
      if (d.kind === 'done') return (this.state = d.state);
      const n = d.need;
      if (n.fact === 'reserve') facts.reserve = await this.engine.reserveAll(BATCH);
      else if (n.fact === 'applyAll') facts.applyAll = await this.engine.applyAll(BATCH, n.to, n, at);
      else if (n.fact === 'applyOne') facts.applyOne = await this.engine.applyOne(BATCH, n.action, at);
      else if (n.fact === 'itemState') facts.itemState = this.items.get(n.uniqueId)?.state ?? null;
      else if (
        n.fact === 'sendChunk' ||
        n.fact === 'reconcile' ||
        n.fact === 'sendReady' ||
        n.fact === 'cancelUnclaimed'
      )
        throw new Error('no PayPal here (see masspay-send-decide.test.ts)');
      else {
        const m = this.messages.get(n.messageId);
        facts.applyMessage = m
          ? {
              ok: true,
              paymentStatus: m.paymentStatus,
              ...(await this.engine.applyReports(BATCH, m.reports, n.messageId, at)),
            }
          : { ok: false, reason: 'no stored message' };
      }
    }
    throw new Error('no decision');
  }

  async ipn(messageId: string, paymentStatus: string, reports: MasspayItemReport[]): Promise<PayoutBatchState> {
    this.messages.set(messageId, { paymentStatus, reports });
    return this.run({ type: 'masspay', messageId });
  }

  /** Created, reserved, approved by bob, submitted. */
  async sent(): Promise<PayoutBatchState> {
    await this.run({ type: 'reserve' });
    await this.run({ type: 'approve', action: { operator: 'bob', reason: 'ok' } });
    return this.run({ type: 'submitted', action: { operator: 'alice', reason: 'uploaded' } });
  }
}

const op = (operator: string, reason = 'because') => ({ operator, reason });

describe('batches', () => {
  test('reservation, four eyes, submission, then Processed and Completed: exact balances throughout', async () => {
    const w = new World([newItem('A', 1000, 'c1', 0), newItem('B', 250, 'c1', 1), newItem('C', 500, 'c2', 2)]);
    await w.run({ type: 'reserve' });
    expect(w.state).toMatchObject({ reserved: true, state: 'created', counts: { Pending: 3 } });
    expect([w.balance('c1'), w.balance('c2')]).toEqual([-1250, -500]);
    expect(batchRefusal(w.state, { type: 'approve', action: op('alice') })).toMatchObject({
      status: 422,
      rule: 'four_eyes_creator',
      detail: expect.stringMatching(/four eyes/),
    });
    expect(batchRefusal(w.state, { type: 'submitted', action: op('alice') })).toMatchObject({ status: 409 });
    await w.run({ type: 'approve', action: op('alice') });
    expect(w.state.state).toBe('created');
    expect(w.effects.map((e) => e.type === 'audit' && e.action)).toContain('payout_approve_refused');
    await w.run({ type: 'approve', action: op('bob') });
    await w.run({ type: 'submitted', action: { ...op('alice'), submittedAt: '2026-03-01T10:00:00.000Z' } });
    expect(w.state).toMatchObject({ state: 'submitted', approvedBy: 'bob', submittedAt: '2026-03-01T10:00:00.000Z' });

    await w.ipn('m1', 'Processed', [
      report('A', 'Completed', { feeMinor: 20 }),
      report('B', 'Unclaimed'),
      report('C', 'Failed', { reasonCode: '1001' }),
    ]);
    expect(w.state).toMatchObject({
      state: 'processed',
      counts: { Completed: 1, Unclaimed: 1, Failed: 1 },
      attention: [],
    });
    expect([w.balance('c1'), w.balance('c2')]).toEqual([-1250, 0]);
    await w.ipn('m2', 'Completed', [report('A', 'Completed'), report('B', 'Returned'), report('C', 'Failed')]);
    expect(w.state).toMatchObject({
      state: 'completed',
      counts: { Completed: 1, Returned: 1, Failed: 1 },
      attention: [],
    });
    expect([w.balance('c1'), w.balance('c2')]).toEqual([-1000, 0]);
    expect(w.items.get('A')).toMatchObject({ feeMinor: 20, state: 'Completed' });
    expect(w.items.get('C')).toMatchObject({ reasonCode: '1001' });
    expect(batchSettled(w.state)).toBe(true);
  });

  test('Completed before Processed: the batch stays completed and the late Processed moves nothing back', async () => {
    const w = new World([newItem('A', 1000), newItem('B', 300, 'c2', 1)]);
    await w.sent();
    await w.ipn('m1', 'Completed', [report('A', 'Completed'), report('B', 'Returned')]);
    await w.ipn('m2', 'Processed', [report('A', 'Completed'), report('B', 'Unclaimed')]);
    expect(w.state).toMatchObject({ state: 'completed', counts: { Completed: 1, Returned: 1 }, attention: [] });
    expect(w.state.processedAt).not.toBeNull();
    expect([w.balance('c1'), w.balance('c2')]).toEqual([-1000, 0]);
  });

  test('duplicates: the same message signalled twice, and a second delivery of it, change nothing', async () => {
    const w = new World([newItem('A', 1000), newItem('B', 300, 'c2', 1)]);
    await w.sent();
    const reports = [report('A', 'Completed'), report('B', 'Failed')];
    const first = await w.ipn('m1', 'Processed', reports);
    const ledger = [...w.ledger.keys()];
    await w.run({ type: 'masspay', messageId: 'm1' });
    const again = await w.ipn('m1-resent', 'Processed', reports);
    expect(again).toMatchObject({ state: first.state, counts: first.counts, attention: [] });
    expect([...w.ledger.keys()]).toEqual(ledger);
    expect(again.history.at(-1)!.what).toMatch(/0 item\(s\) moved, 2 unchanged/);
    expect([w.balance('c1'), w.balance('c2')]).toEqual([-1000, 0]);
  });

  test('Denied releases every reservation exactly once; Denied again does nothing', async () => {
    const w = new World([newItem('A', 1000), newItem('B', 300, 'c2', 1)]);
    await w.sent();
    await w.ipn('m1', 'Denied', []);
    expect(w.state).toMatchObject({ state: 'denied', counts: { Denied: 2 } });
    expect([w.balance('c1'), w.balance('c2')]).toEqual([0, 0]);
    await w.ipn('m2', 'Denied', []);
    expect(w.ledger.size).toBe(4);
    expect(w.effects.filter((e) => e.type === 'alert').map((e) => e.kind)).toEqual(['payout_denied']);
  });

  test('Denied after Processed is a contradiction for a person, not a release', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.sent();
    await w.ipn('m1', 'Processed', [report('A', 'Unclaimed')]);
    await w.ipn('m2', 'Denied', []);
    expect(w.state).toMatchObject({
      state: 'processed',
      attention: [],
      contradictions: [
        { code: 'batch_contradicts_final', id: 'batch_contradicts_final:processed:Denied', ours: 'processed' },
      ],
    });
    expect(batchNeedsPerson(w.state)).toBe(true);
    expect(w.balance('c1')).toBe(-1000);
  });

  test('Unclaimed then Returned releases once; an open item after Completed asks a person until resolved', async () => {
    const w = new World([newItem('A', 1000), newItem('B', 700, 'c1', 1)]);
    await w.sent();
    await w.ipn('m1', 'Processed', [report('A', 'Unclaimed'), report('B', 'Unclaimed')]);
    await w.ipn('m2', 'Completed', [report('A', 'Returned')]);
    expect(w.state).toMatchObject({
      state: 'completed',
      counts: { Returned: 1, Unclaimed: 1 },
      attention: ['items_open_after_completed'],
    });
    expect(w.balance('c1')).toBe(-700);
    expect(batchSettled(w.state)).toBe(false);
    // Within the waiting period a release is a request; another operator's same resolution applies it.
    const returned = { uniqueId: 'B', state: 'Returned' } as const;
    await w.run({ type: 'resolve', action: { ...op('carol', 'PayPal shows it returned'), ...returned } });
    expect(w.state).toMatchObject({ counts: { Unclaimed: 1 }, pendingReleases: [{ operator: 'carol', ...returned }] });
    expect(w.balance('c1')).toBe(-700);
    await w.run({ type: 'resolve', action: { ...op('dave', 'checked on PayPal'), ...returned } });
    expect(w.state).toMatchObject({ counts: { Returned: 2 }, attention: [], pendingReleases: [] });
    expect(w.balance('c1')).toBe(0);
    await w.run({ type: 'resolve', action: { ...op('carol'), uniqueId: 'B', state: 'Completed' } });
    expect(w.effects.filter((e) => e.type === 'audit').at(-1)).toMatchObject({
      action: 'payout_resolve_refused',
      details: { refused: 'B: Returned is final' },
    });
    expect(w.balance('c1')).toBe(0);
  });

  test('cancel before submission releases everything; after submission it is refused', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.run({ type: 'reserve' });
    expect(w.balance('c1')).toBe(-1000);
    await w.run({ type: 'cancel', action: op('alice') });
    expect(w.state).toMatchObject({ state: 'cancelled', counts: { Cancelled: 1 } });
    expect(w.balance('c1')).toBe(0);

    const sent = new World([newItem('A', 1000)]);
    await sent.sent();
    expect(batchRefusal(sent.state, { type: 'cancel', action: op('alice') })).toMatchObject({
      status: 409,
      rule: 'batch_state',
      detail: expect.stringMatching(/not yet submitted/),
    });
  });

  test('a message no verified delivery backs moves nothing and asks a person', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.sent();
    await w.run({ type: 'masspay', messageId: 'forged' });
    expect(w.state).toMatchObject({ state: 'submitted', attention: ['unproven_message:forged'] });
    expect(w.items.get('A')!.state).toBe('Pending');
  });

  test('deadlines: no Processed in time, then no Completed in time; stop-waiting clears and stops them', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.sent();
    const submitted = Date.parse(w.state.submittedAt!);
    expect(nextBatchDeadline(w.state, deadlines)).toBe(submitted + 48 * 3600_000);
    await w.run({ type: 'tick' }, new Date(submitted + 47 * 3600_000).toISOString());
    expect(w.state.attention).toEqual([]);
    await w.run({ type: 'tick' }, new Date(submitted + 49 * 3600_000).toISOString());
    expect(w.state.attention).toEqual([NOT_PROCESSED]);
    expect(nextBatchDeadline(w.state, deadlines)).toBe(submitted + 35 * 86400_000);
    await w.ipn('m1', 'Processed', [report('A', 'Unclaimed')]);
    expect(w.state.attention).toEqual([]);
    await w.run({ type: 'tick' }, new Date(submitted + 36 * 86400_000).toISOString());
    expect(w.state.attention).toEqual([NOT_COMPLETED]);
    await w.run({ type: 'stopWaiting', action: op('carol', 'PayPal support is on it') });
    expect(w.state).toMatchObject({ attention: [], stoppedWaiting: true });
    expect(nextBatchDeadline(w.state, deadlines)).toBeNull();
  });

  test('a ledger that refuses a release leaves the item reported, the money unmoved, and a person asked', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.sent();
    w.refuse.add(`payout_release:${BATCH}:A`);
    await w.ipn('m1', 'Processed', [report('A', 'Failed')]);
    expect(w.items.get('A')).toMatchObject({
      state: 'Failed',
      released: false,
      problems: ['ledger_conflict:payout_release'],
    });
    expect(w.state.attention).toEqual(['item_problems:m1']);
    expect(w.balance('c1')).toBe(-1000);
  });

  test('a malformed signal is recorded, audited and changes nothing else', async () => {
    const w = new World([newItem('A', 1000)]);
    const before = await w.run({ type: 'reserve' });
    const after = await w.run({ type: 'malformed', signal: 'approve', issues: 'operator: required' });
    expect({ ...after, history: [] }).toEqual({ ...before, history: [] });
    expect(w.effects.at(-2)).toMatchObject({ type: 'audit', action: 'malformed_signal' });
  });
});

describe('four eyes: names compared as identities; caps need a second approver', () => {
  test.each(['alice', 'Alice', 'alice.', 'alice\u200b', ' ALICE ', 'Alïce', 'ａｌｉｃｅ'])(
    '%j may not approve what alice created',
    async (name) => {
      const w = new World([newItem('A', 1000)]);
      await w.run({ type: 'reserve' });
      expect(batchRefusal(w.state, { type: 'approve', action: op(name) })).toMatchObject({
        status: 422,
        rule: 'four_eyes_creator',
        detail: expect.stringMatching(/^four eyes: /),
      });
      await w.run({ type: 'approve', action: op(name) });
      expect(w.state).toMatchObject({ state: 'created', approvedBy: null, approvals: [] });
    },
  );

  test('a batch over a cap is approved only by two distinct operators, neither the creator', async () => {
    const w = new World([newItem('A', 1000)]);
    w.state = { ...w.state, requiredApprovals: 2 };
    await w.run({ type: 'reserve' });
    await w.run({ type: 'approve', action: op('bob') });
    expect(w.state).toMatchObject({ state: 'created', approvedBy: null, approvals: [{ operator: 'bob' }] });
    for (const again of ['Bob', 'bob.', 'b\u200bob', 'alice'])
      expect(batchRefusal(w.state, { type: 'approve', action: op(again) })?.status).toBe(422);
    await w.run({ type: 'approve', action: op('BOB!') });
    expect(w.state.state).toBe('created');
    await w.run({ type: 'approve', action: op('carol') });
    expect(w.state).toMatchObject({ state: 'approved', approvedBy: 'carol' });
    expect(w.state.approvals.map((a) => a.operator)).toEqual(['bob', 'carol']);
  });
});

describe('contradictions are blocking problems, never silence', () => {
  /** Sent, then PayPal's Processed leaves A Unclaimed; carol and dave release A as Failed. */
  async function releasedThenCompleted() {
    const w = new World([newItem('A', 1000), newItem('B', 500, 'c1', 1)]);
    await w.sent();
    await w.ipn('m1', 'Processed', [report('A', 'Unclaimed'), report('B', 'Completed')]);
    await w.run({ type: 'resolve', action: { ...op('carol'), uniqueId: 'A', state: 'Failed' } });
    await w.run({ type: 'resolve', action: { ...op('dave'), uniqueId: 'A', state: 'Failed' } });
    expect(w.items.get('A')).toMatchObject({ state: 'Failed', released: true });
    expect(w.balance('c1')).toBe(-500);
    await w.ipn('m2', 'Completed', [report('A', 'Completed'), report('B', 'Completed')]);
    return w;
  }
  const contradiction = {
    code: 'state_contradicts_final',
    id: 'state_contradicts_final:A:Completed',
    uniqueId: 'A',
    ours: 'Failed',
    paypal: 'Completed',
    messageId: 'm2',
  };

  test('PayPal paid an item an operator released: held, alerted, audited; money not moved', async () => {
    const w = await releasedThenCompleted();
    expect(w.items.get('A')).toMatchObject({ state: 'Failed', contradictions: [contradiction] });
    expect(w.state).toMatchObject({ state: 'completed', contradictions: [contradiction] });
    expect(batchNeedsPerson(w.state)).toBe(true);
    expect(batchSettled(w.state)).toBe(false);
    expect(w.effects).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'alert', kind: 'payout_contradiction', messageId: 'm2' }),
        expect.objectContaining({
          type: 'audit',
          action: 'payout_contradiction_raised',
          details: expect.objectContaining({ contradiction: expect.objectContaining(contradiction) }),
        }),
      ]),
    );
    expect(w.balance('c1')).toBe(-500);
  });

  test('stopWaiting leaves it; only a decision naming it clears it; the same fact again raises nothing', async () => {
    const w = await releasedThenCompleted();
    w.state = { ...w.state, attention: ['not_completed_in_time'] };
    await w.run({ type: 'stopWaiting', action: op('carol') });
    expect(w.state).toMatchObject({ attention: [], contradictions: [contradiction] });
    expect(batchRefusal(w.state, { type: 'stopWaiting', action: op('carol') })).toMatchObject({
      status: 409,
      rule: 'nothing_to_stop',
      detail: expect.stringMatching(/contradictions, each cleared by its own decision/),
    });
    const wrong = { ...op('carol'), contradictionId: 'state_contradicts_final:B:Completed' };
    expect(batchRefusal(w.state, { type: 'clearContradiction', action: wrong })?.status).toBe(409);
    await w.run({ type: 'clearContradiction', action: wrong });
    expect(w.state.contradictions).toHaveLength(1);
    await w.run({ type: 'clearContradiction', action: { ...op('carol'), contradictionId: contradiction.id } });
    expect(w.state).toMatchObject({ contradictions: [], clearedContradictions: [contradiction.id] });
    expect(w.effects.filter((e) => e.type === 'audit').at(-1)).toMatchObject({ action: 'payout_clearContradiction' });
    expect(batchSettled(w.state)).toBe(true);
    await w.ipn('m3', 'Completed', [report('A', 'Completed')]);
    expect(w.state.contradictions).toEqual([]);
  });

  test('a second masspay_txn_id for one unique id is a contradiction; nothing more is released', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.sent();
    await w.ipn('m1', 'Processed', [report('A', 'Completed', { masspayTxnId: 'T1' })]);
    await w.ipn('m2', 'Completed', [report('A', 'Completed', { masspayTxnId: 'T2' })]);
    expect(w.state.contradictions).toEqual([
      expect.objectContaining({ code: 'second_txn_id', uniqueId: 'A', firstTxnId: 'T1', txnId: 'T2', messageId: 'm2' }),
    ]);
    expect(w.items.get('A')).toMatchObject({ state: 'Completed', masspayTxnId: 'T1' });
    expect(w.balance('c1')).toBe(-1000);
  });

  test('PayPal reporting a cancelled batch processed: contradictions for the item and for the batch', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.run({ type: 'reserve' });
    await w.run({ type: 'cancel', action: op('alice') });
    await w.ipn('m1', 'Processed', [report('A', 'Completed')]);
    expect(w.state.contradictions).toEqual([
      expect.objectContaining({ code: 'state_contradicts_final', ours: 'Cancelled', paypal: 'Completed' }),
      expect.objectContaining({ code: 'batch_contradicts_final', ours: 'cancelled', paypal: 'processed' }),
    ]);
    expect(w.balance('c1')).toBe(0);
  });

  test('PayPal reporting a batch nobody approved: a contradiction', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.run({ type: 'reserve' });
    await w.ipn('m1', 'Processed', [report('A', 'Completed')]);
    expect(w.state.contradictions).toEqual([
      expect.objectContaining({ code: 'sent_unapproved', ours: 'created', paypal: 'Processed' }),
    ]);
  });

  test('the legacy rules (histories before the patch) keep Denied after Processed an attention string', () => {
    const s = { ...new World([newItem('A', 1000)]).state, state: 'processed' as const, submittedAt: now() };
    const d = decideBatch(
      s,
      { type: 'masspay', messageId: 'm1' },
      {
        applyMessage: { ok: true, paymentStatus: 'Denied', counts: { Pending: 1 }, moved: 0, ignored: 1, problems: [] },
      },
      { now: now(), deadlines, legacy: true },
    );
    expect(d).toMatchObject({ kind: 'done', state: { attention: ['denied_after_processed'], contradictions: [] } });
  });
});

describe('releasing an item: after the waiting period, or by a second operator', () => {
  test('within the period: a request; the requester cannot confirm it (by any spelling); another can', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.sent();
    const failed = { uniqueId: 'A', state: 'Failed' } as const;
    expect(resolvePlan(w.state, { ...op('carol'), ...failed }, { now: now(), deadlines })).toMatchObject({
      kind: 'propose',
      until: new Date(Date.parse(w.state.submittedAt!) + DEFAULT_RELEASE_AFTER_SECONDS * 1000).toISOString(),
    });
    await w.run({ type: 'resolve', action: { ...op('carol'), ...failed } });
    expect(w.items.get('A')!.state).toBe('Pending');
    expect(batchNeedsPerson(w.state)).toBe(true);
    expect(w.effects.filter((e) => e.type === 'audit').at(-1)).toMatchObject({ action: 'payout_resolve_proposed' });
    for (const same of ['Carol', 'carol.', 'car\u200bol'])
      expect(batchRefusal(w.state, { type: 'resolve', action: { ...op(same), ...failed } })?.status).toBe(422);
    // Completed releases nothing: no second operator needed.
    expect(
      resolvePlan(w.state, { ...op('carol'), uniqueId: 'A', state: 'Completed' }, { now: now(), deadlines }),
    ).toEqual({
      kind: 'apply',
      confirms: null,
    });
    await w.run({ type: 'resolve', action: { ...op('dave'), ...failed } });
    expect(w.items.get('A')).toMatchObject({ state: 'Failed', released: true });
    expect(w.state.pendingReleases).toEqual([]);
    expect(w.balance('c1')).toBe(0);
  });

  test('after the period one operator releases at once', async () => {
    const w = new World([newItem('A', 1000)]);
    await w.sent();
    const later = new Date(Date.parse(w.state.submittedAt!) + DEFAULT_RELEASE_AFTER_SECONDS * 1000).toISOString();
    await w.run({ type: 'resolve', action: { ...op('carol'), uniqueId: 'A', state: 'Failed' } }, later);
    expect(w.items.get('A')).toMatchObject({ state: 'Failed', released: true });
    expect(w.balance('c1')).toBe(0);
  });
});
