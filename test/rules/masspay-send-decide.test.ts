import {
  batchNeedsPerson,
  batchRefusal,
  decideBatch,
  initialBatchState,
  nextBatchDeadline,
  nextSendChunk,
  planChunks,
  type BatchFacts,
  type BatchInput,
  type ChunkReconciliation,
  type SendChunkOutcome,
  wentThroughApi,
} from '../../src/masspay/rules';
import type { PayoutBatchState } from '../../src/masspay/state';
import { matchSearchRows, searchRows } from '../../src/masspay/nvp';
import { parseSenderBatchId, senderBatchId } from '../../src/masspay/rest';
import { PAYOUT_BATCH_MAX_ITEMS } from '../../src/masspay/state';

/** The rules of sending a batch through PayPal's API, chunk by chunk, with PayPal's answers scripted. */
const deadlines = { processedWithinSeconds: 3600, completedWithinSeconds: 86400 };
const NOW = '2026-03-01T00:00:00.000Z';
const action = { operator: 'carol', reason: 'pay them' };

function batch(itemCount: number, over: Partial<PayoutBatchState> = {}): PayoutBatchState {
  return {
    ...initialBatchState({
      id: 'PBSEND',
      integrationId: 'shop',
      currency: 'USD',
      mode: 'sandbox',
      createdBy: 'alice',
      createdAt: NOW,
      note: null,
      itemCount,
      totalMinor: itemCount * 100,
    }),
    state: 'approved',
    reserved: true,
    approvedBy: 'bob',
    ...over,
  };
}

/**
 * Runs one input; every chunk call is answered from `answers` in order (and recorded), every
 * reconciliation from `reconciled` (by chunk index; recorded in `reconciles`).
 */
function run(
  s: PayoutBatchState,
  input: BatchInput,
  answers: SendChunkOutcome[] = [],
  reconciled: Record<number, Omit<ChunkReconciliation, 'index'>> = {},
  facts: BatchFacts = {},
) {
  const asked: Array<{ index: number; from: number; to: number }> = [];
  const reconciles: Array<{ search: boolean; chunks: number[] }> = [];
  for (let round = 0; round < 10; round++) {
    const d = decideBatch(s, input, facts, { now: NOW, deadlines });
    if (d.kind === 'done') return { state: d.state, effects: d.effects, asked, reconciles };
    if (d.need.fact === 'reconcile') {
      reconciles.push({ search: d.need.search, chunks: d.need.chunks.map((c) => c.index) });
      facts.reconcile = d.need.chunks.map((c) => ({ index: c.index, ...reconciled[c.index]! }));
      continue;
    }
    if (d.need.fact !== 'sendChunk') throw new Error(`unexpected need ${d.need.fact}`);
    asked.push(d.need.chunk);
    const answer = answers.shift();
    if (!answer) throw new Error('no scripted answer left');
    facts.sendChunk = answer;
  }
  throw new Error('no decision');
}

/** Sends, then runs sendChunk inputs the way the workflow adds them, until none is due. */
function sendAll(s: PayoutBatchState, answers: SendChunkOutcome[]) {
  let state = run(s, { type: 'send', action }).state;
  const asked: Array<{ index: number; from: number; to: number }> = [];
  const effects: string[] = [];
  while (nextSendChunk(state)) {
    const r = run(state, { type: 'sendChunk' }, answers);
    state = r.state;
    asked.push(...r.asked);
    effects.push(...r.effects.map((e) => (e.type === 'alert' ? e.kind : e.action)));
  }
  return { state, asked, effects };
}

const acked = (id = 'c0ffee'): SendChunkOutcome => ({ outcome: 'acked', correlationId: id, calls: 1 });

test.each([
  [1, [[0, 1]]],
  [250, [[0, 250]]],
  [
    251,
    [
      [0, 250],
      [250, 251],
    ],
  ],
  [
    260,
    [
      [0, 250],
      [250, 260],
    ],
  ],
  [
    501,
    [
      [0, 250],
      [250, 500],
      [500, 501],
    ],
  ],
])('%i items go out in calls of at most 250: %j', (n, ranges) => {
  expect(planChunks(n, 250).map((c) => [c.from, c.to])).toEqual(ranges);
  const { state, asked } = sendAll(
    batch(n),
    ranges.map(() => acked()),
  );
  expect(asked.map((c) => [c.from, c.to])).toEqual(ranges);
  expect(state).toMatchObject({ state: 'submitted', channel: 'api', submittedAt: NOW, attention: [] });
  expect(state.send!.chunks.every((c) => c.state === 'acked' && c.correlationId === 'c0ffee')).toBe(true);
  // The Processed deadline runs from the send, as after an upload.
  expect(nextBatchDeadline(state, deadlines)).toBe(Date.parse(NOW) + 3600_000);
});

test.each([
  [15_000, [[0, 15_000]]],
  [
    15_001,
    [
      [0, 15_000],
      [15_000, 15_001],
    ],
  ],
  [
    PAYOUT_BATCH_MAX_ITEMS,
    [
      [0, 15_000],
      [15_000, 30_000],
    ],
  ],
])('Payouts REST: %i items go out in calls of at most 15,000, each its own sender_batch_id', (n, ranges) => {
  const s = run(
    batch(n),
    { type: 'send', action: { ...action, channel: 'rest' } },
    [],
    {},
    {
      sendReady: { ok: true, channel: 'rest' },
    },
  ).state;
  expect(s.send!.channel).toBe('rest');
  expect(s.send!.chunks.map((c) => [c.from, c.to])).toEqual(ranges);
  // Derived from the batch and the call alone: a retry after a lost answer names the same PayPal batch.
  const ids = s.send!.chunks.map((c) => senderBatchId(s.id, c.index));
  expect(ids).toEqual(ranges.map((_, i) => `PBSEND:${i}`));
  expect(ids.map((id) => parseSenderBatchId(id))).toEqual(ranges.map((_, i) => ({ batchId: 'PBSEND', callIndex: i })));
});

describe('what each answer does to the chunk and the batch', () => {
  const dup = (calls: number): SendChunkOutcome => ({ outcome: 'refused', code: '8331', message: 'dup', calls });
  test.each<[string, SendChunkOutcome[], { chunks: string[]; state: string; attention: string[] }]>([
    ['all accepted', [acked(), acked()], { chunks: ['acked', 'acked'], state: 'submitted', attention: [] }],
    [
      // The first request reached PayPal, its answer was lost; the retry is refused as a duplicate.
      'duplicate after a lost answer = already paid',
      [dup(2), acked()],
      { chunks: ['acked', 'acked'], state: 'submitted', attention: [] },
    ],
    [
      'duplicate on a first request: paid by someone else, a person checks',
      [acked(), dup(1)],
      { chunks: ['acked', 'acked'], state: 'submitted', attention: ['duplicate_unique_ids:1'] },
    ],
    [
      'refused for good on the first call: nothing out, still approved, held',
      [{ outcome: 'refused', code: '10004', message: 'bad amount', calls: 1 }],
      { chunks: ['refused', 'pending'], state: 'approved', attention: ['send_refused:0:10004'] },
    ],
    [
      'refused for good after one accepted call: submitted, the rest halted',
      [acked(), { outcome: 'refused', code: '10321', message: 'no money', calls: 1 }],
      { chunks: ['acked', 'refused'], state: 'submitted', attention: ['send_refused:1:10321'] },
    ],
    [
      'no answer at all: uncertain, PayPal may have it',
      [{ outcome: 'unreachable', message: 'ECONNRESET', calls: 1 }],
      { chunks: ['uncertain', 'pending'], state: 'submitted', attention: ['send_unanswered:0'] },
    ],
    [
      'no credentials: never reached PayPal',
      [{ outcome: 'unsendable', message: 'no NVP credentials', calls: 0 }],
      { chunks: ['refused', 'pending'], state: 'approved', attention: ['send_not_possible'] },
    ],
  ])('%s', (_name, answers, expected) => {
    const { state } = sendAll(batch(300), answers);
    expect({
      chunks: state.send!.chunks.map((c) => c.state),
      state: state.state,
      attention: state.attention,
    }).toEqual(expected);
  });

  test('an unanswered chunk is held: never sent again before reconciliation says PayPal has none of it', () => {
    const first = sendAll(batch(600), [acked('a'), { outcome: 'unreachable', message: 'timeout', calls: 1 }]);
    expect(first.state.send!.chunks.map((c) => c.state)).toEqual(['acked', 'uncertain', 'pending']);
    expect(first.state.send!.chunks[1]!.uncertainSince).toBe(NOW);
    expect(first.effects).toContain('payout_send_unanswered');
    expect(nextSendChunk(first.state)).toBeNull();
    // Cancelling now could release money PayPal is paying; sending again could pay twice.
    expect(batchRefusal(first.state, { type: 'cancel', action })).toMatchObject({ status: 409 });
    expect(batchRefusal(first.state, { type: 'submitted', action })).toMatchObject({ status: 409 });
    expect(batchRefusal(first.state, { type: 'send', action: { ...action, operator: 'dave' } })).toMatchObject({
      status: 409,
      rule: 'unanswered_calls',
      detail: expect.stringMatching(/call\(s\) 2 went unanswered .*reconcile first/),
    });
    // stopWaiting does not close it either.
    const stopped = run(first.state, { type: 'stopWaiting', action }).state;
    expect(stopped.attention).toEqual(['send_unanswered:1']);
    expect(batchNeedsPerson(stopped)).toBe(true);

    // A search since an hour before the lost answer finds none of its 250 items: it may go again.
    const r = run(first.state, { type: 'reconcile', action }, [], {
      1: { items: 250, reported: 0, search: { found: 0 } },
    });
    expect(r.reconciles).toEqual([{ search: true, chunks: [1] }]);
    expect(r.state.send!.chunks.map((c) => c.state)).toEqual(['acked', 'not_found', 'pending']);
    expect(r.state.send!.chunks[1]!.reconciled).toMatchObject({ by: 'search', operator: 'carol', found: 0 });
    expect(r.state.attention).toEqual([]);
    let state = run(r.state, { type: 'send', action: { ...action, operator: 'dave' } }).state;
    const asked: number[] = [];
    const answers: SendChunkOutcome[] = [acked('b'), acked('c')];
    while (nextSendChunk(state)) {
      const next = run(state, { type: 'sendChunk' }, answers);
      asked.push(...next.asked.map((c) => c.index));
      state = next.state;
    }
    expect(asked).toEqual([1, 2]);
    expect(state.send!.chunks.map((c) => [c.state, c.calls])).toEqual([
      ['acked', 1],
      ['acked', 2],
      ['acked', 1],
    ]);
  });

  const unanswered = () => sendAll(batch(300), [{ outcome: 'unreachable', message: 'timeout', calls: 1 }]).state;
  test.each<[string, Omit<ChunkReconciliation, 'index'>, string, string[]]>([
    ["its items' IPNs", { items: 250, reported: 3, search: null }, 'acked', []],
    ['a search finding all', { items: 250, reported: 0, search: { found: 250 } }, 'acked', []],
    ['a search finding some', { items: 250, reported: 0, search: { found: 7 } }, 'acked', ['reconcile_partial:0']],
    [
      'a search that cannot tell',
      { items: 250, reported: 0, search: { inconclusive: 'truncated' } },
      'uncertain',
      ['send_unanswered:0', 'reconcile_inconclusive:0'],
    ],
  ])('reconciled by %s: %s', (_name, reconciled, chunkState, attention) => {
    const r = run(unanswered(), { type: 'reconcile', action }, [], { 0: reconciled });
    expect(r.state.send!.chunks.map((c) => c.state)).toEqual([chunkState, 'pending']);
    expect(r.state.attention).toEqual(attention);
    // PayPal has it: the send goes on with the next chunk by itself (an acked one never goes twice).
    // Otherwise nothing goes, and a person cannot send again either.
    expect(nextSendChunk(r.state)?.index ?? null).toBe(chunkState === 'acked' ? 1 : null);
    if (chunkState !== 'acked') expect(batchRefusal(r.state, { type: 'send', action })?.status).toBe(409);
  });

  test("a verified IPN reporting the items of an unanswered chunk settles it without anyone's search", () => {
    const applied = { ok: true as const, paymentStatus: 'Processed', counts: { Completed: 250, Pending: 50 } };
    const r = run(
      unanswered(),
      { type: 'masspay', messageId: 'm1' },
      [],
      { 0: { items: 250, reported: 250, search: null } },
      { applyMessage: { ...applied, moved: 250, ignored: 0, problems: [] } },
    );
    expect(r.reconciles).toEqual([{ search: false, chunks: [0] }]);
    expect(r.state.send!.chunks[0]).toMatchObject({ state: 'acked', reconciled: { by: 'ipn', operator: null } });
    expect(r.state.attention).toEqual([]);
  });

  test('a reconcile with nothing unanswered is refused; an API send refuses the upload file', () => {
    const sent = sendAll(batch(3), [acked()]).state;
    expect(batchRefusal(sent, { type: 'reconcile', action })?.status).toBe(409);
    expect(wentThroughApi(sent)).toBe(true);
    expect(wentThroughApi(batch(3))).toBe(false);
    const refused = sendAll(batch(3), [{ outcome: 'unsendable', message: 'no credentials', calls: 0 }]).state;
    expect(wentThroughApi(refused)).toBe(false);
  });
});

describe('who may send, and when', () => {
  const sending = sendAll(batch(10), [acked()]).state;
  test.each(['alice', 'Alice', 'alice.', 'alice\u200b'])('%j created the batch: may not send it', (name) => {
    expect(batchRefusal(batch(3), { type: 'send', action: { ...action, operator: name } })).toMatchObject({
      status: 422,
      rule: 'four_eyes_creator',
      detail: expect.stringMatching(/^four eyes: PBSEND was created by alice, another operator must send it/),
    });
  });
  test.each<[string, PayoutBatchState, number | null]>([
    ['approved', batch(3), null],
    ['created', batch(3, { state: 'created', approvedBy: null }), 409],
    ['submitted by upload', batch(3, { state: 'submitted', channel: 'upload' }), 409],
    ['cancelled', batch(3, { state: 'cancelled' }), 409],
    ['sent already', sending, 409],
  ])('%s', (_name, s, status) => {
    const refusal = batchRefusal(s, { type: 'send', action });
    expect(refusal?.status ?? null).toBe(status);
  });

  test('a refused send is recorded and changes nothing', () => {
    const r = run(sending, { type: 'send', action });
    expect(r.state.send).toEqual(sending.send);
    expect(r.effects).toEqual([expect.objectContaining({ type: 'audit', action: 'payout_send_refused' })]);
  });

  test('an upload abandons a send that never reached PayPal', () => {
    const refused = sendAll(batch(3), [{ outcome: 'unsendable', message: 'no credentials', calls: 0 }]).state;
    expect(batchRefusal(refused, { type: 'cancel', action })).toBeNull();
    const uploaded = run(refused, { type: 'submitted', action }).state;
    expect(uploaded).toMatchObject({ state: 'submitted', channel: 'upload', send: null, attention: [] });
    expect(nextSendChunk(uploaded)).toBeNull();
  });
});

describe("PayPal's IPNs for a batch sent in several calls", () => {
  const facts = (paymentStatus: string, counts: Record<string, number>): BatchFacts => ({
    applyMessage: { ok: true, paymentStatus, counts, moved: 1, ignored: 0, problems: [] },
  });
  const ipn = (s: PayoutBatchState, id: string, status: string, counts: Record<string, number>) => {
    const d = decideBatch(s, { type: 'masspay', messageId: id }, facts(status, counts), { now: NOW, deadlines });
    if (d.kind !== 'done') throw new Error('expected a decision');
    return d.state;
  };
  const sent = sendAll(batch(300), [acked(), acked()]).state;

  test('a Completed for one call leaves the batch processed until every item is settled', () => {
    let s = ipn(sent, 'm1', 'Completed', { Completed: 250, Pending: 50 });
    expect(s).toMatchObject({ state: 'processed', attention: [] });
    s = ipn(s, 'm2', 'Completed', { Completed: 299, Returned: 1 });
    expect(s).toMatchObject({ state: 'completed', attention: [] });
  });

  test('a Denied for one call asks a person instead of releasing every item', () => {
    const s = ipn(sent, 'm3', 'Denied', { Pending: 300 });
    expect(s).toMatchObject({ state: 'submitted', attention: ['denied_partial:m3'] });
  });

  test('an uploaded batch keeps its rules: Completed with items open asks a person', () => {
    const uploaded = batch(2, { state: 'submitted', channel: 'upload', submittedAt: NOW });
    const s = ipn(uploaded, 'm4', 'Completed', { Completed: 1, Unclaimed: 1 });
    expect(s).toMatchObject({ state: 'completed', attention: ['items_open_after_completed'] });
  });
});

describe("reading PayPal's TransactionSearch for an unanswered call", () => {
  const answer = (rows: Array<[string, string, string]>, extra: Record<string, string> = {}) =>
    Object.fromEntries([
      ['ACK', 'Success'],
      ...rows.flatMap(([txn, amt, cur], n) => [
        [`L_TRANSACTIONID${n}`, txn],
        [`L_AMT${n}`, amt],
        [`L_CURRENCYCODE${n}`, cur],
      ]),
      ...Object.entries(extra),
    ]) as Record<string, string>;

  test('each row matches at most one item of its amount and currency; a row seen twice counts once', () => {
    const byReceiver = searchRows(
      answer([
        ['T1', '-5.00', 'USD'],
        ['T2', '-5.00', 'USD'],
        ['T3', '-7.00', 'EUR'],
      ]),
    );
    const byEmail = searchRows(answer([['T1', '-5.00', 'USD']]));
    expect(byReceiver.truncated).toBe(false);
    const rows = [...byReceiver.rows, ...byEmail.rows];
    expect(matchSearchRows(rows, { currency: 'USD', amounts: [500, 500, 500, 700] })).toBe(2);
    expect(matchSearchRows(rows, { currency: 'USD', amounts: [700] })).toBe(0);
    expect(matchSearchRows([], { currency: 'USD', amounts: [500] })).toBe(0);
  });

  test('cut at 100 results (11002): absence proves nothing', () => {
    expect(searchRows(answer([], { ACK: 'SuccessWithWarning', L_ERRORCODE0: '11002' })).truncated).toBe(true);
  });
});
