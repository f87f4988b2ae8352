import type { MessageOutcomeRecord } from '../messages/state';
import { notApplied } from '../shared/rules-kit';
import { ATTENTION, type ProfileStep } from './decide-kit';
import { blockingFlags, matchOrAttend, onPayment } from './money';
import { matter } from './matters';
import { reconcileBill } from './nvp-actions';
import { checkOutstanding, setField, setStatus, summary } from './observed-fields';
import { PROFILE_MONEY_TXN_TYPES, statusOfTxnType, type ProfileEvent, type Stamp } from './state';

/**
 * What PayPal's IPNs about a profile do to it. They arrive late, twice, out of order and not always
 * of the kind expected: each is applied once (by key), only when a verified message backs it, and
 * each field it carries only when it is newer than what we know (observed-fields.ts).
 */

const KEYS_LIMIT = 500;

export function onIpn(d: ProfileStep, e: ProfileEvent): MessageOutcomeRecord {
  const s = d.s;
  if (e.integrationId !== s.integrationId || e.profileId !== s.profileId) {
    d.attend(matter('foreign_event', e.messageId));
    d.note('ipn', `refused an event for ${e.integrationId}/${e.profileId}: not this profile`, e.messageId);
    d.alert('profile_foreign_event', e.messageId, `${s.profileId} got an event for ${e.integrationId}/${e.profileId}`);
    return notApplied.foreign(e.messageId, 'event for another profile');
  }
  const isMoney = PROFILE_MONEY_TXN_TYPES.includes(e.txnType) && e.txnId !== null && e.paymentStatus !== null;
  const key = isMoney ? `${e.txnId}:${e.paymentStatus}` : `evt:${e.dedupeKey}`;
  if (s.processedKeys.includes(key)) {
    d.note('ipn', `duplicate ${e.txnType} (${key.slice(0, 80)}): ignored`, e.messageId);
    return notApplied.duplicate(e.messageId, String(e.txnType));
  }
  const proof = d.need(d.facts.proof, { fact: 'proof', event: e });
  if (!proof.ok) {
    d.attend(matter('unproven_event', e.messageId));
    d.note('ipn', `ignored an event that no verified message backs: ${proof.reason}`, e.messageId);
    d.alert('profile_unproven_event', e.messageId, `${s.profileId}: ${proof.reason}`);
    return notApplied.unproven(e.messageId, proof.reason);
  }
  s.processedKeys.push(key);
  if (s.processedKeys.length > KEYS_LIMIT) s.processedKeys.splice(0, s.processedKeys.length - KEYS_LIMIT);

  const blocking = blockingFlags(d, e.flags);
  if (blocking.length > 0 && !isMoney) {
    // Another account's profile, or a live message on a sandbox integration: it must not steer ours.
    d.attend(matter('checks_failed', e.messageId));
    d.note('ipn', `${e.txnType} not applied: checks failed (${blocking.join(',')})`, e.messageId);
    d.alert('profile_event_checks_failed', e.messageId, `${s.profileId}: ${blocking.join(',')}`);
    return {
      messageId: e.messageId,
      outcome: `applied:${s.status ?? 'unknown'}`,
      detail: `checks failed: ${blocking.join(',')}`,
    };
  }
  if (s.sandbox === null) s.sandbox = e.sandbox;
  if (s.payerEmail === null) s.payerEmail = e.payerEmail;
  if (s.custom === null) s.custom = e.custom;

  const stamp: Stamp = { source: 'ipn', at: e.eventAt, dated: e.dated, by: e.messageId };
  const before = summary(s);
  const target = e.profileStatus ?? statusOfTxnType(e.txnType);
  if (target) setStatus(d, target, stamp, e.messageId);
  if (e.currency) setField(d, 'currency', e.currency, stamp);
  if (e.amountPerCycleMinor !== null && e.txnType !== 'recurring_payment_outstanding_payment') {
    setField(d, 'amountPerCycle', e.amountPerCycleMinor, stamp);
  }
  if (e.outstandingMinor !== null) setField(d, 'outstanding', e.outstandingMinor, stamp);
  if (e.txnType.startsWith('recurring_payment') || e.nextPaymentDate !== null)
    setField(d, 'nextPaymentDate', e.nextPaymentDate, stamp);
  if (['recurring_payment_skipped', 'recurring_payment_failed', 'subscr_failed'].includes(e.txnType)) {
    setField(d, 'failedPaymentCount', s.failedPaymentCount + 1, stamp, true);
  }
  const after = summary(s);
  const what = `${e.txnType}${e.paymentStatus ? ` ${e.paymentStatus}` : ''}`;
  d.note('ipn', `${what}${before === after ? ' (nothing newer)' : `: ${after}`}`, e.messageId);
  if (e.initialPaymentStatus === 'Failed')
    d.alert('profile_initial_payment_failed', e.messageId, `${s.profileId}: initial payment failed`);

  if (e.txnType.startsWith('recurring_payment_outstanding_payment')) {
    s.billQueued = null;
    // PayPal runs one outstanding payment at a time and announces each: this is the bill's result.
    reconcileBill(d, { by: 'paypal', ipn: e });
  }
  if (isMoney) onPayment(d, e);
  else if (s.customerId === null && !s.attention.includes(ATTENTION.noCustomer)) matchOrAttend(d, e.messageId);

  if (
    e.txnType === 'recurring_payment_suspended_due_to_max_failed_payment' &&
    !s.attention.includes(ATTENTION.maxFailed)
  ) {
    d.attend(ATTENTION.maxFailed);
    d.alert('profile_suspended_max_failed', e.messageId, `${s.profileId} suspended after the maximum failed payments`);
  }
  checkOutstanding(d, e.messageId);
  return {
    messageId: e.messageId,
    outcome: `applied:${s.status ?? 'unknown'}`,
    detail: s.history.at(-1)?.what ?? '',
  };
}
