import { decidePayment, type PaymentInput } from '../../src/payments/rules';
import { parsePaymentHoldReason, type PaymentHoldReason } from '../../src/payments/hold';
import {
  initialPaymentState,
  PaymentStateSchema,
  upgradePaymentState,
  type LifecycleEvent,
  type PaymentState,
} from '../../src/payments/state';
import {
  initialProfileState,
  parseProfileHoldReason,
  ProfileStateSchema,
  upgradeProfileState,
  type CyclePayment,
} from '../../src/profiles/state';
import { refusalOf as profileRefusalOf } from '../../src/profiles/rules';
import { reasonText } from '../../src/shared/hold-reasons';
import { matter, parseMatter } from '../../src/shared/matters';

/**
 * Hold reasons are typed values with a text form beside them. Snapshots and running workflows saved
 * before carry the text alone: it is read back into the same value, and the rules decide on it as
 * they did on the text (an over-limit refund approved is capped, a checks hold can be approved).
 */

const PAYMENT_REASONS: Array<[string, PaymentHoldReason]> = [
  ['checks_failed:receiver_mismatch', { code: 'checks_failed', flags: ['receiver_mismatch'] }],
  [
    'checks_failed:negative_amount,live_message_on_sandbox',
    {
      code: 'checks_failed',
      flags: ['negative_amount', 'live_message_on_sandbox'],
    },
  ],
  ['amount_unusable', { code: 'amount_unusable' }],
  ['no_customer_match', { code: 'no_customer_match' }],
  ['ledger_conflict', { code: 'ledger_conflict' }],
  ['adjustment_checks_failed:R-1', { code: 'adjustment_checks_failed', txnId: 'R-1' }],
  ['adjustment_currency_mismatch:R-2', { code: 'adjustment_currency_mismatch', txnId: 'R-2' }],
  ['adjustment_mode_mismatch:R-3', { code: 'adjustment_mode_mismatch', txnId: 'R-3' }],
  ['refund_exceeds_original:REFUND-Refunded-2', { code: 'refund_exceeds_original', txnId: 'REFUND-Refunded-2' }],
  ['reversal_exceeds_original:REV-1', { code: 'reversal_exceeds_original', txnId: 'REV-1' }],
];

describe('the text form of a payment hold reason', () => {
  test.each(PAYMENT_REASONS)('%s is read as a typed value and written back the same', (text, typed) => {
    expect(parsePaymentHoldReason(text)).toEqual(typed);
    expect(reasonText(typed)).toBe(text);
  });

  test.each([
    ['a code no rule writes', 'made_up_reason'],
    ['a known code missing its ids', 'refund_exceeds_original'],
    ['ids on a code that has none', 'ledger_conflict:X'],
    ['a checks hold without flags', 'checks_failed'],
  ])('%s is kept as it was, never a failure to read', (_what, text) => {
    expect(parsePaymentHoldReason(text)).toEqual({ code: 'unrecognized', text });
    expect(reasonText(parsePaymentHoldReason(text))).toBe(text);
  });

  test('a profile reads the reasons it writes, and not a payment-only one', () => {
    expect(parseProfileHoldReason('checks_failed:receiver_mismatch')).toEqual({
      code: 'checks_failed',
      flags: ['receiver_mismatch'],
    });
    expect(parseProfileHoldReason('no_customer_match')).toEqual({ code: 'no_customer_match' });
    expect(parseProfileHoldReason('refund_exceeds_original:R-1')).toEqual({
      code: 'unrecognized',
      text: 'refund_exceeds_original:R-1',
    });
  });
});

let seq = 0;
const at = (n: number) => new Date(Date.parse('2026-01-01T00:00:00Z') + n * 1000).toISOString();
function event(kind: LifecycleEvent['kind'], txnId: string, status: string, minor: number): LifecycleEvent {
  return {
    messageId: `m${++seq}`,
    integrationId: 'shop',
    kind,
    txnId,
    paymentTxnId: 'P1',
    paymentStatus: status,
    pendingReason: null,
    reasonCode: null,
    txnType: 'web_accept',
    currency: 'USD',
    grossMinor: minor,
    feeMinor: 0,
    creditMinor: minor,
    payerEmail: 'buyer@example.com',
    custom: 'c1',
    caseId: null,
    flags: [],
    receivedAt: at(seq),
    sandbox: false,
  };
}

/** Runs one input, answering facts from a ledger that accepts every posting (recorded in `posted`). */
function run(state: PaymentState, input: PaymentInput, posted: number[]): PaymentState {
  const facts: Parameters<typeof decidePayment>[2] = {};
  for (let round = 0; round < 20; round++) {
    const d = decidePayment(state, input, facts, { now: at(++seq), orphanGraceSeconds: 3600 });
    if (d.kind === 'done') return d.state;
    const n = d.need;
    if (n.fact === 'proof') facts.proof = { ok: true };
    else if (n.fact === 'customerMatch') facts.customerMatch = n.custom;
    else if (n.fact === 'customerExists') facts.customerExists = true;
    else {
      posted.push(n.posting.amountMinor);
      facts.postings = { ...facts.postings, [n.posting.idempotencyKey]: { ok: true } };
    }
  }
  throw new Error('no decision');
}

/** The state as a version before typed reasons saved it: the hold's text, no `cause`. */
function savedBeforeTypedReasons(state: PaymentState): unknown {
  const saved = JSON.parse(JSON.stringify(state)) as { hold: Record<string, unknown> | null };
  delete saved.hold!.cause;
  return saved;
}

describe('a payment state saved with the hold reason as text', () => {
  const op = { operator: 'alice', reason: 'checked with the buyer' };

  function overLimitHeld(posted: number[]): PaymentState {
    let state = initialPaymentState('shop', 'P1');
    state = run(state, { type: 'ipn', event: event('payment', 'P1', 'Completed', 1000) }, posted);
    state = run(state, { type: 'ipn', event: event('reversal', 'REV-1', 'Reversed', 1500) }, posted);
    return state;
  }

  test('is read from a stored snapshot with the typed cause beside the text', () => {
    const held = overLimitHeld([]);
    expect(held.hold).toMatchObject({
      reason: 'reversal_exceeds_original:REV-1',
      cause: { code: 'reversal_exceeds_original', txnId: 'REV-1' },
    });
    const read = PaymentStateSchema.parse(savedBeforeTypedReasons(held));
    expect(read).toEqual(held);
  });

  test('loaded by a running workflow, approving the over-limit reversal still caps it at what remains', () => {
    const posted: number[] = [];
    const old = savedBeforeTypedReasons(overLimitHeld(posted)) as PaymentState;
    expect(old.hold).not.toHaveProperty('cause');
    const approved = run(upgradePaymentState(old), { type: 'approve', action: op }, posted);
    expect(posted).toEqual([1000, -1000]);
    expect(approved).toMatchObject({ hold: null, debitedMinor: 1000, reversedMinor: 1000, capApproved: false });
  });
});

describe('a profile state saved with a cycle payment held as text', () => {
  const heldPayment: Omit<CyclePayment, 'holdCause'> = {
    txnId: 'TX-1',
    txnType: 'recurring_payment',
    paymentStatus: 'Completed',
    messageId: 'm1',
    currency: 'USD',
    grossMinor: 500,
    creditMinor: 500,
    flags: ['receiver_mismatch'],
    sandbox: false,
    at: at(1),
    creditedMinor: 0,
    debitedMinor: 0,
    held: 'checks_failed:receiver_mismatch',
  };
  const old = { ...initialProfileState('shop', 'I-1'), payments: [heldPayment] };

  test('is read with the typed cause, and approving is not refused', () => {
    const read = ProfileStateSchema.parse(old);
    expect(read.payments[0]).toMatchObject({
      held: 'checks_failed:receiver_mismatch',
      holdCause: { code: 'checks_failed', flags: ['receiver_mismatch'] },
    });
    const approve = { type: 'approve' as const, action: { operator: 'alice', reason: 'known shop' } };
    expect(profileRefusalOf(upgradeProfileState(old as never), approve, at(2))).toBeNull();
    const unheld = { ...old, payments: [{ ...heldPayment, held: null }] };
    expect(profileRefusalOf(upgradeProfileState(unheld as never), approve, at(2))).toMatchObject({
      rule: 'nothing_held',
    });
  });
});

describe('attention matters', () => {
  test('stay names an operator types back, read as kind and reference', () => {
    expect(parseMatter('dispute:PP-D-1')).toEqual({ kind: 'dispute', ref: 'PP-D-1' });
    expect(parseMatter('adjustment_without_payment')).toEqual({ kind: 'adjustment_without_payment', ref: null });
    expect(parseMatter(matter('payment_after_final', 'TX:odd'))).toEqual({
      kind: 'payment_after_final',
      ref: 'TX:odd',
    });
  });
});
