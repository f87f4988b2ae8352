import {
  decidePayment,
  needsPerson,
  nextDeadline,
  nextWake,
  refusalOf,
  type PaymentEffect,
  type PaymentInput,
} from '../../src/payments/rules';
import type { Posting } from '../../src/shared/ledger';
import { initialPaymentState, type LifecycleEvent, type PaymentState } from '../../src/payments/state';
import { acknowledgeMatters, type ClosingTable } from '../../src/shared/matters';
import { PAYMENT_MATTER_CLOSING } from '../../src/payments/matters';

/**
 * The payment rules without Temporal: each table row runs inputs through `decidePayment`,
 * answering its facts from a small in-memory world (customers, a ledger that is idempotent by key,
 * the set of events verified messages back). Fast enough to try every delivery order.
 */
interface World {
  customers: Record<string, true>;
  emails: Record<string, string>;
  postings: Map<string, Posting>;
  /** Idempotency keys the ledger refuses (a conflict). */
  refuse: Set<string>;
  unproven: Set<string>;
}

const newWorld = (): World => ({
  customers: { c1: true, c2: true },
  emails: { 'buyer@example.com': 'c1' },
  postings: new Map(),
  refuse: new Set(),
  unproven: new Set(),
});

let clock = Date.parse('2026-01-01T00:00:00Z');
function run(world: World, state: PaymentState, input: PaymentInput, graceSeconds = 3600) {
  const facts: Parameters<typeof decidePayment>[2] = {};
  for (let round = 0; round < 100; round++) {
    const d = decidePayment(state, input, facts, {
      now: new Date((clock += 1000)).toISOString(),
      orphanGraceSeconds: graceSeconds,
    });
    // A rerun regenerates every effect: a decision carries all of them.
    if (d.kind === 'done') return d;
    const n = d.need;
    if (n.fact === 'proof')
      facts.proof = world.unproven.has(n.event.messageId) ? { ok: false, reason: 'unproven' } : { ok: true };
    else if (n.fact === 'customerExists') facts.customerExists = Boolean(world.customers[n.customerId]);
    else if (n.fact === 'customerMatch')
      facts.customerMatch =
        (n.custom && world.customers[n.custom] ? n.custom : null) ??
        (n.payerEmail ? (world.emails[n.payerEmail] ?? null) : null);
    else {
      const key = n.posting.idempotencyKey;
      const prior = world.postings.get(key);
      const ok = !world.refuse.has(key) && (!prior || prior.amountMinor === n.posting.amountMinor);
      if (ok) world.postings.set(key, n.posting);
      facts.postings = { ...facts.postings, [key]: ok ? { ok: true } : { ok: false, reason: 'conflict' } };
    }
  }
  throw new Error('no decision after 100 facts');
}

function runAll(world: World, inputs: PaymentInput[], state = initialPaymentState('shop', 'P1')) {
  const outcomes: string[] = [];
  const effects: PaymentEffect[] = [];
  for (const input of inputs) {
    const d = run(world, state, input);
    state = d.state;
    effects.push(...d.effects);
    if (d.outcome) outcomes.push(d.outcome.outcome);
  }
  return { state, outcomes, effects };
}

let seq = 0;
function event(
  kind: LifecycleEvent['kind'],
  paymentStatus: string,
  grossMinor: number,
  over: Partial<LifecycleEvent> = {},
): LifecycleEvent {
  const txnId = kind === 'payment' || kind === 'dispute' ? 'P1' : `${kind.toUpperCase()}-${paymentStatus}`;
  return {
    messageId: `m${++seq}`,
    integrationId: 'shop',
    kind,
    txnId,
    paymentTxnId: 'P1',
    paymentStatus,
    pendingReason: null,
    reasonCode: null,
    txnType: 'web_accept',
    currency: 'USD',
    grossMinor,
    feeMinor: 0,
    creditMinor: grossMinor,
    payerEmail: 'buyer@example.com',
    custom: null,
    caseId: kind === 'dispute' ? 'CASE-1' : null,
    flags: [],
    receivedAt: new Date(clock).toISOString(),
    sandbox: false,
    ...over,
  };
}
const ipn = (e: LifecycleEvent): PaymentInput => ({ type: 'ipn', event: e });
const sumOf = (w: World) => [...w.postings.values()].reduce((a, p) => a + p.amountMinor, 0);

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

describe('every delivery order of one payment’s life ends with the same money', () => {
  const life = () => [
    event('payment', 'Pending', 1234, { pendingReason: 'echeck' }),
    event('payment', 'Completed', 1234),
    event('refund', 'Refunded', 200),
    event('reversal', 'Reversed', 1034),
    event('canceled_reversal', 'Canceled_Reversal', 1034),
  ];
  const orders = permutations([0, 1, 2, 3, 4]);

  test.each(orders.map((o) => [o.join(',')]))('order %s', (order) => {
    const events = life();
    const world = newWorld();
    const { state } = runAll(
      world,
      order.split(',').map((i) => ipn(events[Number(i)]!)),
    );
    // Net 12.34 − 2.00 − 10.34 + 10.34, each movement posted once, nothing left waiting.
    expect(sumOf(world)).toBe(1034);
    expect(world.postings.size).toBe(4);
    expect(state).toMatchObject({
      phase: 'credited',
      creditedMinor: 1234,
      debitedMinor: 200,
      reversedMinor: 0,
      hold: null,
      waiting: [],
      customerId: 'c1',
    });
    expect(state.paymentStatus).toBe('Completed');
  });

  test.each(orders.slice(0, 24).map((o) => [o.join(',')]))(
    'order %s with every event delivered twice (and a dispute)',
    (order) => {
      const events = life();
      const world = newWorld();
      const inputs = order
        .split(',')
        .flatMap((i) => [ipn(events[Number(i)]!), ipn({ ...events[Number(i)]!, messageId: `dup-${i}` })]);
      inputs.splice(3, 0, ipn(event('dispute', 'new_case', 0, { grossMinor: null, creditMinor: null })));
      const { state, outcomes } = runAll(world, inputs);
      expect(sumOf(world)).toBe(1034);
      expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(5);
      expect(state.attention).toEqual(['dispute:CASE-1']);
      expect(needsPerson(state)).toBe(true);
    },
  );
});

describe('statuses and amounts', () => {
  test.each([
    ['Completed', 'JPY', 1000, 'credited', 1000],
    ['Completed', 'EUR', 5, 'credited', 5],
    ['Denied', 'USD', 1234, 'not_paid', 0],
    ['Pending', 'USD', 1234, 'pending', 0],
    ['Completed', 'usd', 1234, 'held', 0],
    ['Completed', 'XXX', 1234, 'held', 0],
  ])('%s in %s (%d minor units) → %s, %d posted', (status, currency, gross, phase, posted) => {
    const world = newWorld();
    const { state, effects } = runAll(world, [ipn(event('payment', status, gross, { currency }))]);
    expect(state.phase).toBe(phase);
    expect(sumOf(world)).toBe(posted);
    if (phase === 'held')
      expect(effects).toContainEqual(expect.objectContaining({ type: 'alert', kind: 'payment_held' }));
  });

  test('a negative-amount flag holds; a later Completed status never replaces a held one', () => {
    const world = newWorld();
    const { state } = runAll(world, [
      ipn(event('payment', 'Completed', 500, { flags: ['negative_amount'] })),
      ipn(event('payment', 'Pending', 500)),
    ]);
    expect(state).toMatchObject({
      phase: 'held',
      paymentStatus: 'Completed',
      hold: { reason: 'checks_failed:negative_amount' },
    });
    expect(world.postings.size).toBe(0);
  });

  test('sandbox money is posted as sandbox; an adjustment of the other mode is held', () => {
    const world = newWorld();
    const { state } = runAll(world, [
      ipn(event('payment', 'Completed', 1234, { sandbox: true })),
      ipn(event('refund', 'Refunded', 100, { sandbox: false })),
    ]);
    expect([...world.postings.values()].map((p) => p.mode)).toEqual(['sandbox']);
    expect(state.hold).toMatchObject({ reason: 'adjustment_mode_mismatch:REFUND-Refunded', on: 'adjustment' });
  });

  test('a ledger conflict is a hold, and nothing claims money moved', () => {
    const world = newWorld();
    world.refuse.add('credit:shop:P1');
    const { state } = runAll(world, [ipn(event('payment', 'Completed', 1234))]);
    expect(state).toMatchObject({
      phase: 'held',
      hold: { reason: 'ledger_conflict' },
      creditedMinor: 0,
      customerId: null,
    });
  });

  test('events for another payment, or that no verified message backs, are refused', () => {
    const world = newWorld();
    const forged = event('payment', 'Completed', 1234);
    world.unproven.add(forged.messageId);
    const { state, outcomes } = runAll(world, [
      ipn(event('payment', 'Completed', 1234, { paymentTxnId: 'P2', txnId: 'P2' })),
      ipn(forged),
    ]);
    expect(outcomes).toEqual(['refused_foreign', 'unproven']);
    expect(state.attention).toEqual([expect.stringMatching(/^foreign_event:/), `unproven_event:${forged.messageId}`]);
    expect(world.postings.size).toBe(0);
    // The proof's refusal did not consume the key: the real message still credits.
    expect(runAll(world, [ipn(event('payment', 'Completed', 1234))], state).state.phase).toBe('credited');
  });
});

describe('refunds of a payment we never saw', () => {
  test('wait silently only until the deadline, then ask a person; they still apply later', () => {
    const world = newWorld();
    const refund = event('refund', 'Refunded', 300);
    let { state } = runAll(world, [ipn(refund)]);
    expect(state.phase).toBe('awaiting_payment');
    expect(needsPerson(state)).toBe(false);
    expect(nextDeadline(state, 3600)).toBe(Date.parse(refund.receivedAt) + 3600_000);

    clock = Date.parse(refund.receivedAt) + 3599_000 - 1000;
    state = run(world, state, { type: 'tick' }).state;
    expect(state.attention).toEqual([]);
    clock = Date.parse(refund.receivedAt) + 3600_000;
    state = run(world, state, { type: 'tick' }).state;
    expect(state.attention).toEqual(['adjustment_without_payment']);
    expect(nextDeadline(state, 3600)).toBeNull();

    state = runAll(world, [ipn(event('payment', 'Completed', 1234))], state).state;
    expect(state).toMatchObject({ phase: 'credited', debitedMinor: 300, attention: [], waiting: [] });
    expect(sumOf(world)).toBe(934);
  });
});

describe('when the entity wakes by itself', () => {
  const now = Date.parse('2026-03-01T00:00:00Z');
  const base = initialPaymentState('shop', 'P1');
  const refund = { ...event('refund', 'Refunded', 100), receivedAt: new Date(now - 1000).toISOString() };
  test.each([
    ['nothing waiting: closes when idle', base, { afterMs: 60_000, then: 'close' }],
    [
      'a person must act: waits as long as it takes',
      { ...base, attention: ['dispute:X'] },
      { afterMs: null, then: 'close' },
    ],
    // The grace period (1 h) is longer than idle (1 min): the deadline still wins, or no timer would be left.
    [
      'a refund waits for its payment: wakes at the deadline',
      { ...base, waiting: [refund] },
      { afterMs: 3_599_000, then: 'tick' },
    ],
    ['…even while held', { ...base, waiting: [refund], attention: ['x'] }, { afterMs: 3_599_000, then: 'tick' }],
    [
      'once shown to a person: waits for them',
      { ...base, waiting: [refund], attention: ['adjustment_without_payment'] },
      { afterMs: null, then: 'close' },
    ],
  ] as Array<[string, PaymentState, ReturnType<typeof nextWake>]>)('%s', (_what, state, expected) => {
    expect(nextWake(state, now, 60_000, 3600)).toEqual(expected);
  });
});

describe('operator decisions', () => {
  const op = { operator: 'alice', reason: 'checked' };
  const heldNoCustomer = () => {
    const world = newWorld();
    return {
      world,
      ...runAll(world, [ipn(event('payment', 'Completed', 1234, { payerEmail: 'stranger@example.com' }))]),
    };
  };

  test.each([
    ['assign', 'credited'],
    ['approve', 'held'],
    ['reject', 'rejected'],
  ] as const)('%s on a no-customer-match hold → %s', (type, phase) => {
    const { world, state } = heldNoCustomer();
    const input: PaymentInput =
      type === 'assign' ? { type, action: { ...op, customerId: 'c2' } } : { type, action: op };
    const after = runAll(world, [input], state).state;
    expect(after.phase).toBe(phase);
    // Approving cannot invent a customer: the payment is held again for the same reason.
    if (type === 'approve') expect(after.hold).toMatchObject({ reason: 'no_customer_match' });
    const posted = [...world.postings.values()];
    expect(posted).toEqual(
      phase === 'credited' ? [expect.objectContaining({ customerId: 'c2', operator: 'alice', amountMinor: 1234 })] : [],
    );
  });

  test.each([
    ['approve', 'nothing_held', 'nothing is held on P1 to approve'],
    ['reject', 'nothing_held', 'nothing is held on P1 to reject'],
    ['acknowledge', 'nothing_to_acknowledge', 'nothing on P1 waits for acknowledgement'],
  ] as const)('%s with nothing pending is refused (%s) and audited', (type, rule, why) => {
    const world = newWorld();
    const { state } = runAll(world, [ipn(event('payment', 'Completed', 1234))]);
    expect(refusalOf(state, { type, action: op })).toEqual({ status: 409, rule, detail: why });
    const d = run(world, state, { type, action: op });
    expect(d.effects).toEqual([
      expect.objectContaining({ type: 'audit', action: `${type}_refused`, details: { refused: why, rule } }),
    ]);
    // The answer an update gets: the typed refusal; the money is as it was.
    expect(d.result).toEqual({ ok: false, status: 409, rule, detail: why });
    expect(d.state.creditedMinor).toBe(1234);
  });

  test('a live message held on a sandbox integration: approve refused, assign cannot credit it either', () => {
    const world = newWorld();
    const flagged = event('payment', 'Completed', 5000, { flags: ['live_message_on_sandbox'] });
    const { state } = runAll(world, [ipn(flagged)]);
    expect(state.hold).toMatchObject({ reason: 'checks_failed:live_message_on_sandbox' });
    const why = refusalOf(state, { type: 'approve', action: op });
    expect(why).toMatchObject({
      status: 422,
      rule: 'sandbox_integration_live_money',
      detail: expect.stringMatching(/^P1 came without test_ipn/),
    });
    const approved = runAll(world, [{ type: 'approve', action: op }], state).state;
    expect(approved).toMatchObject({ phase: 'held', creditedMinor: 0, approvedFlags: [] });
    const assigned = runAll(world, [{ type: 'assign', action: { ...op, customerId: 'c2' } }], approved).state;
    expect(assigned).toMatchObject({ phase: 'held', hold: { reason: 'checks_failed:live_message_on_sandbox' } });
    expect(world.postings.size).toBe(0);
    expect(runAll(world, [{ type: 'reject', action: op }], assigned).state.phase).toBe('rejected');
    // Histories recorded before the rule replay as they were (the workflow asks patched()).
    expect(refusalOf(state, { type: 'approve', action: op }, { refuseLiveOnSandbox: false })).toBeNull();
  });

  test('acknowledge closes a dispute; assigning an unknown customer is refused', () => {
    const world = newWorld();
    let { state } = runAll(world, [ipn(event('dispute', 'new_case', 0, { grossMinor: null, creditMinor: null }))]);
    state = runAll(
      world,
      [
        { type: 'assign', action: { ...op, customerId: 'ghost' } },
        { type: 'acknowledge', action: { ...op, matter: state.attention[0] } },
      ],
      state,
    ).state;
    expect(state).toMatchObject({ attention: [], customerId: null });
  });

  test('the operator who approved an over-limit refund is not stamped on the refund behind it', () => {
    const world = newWorld();
    const { state } = runAll(world, [
      ipn(event('payment', 'Completed', 1000)),
      ipn(event('refund', 'Refunded', 1500)),
      ipn(event('refund', 'Refunded-2', 100)),
      { type: 'approve', action: op },
    ]);
    const refunds = [...world.postings.values()].filter((p) => p.reason === 'refund');
    expect(refunds).toEqual([expect.objectContaining({ amountMinor: -1000, operator: 'alice' })]);
    expect(state.hold).toMatchObject({ reason: 'refund_exceeds_original:REFUND-Refunded-2' });
  });
});

describe('what no rule foresaw', () => {
  test('a malformed signal is recorded, audited and ignored', () => {
    const world = newWorld();
    const d = run(world, initialPaymentState('shop', 'P1'), {
      type: 'malformed',
      signal: 'approve',
      issues: 'operator: required',
    });
    expect(d.state.history.at(-1)!.what).toBe('ignored a malformed approve signal: operator: required');
    expect(d.effects.map((e) => e.type)).toEqual(['audit', 'alert']);
  });

  test('an exception inside the rules leaves the state as it was and asks a person', () => {
    const broken = { ...initialPaymentState('shop', 'P1'), waiting: null } as unknown as PaymentState;
    const d = run(newWorld(), broken, ipn(event('refund', 'Refunded', 100)));
    expect(d.state.attention).toEqual(['internal_error']);
    expect(d.state.waiting).toBeNull();
    expect(d.outcome).toMatchObject({ outcome: 'internal_error' });
    expect(d.effects).toEqual([expect.objectContaining({ type: 'alert', kind: 'payment_internal_error' })]);
  });
});

describe('acknowledge closes what it may, one contradiction at a time', () => {
  const op = { operator: 'alice', reason: 'seen to' };
  const table: ClosingTable = { info: 'notice', clash: 'decision', wait: 'reconcile', who: 'assign' };
  test.each([
    ['blanket: the notices only', ['info', 'clash:1', 'info:2'], undefined, { ok: true, closed: ['info', 'info:2'] }],
    ['blanket with no notice: refused', ['clash:1'], undefined, { ok: false, rule: 'matter_needs_own_decision' }],
    ['named decision: exactly that one', ['info', 'clash:1', 'clash:2'], 'clash:2', { ok: true, closed: ['clash:2'] }],
    ['named notice: that one', ['info', 'clash:1'], 'info', { ok: true, closed: ['info'], open: ['clash:1'] }],
    ['named but absent: refused', ['clash:1'], 'clash:9', { ok: false, rule: 'no_such_matter' }],
    ['named prefix only: refused', ['clash:1'], 'clash', { ok: false, rule: 'no_such_matter' }],
    ['unknown kind: a decision', ['later_kind:x'], undefined, { ok: false, rule: 'matter_needs_own_decision' }],
    ['closed by evidence', ['wait'], 'wait', { ok: false, rule: 'closed_otherwise', closing: 'reconcile' }],
    ['closed by assigning', ['who'], 'who', { ok: false, rule: 'closed_otherwise', closing: 'assign' }],
    ['nothing waits', [], undefined, { ok: false, rule: 'nothing_to_acknowledge' }],
  ] as const)('%s', (_what, attention, named, expected) => {
    expect(acknowledgeMatters(table, attention, named, 'X')).toMatchObject(expected);
  });

  test('every matter the payment rules raise is in the table, and none is a notice', () => {
    const world = newWorld();
    world.unproven.add('UNPROVEN');
    const unproven = { ...event('payment', 'Completed', 100), messageId: 'UNPROVEN' };
    const foreign = { ...event('payment', 'Completed', 100), paymentTxnId: 'OTHER' };
    const dispute = event('dispute', 'new_case', 0, { grossMinor: null, creditMinor: null });
    const { state } = runAll(world, [ipn(unproven), ipn(foreign), ipn(dispute)]);
    const kinds = [...state.attention.map((m) => m.split(':')[0]!), 'internal_error', 'adjustment_without_payment'];
    expect(new Set(kinds)).toEqual(new Set(Object.keys(PAYMENT_MATTER_CLOSING)));
    expect(Object.values(PAYMENT_MATTER_CLOSING)).not.toContain('notice');
  });

  const contradicted = () => {
    const world = newWorld();
    world.unproven.add('UNPROVEN');
    // Pending: a second Completed would be a duplicate (its key is taken), never asked for proof.
    const unproven = { ...event('payment', 'Pending', 100), messageId: 'UNPROVEN' };
    const dispute = event('dispute', 'new_case', 0, { grossMinor: null, creditMinor: null, caseId: 'PP-D-1' });
    const r = runAll(world, [ipn(event('payment', 'Completed', 1234)), ipn(unproven), ipn(dispute)]);
    expect(r.state.attention).toEqual(['unproven_event:UNPROVEN', 'dispute:PP-D-1']);
    return { world, state: r.state };
  };

  test('a blanket acknowledge is refused and audited, and closes nothing', () => {
    const { world, state } = contradicted();
    const why = refusalOf(state, { type: 'acknowledge', action: op });
    expect(why).toMatchObject({ rule: 'matter_needs_own_decision', detail: expect.stringMatching(/is not a notice/) });
    const d = run(world, state, { type: 'acknowledge', action: op });
    expect(d.state.attention).toEqual(state.attention);
    expect(d.effects).toEqual([
      expect.objectContaining({
        type: 'audit',
        action: 'acknowledge_refused',
        details: { refused: why!.detail, rule: 'matter_needs_own_decision' },
      }),
    ]);
  });

  test('a named acknowledge closes that one matter; an unknown one is refused', () => {
    const { world, state } = contradicted();
    const named = run(world, state, { type: 'acknowledge', action: { ...op, matter: 'unproven_event:UNPROVEN' } });
    expect(named.state.attention).toEqual(['dispute:PP-D-1']);
    expect(named.effects).toEqual([
      expect.objectContaining({
        action: 'acknowledge',
        details: { closed: ['unproven_event:UNPROVEN'], open: ['dispute:PP-D-1'] },
      }),
    ]);
    const unknown = run(world, named.state, { type: 'acknowledge', action: { ...op, matter: 'unproven_event:X' } });
    expect(unknown.state.attention).toEqual(['dispute:PP-D-1']);
    expect(unknown.effects).toEqual([
      expect.objectContaining({
        action: 'acknowledge_refused',
        details: expect.objectContaining({ rule: 'no_such_matter' }),
      }),
    ]);
    expect(world.postings.size).toBe(1);
  });

  test('a refund waiting for its payment is not closed by a word; its payment closes it', () => {
    const world = newWorld();
    const refund = event('refund', 'Refunded', 300);
    let { state } = runAll(world, [ipn(refund)]);
    clock = Date.parse(refund.receivedAt) + 3600_000;
    state = run(world, state, { type: 'tick' }).state;
    expect(state.attention).toEqual(['adjustment_without_payment']);
    const action = { ...op, matter: 'adjustment_without_payment' };
    expect(refusalOf(state, { type: 'acknowledge', action })).toMatchObject({ rule: 'adjustment_waits_for_payment' });
    expect(run(world, state, { type: 'acknowledge', action }).state.attention).toEqual(['adjustment_without_payment']);
  });

  test('before the patch (a recorded history): a blanket acknowledge closed everything', () => {
    const { state } = contradicted();
    expect(
      refusalOf(state, { type: 'acknowledge', action: op }, { refuseLiveOnSandbox: true, namedMatters: false }),
    ).toBeNull();
    const d = decidePayment(
      state,
      { type: 'acknowledge', action: op },
      {},
      {
        now: new Date(clock).toISOString(),
        orphanGraceSeconds: 3600,
        namedMatters: false,
      },
    );
    expect(d).toMatchObject({ kind: 'done', state: { attention: [] } });
    expect(d.kind === 'done' && d.effects).toEqual([
      expect.objectContaining({ action: 'acknowledge', details: { attention: state.attention } }),
    ]);
  });
});
