/**
 * What a person must look at on a recurring profile (its `attention`), and how each kind may be
 * closed. A matter is `<kind>` or `<kind>:<reference>` (a message or txn id). Pure (bundled into workflows).
 *
 * - `notice`: informs only (the state shows it too); a blanket `acknowledge` closes it.
 * - `decision`: a contradiction or something not applied (a foreign or unproven event, a refund of
 *   money never credited, PayPal contradicting a final status): closed only by an `acknowledge`
 *   naming it, so clearing the notices never hides one.
 * - `assign`: closed by assigning a customer (money waits on it).
 * - `reconcile`: an uncertain bill, closed only by evidence of what PayPal did (its IPN, or its
 *   outstanding balance after the bill's settle window), never by a person's word alone.
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
} as const;
export type MatterKind = keyof typeof MATTER_CLOSING;
export type MatterClosing = (typeof MATTER_CLOSING)[MatterKind];

export function matter(kind: MatterKind, ref?: string): string {
  return ref === undefined ? kind : `${kind}:${ref}`;
}

/** How a matter is closed; an unknown kind (from an older version) needs its own decision. */
export function closingOf(m: string): MatterClosing {
  const kind = m.split(':', 1)[0]!;
  return Object.hasOwn(MATTER_CLOSING, kind) ? MATTER_CLOSING[kind as MatterKind] : 'decision';
}
