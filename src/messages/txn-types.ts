/**
 * The txn_type values routing depends on. Apart from the schemas that mention them, and free of
 * zod, because routing runs in workflows, whose every execution evaluates the modules it imports
 * (see workflows/index.ts).
 */

/** txn_type values that mean money received by us. `masspay` is money we sent. */
export const PAYMENT_TXN_TYPES = [
  'web_accept',
  'cart',
  'express_checkout',
  'send_money',
  'virtual_terminal',
  'pro_hosted',
  'merch_pmt',
  'subscr_payment',
  'recurring_payment',
] as const;

export type PaymentTxnType = (typeof PAYMENT_TXN_TYPES)[number];

export function isPaymentTxnType(txnType: string | null): txnType is PaymentTxnType {
  return txnType !== null && (PAYMENT_TXN_TYPES as readonly string[]).includes(txnType);
}

/** txn_types that belong to a profile's life (money or not). */
export const PROFILE_TXN_TYPES = [
  'recurring_payment',
  'recurring_payment_profile_created',
  'recurring_payment_profile_cancel',
  'recurring_payment_skipped',
  'recurring_payment_failed',
  'recurring_payment_suspended',
  'recurring_payment_suspended_due_to_max_failed_payment',
  'recurring_payment_expired',
  'recurring_payment_outstanding_payment',
  'recurring_payment_outstanding_payment_failed',
  'subscr_signup',
  'subscr_payment',
  'subscr_cancel',
  'subscr_modify',
  'subscr_failed',
  'subscr_eot',
] as const;

export function isProfileTxnType(txnType: string | null): boolean {
  return txnType !== null && (PROFILE_TXN_TYPES as readonly string[]).includes(txnType);
}
