import { z } from 'zod';
import { lazySchema } from '../shared/lazy-schema';
import type { IpnSummary } from './summary';
import { isProfileTxnType, PAYMENT_TXN_TYPES } from './txn-types';
import { isIdPart } from '../shared/limits';
import { EventKindSchema } from '../shared/contract';

export const KNOWN_PAYMENT_STATUSES = [
  'Canceled_Reversal',
  'Completed',
  'Created',
  'Denied',
  'Expired',
  'Failed',
  'Pending',
  'Refunded',
  'Reversed',
  'Processed',
  'Voided',
  'Declined',
] as const;

/**
 * Where a message belongs, decided once at intake from its bytes and stored with it (`route`): the
 * dispatcher, the relay and the workflow that takes the message read it there, never classify again.
 */
export const RouteSchema = lazySchema(() =>
  z.discriminatedUnion('kind', [
    // One payment's own message, or one that adjusts it (refund, reversal, canceled reversal, dispute).
    z.object({ kind: EventKindSchema.exclude(['dispute']), paymentTxnId: z.string() }),
    z.object({ kind: z.literal('dispute'), paymentTxnId: z.string() }),
    z.object({ kind: z.literal('masspay') }),
    z.object({ kind: z.literal('profile'), profileId: z.string() }),
    z.object({ kind: z.literal('lifecycle'), reason: z.string() }),
    z.object({ kind: z.literal('unknown'), reason: z.string() }),
  ]),
);
export type Route = z.infer<typeof RouteSchema>;
/** A route to one payment's entity. */
export type PaymentRoute = Extract<Route, { paymentTxnId: string }>;

/**
 * Decides which business process a verified IPN belongs to. Direction comes from
 * payment_status, never from the presence of parent_txn_id: an authorization capture
 * carries parent_txn_id too, with positive amounts, and is a payment.
 */
export function classify(s: IpnSummary): Route {
  if (s.txnType === 'masspay') return { kind: 'masspay' };
  const profile = profileRoute(s);
  if (profile) return profile;
  if (s.txnType === 'new_case') {
    return s.txnId
      ? { kind: 'dispute', paymentTxnId: s.txnId }
      : { kind: 'unknown', reason: 'new_case without txn_id' };
  }
  if (!s.txnId || !s.paymentStatus) {
    return { kind: 'lifecycle', reason: s.txnType ? `${s.txnType} (no money)` : 'no txn_id or payment_status' };
  }
  if (!(KNOWN_PAYMENT_STATUSES as readonly string[]).includes(s.paymentStatus)) {
    return { kind: 'unknown', reason: `unknown payment_status ${s.paymentStatus}` };
  }
  const adjusts = s.parentTxnId ?? undefined;
  switch (s.paymentStatus) {
    case 'Refunded':
      return adjusts
        ? { kind: 'refund', paymentTxnId: adjusts }
        : { kind: 'unknown', reason: 'Refunded without parent_txn_id' };
    case 'Reversed':
      return adjusts
        ? { kind: 'reversal', paymentTxnId: adjusts }
        : { kind: 'unknown', reason: 'Reversed without parent_txn_id' };
    case 'Canceled_Reversal':
      return adjusts
        ? { kind: 'canceled_reversal', paymentTxnId: adjusts }
        : { kind: 'unknown', reason: 'Canceled_Reversal without parent_txn_id' };
  }
  if (s.txnType && !(PAYMENT_TXN_TYPES as readonly string[]).includes(s.txnType) && s.txnType !== 'adjustment') {
    // Money under a type we do not handle as a payment (an unknown type, or a lifecycle type such
    // as an outstanding recurring payment) is routed as one: its type check holds it for a person
    // with an alert, where "no money" would have dropped it silently.
    if (!carriesMoneyIn(s)) return { kind: 'lifecycle', reason: `${s.txnType} is not a payment received` };
  }
  return { kind: 'payment', paymentTxnId: s.txnId };
}

/** A completed (or pending) positive amount: money that reached us whatever the message calls itself. */
function carriesMoneyIn(s: IpnSummary): boolean {
  if (s.paymentStatus !== 'Completed' && s.paymentStatus !== 'Pending') return false;
  const gross = s.gross?.trim() ?? '';
  return /^\d+(\.\d+)?$/.test(gross) && /[1-9]/.test(gross);
}

/**
 * Recurring-profile and subscription messages belong to their profile, money included: it owns its
 * cycle payments (their refunds, routed by parent_txn_id, reach it through the payment's claim).
 */
function profileRoute(s: IpnSummary): Route | null {
  const adjustment = ['Refunded', 'Reversed', 'Canceled_Reversal'].includes(s.paymentStatus ?? '');
  if (!isProfileTxnType(s.txnType) || adjustment) return null;
  const profileId = s.recurringPaymentId ?? s.subscrId;
  if (profileId === null) return { kind: 'unknown', reason: `${s.txnType} without recurring_payment_id or subscr_id` };
  if (!isIdPart(profileId)) return { kind: 'unknown', reason: `${s.txnType}: profile id is not a PayPal id` };
  return { kind: 'profile', profileId };
}

/**
 * The payment entity a message goes to, or null when processIpn takes it. One door per payment:
 * the payment's own messages and those adjusting it (refund, reversal, canceled reversal, dispute:
 * by parent_txn_id) go to that payment's workflow, which verifies and checks them itself. Only what
 * fans out (Mass Pay, profiles), carries no money, or cannot be classified keeps processIpn.
 */
export function paymentTxnOf(route: Route | null): string | null {
  return route && 'paymentTxnId' in route && isIdPart(route.paymentTxnId) ? route.paymentTxnId : null;
}
