import { describeMoney, isSupportedCurrency } from '../shared/money';
import { moneyModeOf } from '../shared/money-mode';
import type { Posting, PostingOutcome } from '../shared/ledger';
import { adjustmentKey, creditKey } from '../shared/ids';
import type { OperatorAction } from '../shared/operator-actions';
import { ORPHAN_ATTENTION, type PaymentStep } from './decide-kit';
import { holdFor, type PaymentHoldReason } from './hold';
import { INFORMATIONAL_FLAGS, type LifecycleEvent } from './state';

/**
 * A payment's money: credited once when Completed (or held for a person: failed checks, an unusable
 * amount, no customer, a ledger refusal), then its refunds, reversals and cancellations applied in
 * arrival order, each capped by what remains credited unless an operator approves capping it.
 * Every movement is a ledger posting asked for as a fact, idempotent by key.
 */

function post(d: PaymentStep, posting: Posting): PostingOutcome {
  return d.need(d.facts.postings?.[posting.idempotencyKey], { fact: 'posting', posting });
}

function blockingFlags(d: PaymentStep, e: LifecycleEvent): string[] {
  return e.flags.filter((f) => !INFORMATIONAL_FLAGS.includes(f) && !d.s.approvedFlags.includes(f));
}

/** Credits the payment once; holds it instead when a check failed or no customer matches. */
export function credit(d: PaymentStep, by: OperatorAction | null): void {
  const s = d.s;
  const p = s.payment!;
  const blocking = blockingFlags(d, p);
  if (blocking.length > 0) return holdOn(d, 'payment', { code: 'checks_failed', flags: blocking }, p.messageId);
  if (p.creditMinor === null || p.creditMinor <= 0 || !p.currency || !isSupportedCurrency(p.currency)) {
    return holdOn(d, 'payment', { code: 'amount_unusable' }, p.messageId);
  }
  const customerId =
    s.customerId ??
    d.need(d.facts.customerMatch, {
      fact: 'customerMatch',
      integrationId: s.integrationId,
      custom: p.custom,
      payerEmail: p.payerEmail,
    });
  if (!customerId) return holdOn(d, 'payment', { code: 'no_customer_match' }, p.messageId);
  const posted = post(d, {
    customerId,
    currency: p.currency,
    amountMinor: p.creditMinor,
    idempotencyKey: creditKey(s.integrationId, s.txnId),
    reason: 'payment',
    mode: moneyModeOf(p.sandbox),
    integrationId: s.integrationId,
    txnId: s.txnId,
    messageId: p.messageId,
    ...(by ? { operator: by.operator, note: by.reason } : {}),
  });
  if (!posted.ok) return ledgerConflict(d, 'payment', posted.reason, p.messageId);
  s.customerId = customerId;
  s.creditedMinor = p.creditMinor;
  s.phase = 'credited';
  s.hold = null;
  const approved = by ? ` (approved by ${by.operator})` : '';
  d.note(`credited ${describeMoney(p.creditMinor, p.currency)} to ${customerId}${approved}`, p.messageId);
  applyWaiting(d);
}

/** Applies refunds, reversals and cancellations in arrival order once the payment is credited. */
export function applyWaiting(d: PaymentStep, by: OperatorAction | null = null): void {
  const s = d.s;
  while (s.phase === 'credited' && s.hold === null && s.waiting.length > 0) {
    const e = s.waiting[0]!;
    if (blockingFlags(d, e).length > 0 || e.creditMinor === null || e.creditMinor <= 0) {
      return holdOn(d, 'adjustment', { code: 'adjustment_checks_failed', txnId: e.txnId }, e.messageId);
    }
    if (e.currency !== s.currency)
      return holdOn(d, 'adjustment', { code: 'adjustment_currency_mismatch', txnId: e.txnId }, e.messageId);
    if (e.sandbox !== s.payment?.sandbox)
      return holdOn(d, 'adjustment', { code: 'adjustment_mode_mismatch', txnId: e.txnId }, e.messageId);
    let amount = e.creditMinor;
    if (e.kind === 'canceled_reversal') {
      const outstanding = s.reversedMinor;
      if (outstanding <= 0) {
        // Its reversal has not arrived yet (PayPal delivers out of order): it waits behind the
        // others, which must not be blocked by it; the reversal itself may be among them.
        if (s.waiting.every((w) => w.kind === 'canceled_reversal')) return;
        s.waiting.push(s.waiting.shift()!);
        continue;
      }
      amount = Math.min(amount, outstanding);
      const posted = postAdjustment(d, e, amount, by);
      if (!posted.ok) return ledgerConflict(d, 'adjustment', posted.reason, e.messageId);
      s.reversedMinor -= amount;
      s.debitedMinor -= amount;
    } else {
      const remaining = s.creditedMinor - s.debitedMinor;
      if (amount > remaining) {
        const code = e.kind === 'reversal' ? 'reversal_exceeds_original' : 'refund_exceeds_original';
        if (!s.capApproved) return holdOn(d, 'adjustment', { code, txnId: e.txnId }, e.messageId);
        amount = remaining;
      }
      if (amount > 0) {
        const posted = postAdjustment(d, e, -amount, by);
        if (!posted.ok) return ledgerConflict(d, 'adjustment', posted.reason, e.messageId);
      }
      s.capApproved = false;
      s.debitedMinor += amount;
      if (e.kind === 'reversal') s.reversedMinor += amount;
    }
    s.waiting.shift();
    const signed = e.kind === 'canceled_reversal' ? amount : -amount;
    d.note(`${e.kind} ${e.txnId}: ${describeMoney(signed, s.currency!)}`, e.messageId);
    by = null; // the operator decided about the held adjustment, not the ones behind it
  }
  if (s.waiting.length === 0) s.attention = s.attention.filter((a) => a !== ORPHAN_ATTENTION);
}

function postAdjustment(
  d: PaymentStep,
  e: LifecycleEvent,
  amountMinor: number,
  by: OperatorAction | null,
): PostingOutcome {
  const s = d.s;
  const reason = e.kind === 'canceled_reversal' ? 'canceled_reversal' : e.kind === 'reversal' ? 'reversal' : 'refund';
  return post(d, {
    customerId: s.customerId!,
    currency: s.currency!,
    amountMinor,
    idempotencyKey: adjustmentKey(e.kind, s.integrationId, e.txnId, e.paymentStatus),
    reason,
    mode: moneyModeOf(e.sandbox),
    integrationId: s.integrationId,
    txnId: e.txnId,
    parentTxnId: s.txnId,
    messageId: e.messageId,
    ...(by ? { operator: by.operator, note: by.reason } : {}),
  });
}

function ledgerConflict(d: PaymentStep, on: 'payment' | 'adjustment', reason: string, messageId: string): void {
  d.note(`the ledger refused the posting: ${reason.slice(0, 300)}`, messageId);
  holdOn(d, on, { code: 'ledger_conflict' }, messageId);
}

function holdOn(d: PaymentStep, on: 'payment' | 'adjustment', cause: PaymentHoldReason, messageId: string): void {
  const s = d.s;
  const hold = holdFor(cause, on, messageId, d.ctx.now);
  const reason = hold.reason;
  if (s.hold?.reason === reason) return;
  s.hold = hold;
  if (on === 'payment') s.phase = 'held';
  d.note(`held: ${reason}`, messageId);
  d.alert('payment_held', messageId, `${s.txnId}: ${reason}`);
}
