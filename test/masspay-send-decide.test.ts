import {
  batchRefusal,
  decideBatch,
  initialBatchState,
  nextBatchDeadline,
  nextSendChunk,
  planChunks,
  type BatchFacts,
  type BatchInput,
  type SendChunkOutcome,
} from '../src/domain/masspay-decide';
import type { PayoutBatchState } from '../src/domain/masspay';

/** The rules of sending a batch through PayPal's API, chunk by chunk, with PayPal's answers scripted. */
const deadlines = { processedWithinSeconds: 3600, completedWithinSeconds: 86400 };
const NOW = '2026-03-01T00:00:00.000Z';
const action = { operator: 'carol', note: 'pay them' };

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

/** Runs one input; every chunk call is answered from `answers` in order (and recorded). */
function run(s: PayoutBatchState, input: BatchInput, answers: SendChunkOutcome[] = []) {
  const asked: Array<{ index: number; from: number; to: number }> = [];
  const facts: BatchFacts = {};
  for (let round = 0; round < 10; round++) {
    const d = decideBatch(s, input, facts, { now: NOW, deadlines });
    if (d.kind === 'done') return { state: d.state, effects: d.effects, asked };
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
      [{ outcome: 'unreachable', message: 'ECONNRESET', calls: 4 }],
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

  test('a halted send goes again only for the chunks not acked; an acked chunk is never sent twice', async () => {
    const first = sendAll(batch(600), [acked('a'), { outcome: 'unreachable', message: 'timeout', calls: 4 }]);
    expect(first.state.send!.chunks.map((c) => c.state)).toEqual(['acked', 'uncertain', 'pending']);
    expect(first.effects).toContain('payout_send_unanswered');
    // Cancelling now could release money PayPal is paying.
    expect(batchRefusal(first.state, { type: 'cancel', action })).toMatchObject({ status: 409 });
    expect(batchRefusal(first.state, { type: 'submitted', action })).toMatchObject({ status: 409 });
    const again = run(first.state, { type: 'send', action: { ...action, operator: 'dave' } }).state;
    expect(again.attention).toEqual([]);
    let state = again;
    const asked: number[] = [];
    const answers: SendChunkOutcome[] = [dup(1), acked('c')];
    while (nextSendChunk(state)) {
      const r = run(state, { type: 'sendChunk' }, answers);
      asked.push(...r.asked.map((c) => c.index));
      state = r.state;
    }
    expect(asked).toEqual([1, 2]);
    // The duplicate answers a chunk we had called before: already paid, nobody is asked.
    expect(state.send!.chunks.map((c) => [c.state, c.calls])).toEqual([
      ['acked', 1],
      ['acked', 5],
      ['acked', 1],
    ]);
    expect(state.attention).toEqual([]);
  });
});

describe('who may send, and when', () => {
  const sending = sendAll(batch(10), [acked()]).state;
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
