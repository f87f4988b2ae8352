import { describeMoney, isSupportedCurrency } from '../shared/money';
import { moneyModeOf } from '../shared/money-mode';
import { reasonText } from '../shared/hold-reasons';
import { notApplied } from '../shared/rules-kit';
import type { MessageOutcomeRecord } from '../messages/state';
import type { Posting, PostingOutcome } from '../shared/ledger';
import { adjustmentKey, creditKey } from '../shared/ids';
import { INFORMATIONAL_FLAGS, type LifecycleEvent } from '../payments/state';
import type { ProfileAction } from './actions';
import { ATTENTION, type ProfileStep } from './decide-kit';
import { matter } from './matters';
import { secs, setField, TERMINAL } from './observed-fields';
import type { CyclePayment, ProfileEvent, ProfileHoldReason } from './state';

/**
 * A profile's money: cycle payments credited once per PayPal transaction (the ledger key is the one
 * a payment entity would use for the same txn, so even a misrouted copy cannot credit twice), held
 * for a person when checks fail or no customer matches, and refunds, reversals and disputes of them.
 */

const PAYMENTS_LIMIT = 100;

export function onPayment(d: ProfileStep, e: ProfileEvent): void {
  const s = d.s;
  let p = s.payments.find((x) => x.txnId === e.txnId);
  if (p?.paymentStatus === 'Completed') {
    d.note('ipn', `${e.txnId} ${e.paymentStatus} after Completed: recorded`, e.messageId);
    return;
  }
  const fresh: CyclePayment = {
    txnId: e.txnId!,
    txnType: e.txnType,
    paymentStatus: e.paymentStatus!,
    messageId: e.messageId,
    currency: e.currency,
    grossMinor: e.grossMinor,
    creditMinor: e.creditMinor,
    flags: e.flags,
    sandbox: e.sandbox,
    at: e.eventAt,
    creditedMinor: 0,
    debitedMinor: 0,
    held: null,
    holdCause: null,
  };
  if (p) Object.assign(p, fresh);
  else {
    p = fresh;
    s.payments.push(p);
    if (s.payments.length > PAYMENTS_LIMIT) s.payments.splice(0, s.payments.length - PAYMENTS_LIMIT);
  }
  if (e.paymentStatus !== 'Completed') return;
  const final = s.fields.status;
  if (d.rules.namedMatters && s.status && TERMINAL.includes(s.status) && final && e.dated) {
    // Money PayPal collected is credited as received; that it was collected at all needs a person.
    if (secs(e.eventAt) > secs(final.at)) {
      d.contradiction(
        matter('payment_after_final', p.txnId),
        e.messageId,
        `${p.txnId} Completed on ${e.eventAt}, after ${s.status} as of ${final.at}`,
      );
    }
  }
  // A payment on time clears the failures before it (PayPal counts consecutive failures).
  const failed = s.fields.failedPaymentCount;
  if (!failed || e.eventAt >= failed.at)
    setField(d, 'failedPaymentCount', 0, { source: 'ipn', at: e.eventAt, dated: e.dated, by: e.messageId });
  d.effects.push({ type: 'claim_txn', txnId: p.txnId });
  credit(d, p, null);
}

export function blockingFlags(d: ProfileStep, flags: string[]): string[] {
  return flags.filter((f) => !INFORMATIONAL_FLAGS.includes(f) && !d.s.approvedFlags.includes(f));
}

/** Credits a Completed payment once (mc_gross, not the profile's amount: a catch-up carries more). */
function credit(d: ProfileStep, p: CyclePayment, by: ProfileAction | null): void {
  const s = d.s;
  const blocking = blockingFlags(d, p.flags);
  if (blocking.length > 0) return hold(d, p, { code: 'checks_failed', flags: blocking });
  if (p.creditMinor === null || p.creditMinor <= 0 || !p.currency || !isSupportedCurrency(p.currency))
    return hold(d, p, { code: 'amount_unusable' });
  const customerId = s.customerId ?? match(d);
  if (!customerId) {
    d.attend(ATTENTION.noCustomer);
    return hold(d, p, { code: 'no_customer_match' });
  }
  const posted = post(d, {
    customerId,
    currency: p.currency,
    amountMinor: p.creditMinor,
    idempotencyKey: creditKey(s.integrationId, p.txnId),
    reason: 'payment',
    mode: moneyModeOf(p.sandbox),
    integrationId: s.integrationId,
    txnId: p.txnId,
    messageId: p.messageId,
    ...(by ? { operator: by.operator, note: by.reason } : {}),
  });
  if (!posted.ok) {
    d.note('workflow', `the ledger refused crediting ${p.txnId}: ${posted.reason.slice(0, 300)}`, p.messageId);
    return hold(d, p, { code: 'ledger_conflict' });
  }
  if (s.customerId === null) {
    s.customerId = customerId;
    s.fields.customerId = { source: 'ipn', at: d.ctx.now, dated: false, by: p.messageId };
  }
  p.creditedMinor = p.creditMinor;
  p.held = null;
  p.holdCause = null;
  s.creditedMinor += p.creditMinor;
  d.note('workflow', `credited ${describeMoney(p.creditMinor, p.currency)} (${p.txnId}) to ${customerId}`, p.messageId);
}

function post(d: ProfileStep, posting: Posting): PostingOutcome {
  return d.need(d.facts.postings?.[posting.idempotencyKey], { fact: 'posting', posting });
}

function match(d: ProfileStep): string | null {
  const s = d.s;
  return d.need(d.facts.customerMatch, {
    fact: 'customerMatch',
    integrationId: s.integrationId,
    custom: s.custom,
    payerEmail: s.payerEmail,
  });
}

export function matchOrAttend(d: ProfileStep, messageId: string): void {
  const found = match(d);
  const s = d.s;
  if (found) {
    s.customerId = found;
    s.fields.customerId = { source: 'ipn', at: d.ctx.now, dated: false, by: messageId };
    return;
  }
  d.attend(ATTENTION.noCustomer);
  d.note('workflow', 'no customer matches the payer: held for an operator to assign one', messageId);
  d.alert('profile_held', messageId, `${s.profileId}: no customer matches`);
}

function hold(d: ProfileStep, p: CyclePayment, cause: ProfileHoldReason): void {
  const reason = reasonText(cause);
  if (p.held === reason) return;
  p.held = reason;
  p.holdCause = cause;
  d.note('workflow', `${p.txnId} held: ${reason}`, p.messageId);
  d.alert('profile_payment_held', p.messageId, `${d.s.profileId}/${p.txnId}: ${reason}`);
}

export function releaseHeld(d: ProfileStep, by: ProfileAction): void {
  for (const p of d.s.payments) if (p.held !== null && p.paymentStatus === 'Completed') credit(d, p, by);
}

export function onAdjustment(d: ProfileStep, e: LifecycleEvent): MessageOutcomeRecord {
  const s = d.s;
  const p = s.payments.find((x) => x.txnId === e.paymentTxnId);
  const key = e.kind === 'dispute' ? `case:${e.caseId ?? e.messageId}` : `${e.txnId}:${e.paymentStatus}`;
  if (e.integrationId !== s.integrationId || !p) {
    d.attend(matter('foreign_event', e.messageId));
    d.alert(
      'profile_foreign_event',
      e.messageId,
      `${s.profileId} got a ${e.kind} of ${e.paymentTxnId}, not one of its payments`,
    );
    return notApplied.foreign(e.messageId, 'not a payment of this profile');
  }
  if (s.processedKeys.includes(key)) {
    return notApplied.duplicate(e.messageId, key);
  }
  const proof = d.need(d.facts.proof, { fact: 'adjustmentProof', event: e });
  if (!proof.ok) {
    d.attend(matter('unproven_event', e.messageId));
    d.alert('profile_unproven_event', e.messageId, `${s.profileId}: ${proof.reason}`);
    return notApplied.unproven(e.messageId, proof.reason);
  }
  s.processedKeys.push(key);
  const attendAdjustment = (why: string) => {
    d.attend(matter(e.kind, e.txnId));
    d.note('ipn', `${e.kind} ${e.txnId} of ${p.txnId} needs a person: ${why}`, e.messageId);
    d.alert('profile_adjustment_held', e.messageId, `${s.profileId}/${p.txnId}: ${why}`);
  };
  if (e.kind === 'dispute') attendAdjustment(`dispute ${e.caseId ?? ''} opened`);
  else if (p.creditedMinor <= 0) attendAdjustment('the payment was never credited');
  else if (blockingFlags(d, e.flags).length > 0 || e.creditMinor === null || e.currency !== p.currency) {
    attendAdjustment('checks failed or another currency');
  } else if (e.kind === 'canceled_reversal') {
    const amount = Math.min(e.creditMinor, p.debitedMinor);
    if (amount > 0 && postAdjustment(d, e, p, amount)) {
      p.debitedMinor -= amount;
      s.debitedMinor -= amount;
    }
  } else {
    const remaining = p.creditedMinor - p.debitedMinor;
    if (e.creditMinor > remaining)
      attendAdjustment(`${describeMoney(e.creditMinor, p.currency!)} exceeds what remains`);
    else if (postAdjustment(d, e, p, -e.creditMinor)) {
      p.debitedMinor += e.creditMinor;
      s.debitedMinor += e.creditMinor;
    }
  }
  return {
    messageId: e.messageId,
    outcome: `applied:${s.status ?? 'unknown'}`,
    detail: s.history.at(-1)?.what ?? '',
  };
}

function postAdjustment(d: ProfileStep, e: LifecycleEvent, p: CyclePayment, amountMinor: number): boolean {
  const s = d.s;
  const reason = e.kind === 'canceled_reversal' ? 'canceled_reversal' : e.kind === 'reversal' ? 'reversal' : 'refund';
  const posted = post(d, {
    customerId: s.customerId!,
    currency: p.currency!,
    amountMinor,
    idempotencyKey: adjustmentKey(e.kind, s.integrationId, e.txnId, e.paymentStatus),
    reason,
    mode: moneyModeOf(p.sandbox),
    integrationId: s.integrationId,
    txnId: e.txnId,
    parentTxnId: p.txnId,
    messageId: e.messageId,
  });
  if (!posted.ok) {
    d.attend(matter('ledger_conflict', e.txnId));
    d.alert('profile_adjustment_held', e.messageId, `${s.profileId}/${e.txnId}: ${posted.reason.slice(0, 200)}`);
    return false;
  }
  d.note('ipn', `${e.kind} ${e.txnId} of ${p.txnId}: ${describeMoney(amountMinor, p.currency!)}`, e.messageId);
  return true;
}
