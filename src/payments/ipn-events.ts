import type { MessageOutcomeRecord } from '../messages/state';
import { notApplied } from '../shared/rules-kit';
import type { PaymentStep } from './decide-kit';
import { paymentMatter } from './matters';
import { applyWaiting, credit } from './money';
import type { LifecycleEvent } from './state';

/**
 * What an IPN about a payment does to it: refused when it is another payment's, ignored when
 * already applied (by txn and status, or by dispute case), shown to a person when no verified
 * message backs it; else a status of the payment itself, a dispute, or an adjustment that waits
 * for the payment to be credited (money.ts).
 */

const NO_MONEY_STATUSES = ['Denied', 'Failed', 'Expired', 'Voided', 'Declined'];

export function onIpn(d: PaymentStep, e: LifecycleEvent): MessageOutcomeRecord {
  const s = d.s;
  if (e.integrationId !== s.integrationId || e.paymentTxnId !== s.txnId) {
    // Another payment's event: applying it here would move money on the wrong transaction.
    d.attend(paymentMatter('foreign_event', e.messageId));
    d.note(`refused an event for ${e.integrationId}/${e.paymentTxnId}: not this payment`, e.messageId);
    d.alert(
      'payment_foreign_event',
      e.messageId,
      `${s.integrationId}/${s.txnId} got an event for ${e.integrationId}/${e.paymentTxnId}`,
    );
    return notApplied.foreign(e.messageId, 'event for another payment');
  }
  const key = e.kind === 'dispute' ? `case:${e.caseId ?? e.messageId}` : `${e.txnId}:${e.paymentStatus}`;
  if (s.processedKeys.includes(key)) {
    d.note(`duplicate of ${key}: ignored`, e.messageId);
    return notApplied.duplicate(e.messageId, key);
  }
  // Money moves only on what a stored, verified message says: a hand-made event (say, a signal
  // typed into the Web UI) proves nothing and is shown to a person instead.
  const proof = d.need(d.facts.proof, { fact: 'proof', event: e });
  if (!proof.ok) {
    d.attend(paymentMatter('unproven_event', e.messageId));
    d.note(`ignored an event that no verified message backs: ${proof.reason}`, e.messageId);
    d.alert('payment_unproven_event', e.messageId, `${s.txnId}: ${proof.reason}`);
    return notApplied.unproven(e.messageId, proof.reason);
  }
  s.processedKeys.push(key);
  switch (e.kind) {
    case 'payment':
      onPaymentStatus(d, e);
      break;
    case 'dispute':
      d.attend(paymentMatter('dispute', (e.caseId ?? 'no-case-id').slice(0, 64)));
      d.note(`dispute opened (${e.caseId ?? 'no case id'})`, e.messageId);
      d.alert('dispute_opened', e.messageId, `dispute on ${s.txnId}`);
      break;
    default:
      s.waiting.push(e);
      d.note(`${e.kind} ${e.txnId} received`, e.messageId);
      applyWaiting(d);
  }
  return {
    messageId: e.messageId,
    outcome: `applied:${s.phase}`,
    detail: s.hold?.reason ?? s.history.at(-1)?.what ?? '',
  };
}

function onPaymentStatus(d: PaymentStep, e: LifecycleEvent): void {
  const s = d.s;
  // Nothing follows Completed on the payment's own txn (later money moves come as refunds and
  // reversals with their own txn ids): a status arriving after it was sent earlier and delivered
  // late, and must not replace the Completed a held payment is waiting to credit.
  if (s.phase === 'credited' || s.phase === 'rejected' || s.payment?.paymentStatus === 'Completed') {
    const after = s.payment?.paymentStatus === 'Completed' ? `Completed (${s.phase})` : s.phase;
    d.note(`${e.paymentStatus} after ${after}: recorded`, e.messageId);
    return;
  }
  s.paymentStatus = e.paymentStatus;
  s.payment = e;
  s.currency = e.currency;
  if (e.paymentStatus === 'Completed') {
    credit(d, null);
  } else if (NO_MONEY_STATUSES.includes(e.paymentStatus)) {
    if (s.hold?.on === 'payment') s.hold = null;
    s.phase = 'not_paid';
    d.note(`${e.paymentStatus}: no money moves`, e.messageId);
  } else {
    // Pending (any pending_reason), Created, Processed: wait for Completed.
    if (s.hold?.on !== 'payment') s.phase = 'pending';
    const why = e.pendingReason ? ` (${e.pendingReason})` : '';
    d.note(`${e.paymentStatus}${why}: waiting for Completed`, e.messageId);
  }
}
