import { closingOf as closingIn, matter as matterOf, type ClosingTable, type MatterClosing } from '../shared/matters';

/**
 * What a person must look at on a recurring profile (its `attention`), and how each kind may be
 * closed (the closing kinds and the acknowledge rule are shared: see matters.ts).
 *
 * - `decision`: a contradiction or something not applied (a foreign or unproven event, a refund of
 *   money never credited, PayPal contradicting a final status).
 * - `assign`: money waits for a customer. `reconcile`: an uncertain bill, closed only by evidence of
 *   what PayPal did (its IPN, or its outstanding balance after the bill's settle window).
 */
export const MATTER_CLOSING = {
  suspended_max_failed_payments: 'notice',
  outstanding_over_threshold: 'notice',
  no_customer_match: 'assign',
  bill_uncertain: 'reconcile',
  internal_error: 'decision',
  foreign_event: 'decision',
  unproven_event: 'decision',
  checks_failed: 'decision',
  ledger_conflict: 'decision',
  payment: 'decision',
  refund: 'decision',
  reversal: 'decision',
  canceled_reversal: 'decision',
  dispute: 'decision',
  /** A dated IPN reporting a live status after PayPal's own Cancelled/Expired. */
  final_status_contradicted: 'decision',
  /** A Completed payment dated after the profile was Cancelled/Expired. */
  payment_after_final: 'decision',
} as const satisfies ClosingTable;
export type MatterKind = keyof typeof MATTER_CLOSING;
export type { MatterClosing };

export function matter(kind: MatterKind, ref?: string): string {
  return matterOf(kind, ref);
}

/** How a profile matter is closed; an unknown kind (from an older version) needs its own decision. */
export function closingOf(m: string): MatterClosing {
  return closingIn(MATTER_CLOSING, m);
}
