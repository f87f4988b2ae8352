import { acknowledgeMatters, matter, type AcknowledgeRefusal, type ClosingTable } from '../shared/matters';

/**
 * What a person must look at on a payment (its `attention`), and how each kind is closed (the
 * closing kinds and the acknowledge rule are shared: see matters.ts). Holds (failed checks, a refund
 * exceeding the original, a ledger conflict) are not matters: approve or reject decides them.
 *
 * No payment matter merely informs, so a blanket `acknowledge` closes none: each needs its own
 * decision, naming it, and clearing one never clears another.
 */
export const PAYMENT_MATTER_CLOSING = {
  /** The rules failed on an input, which was dropped: whatever it meant never happened. */
  internal_error: 'decision',
  /** An event for another payment, not applied here. */
  foreign_event: 'decision',
  /** An event no verified message backs, not applied. */
  unproven_event: 'decision',
  /**
   * A dispute moves no money here (a reversal, if any, comes as its own IPN), but a person must
   * answer it at PayPal before PayPal's deadline: a blanket click must not close it unanswered.
   */
  dispute: 'decision',
  /**
   * Refunds or reversals waiting for a payment we never credited. Not a person's word to close:
   * they apply (and the matter closes) when the payment arrives; acknowledged, the waiting
   * refund's deadline has passed, so the same matter would be raised again at once.
   */
  adjustment_without_payment: 'reconcile',
} as const satisfies ClosingTable;
export type PaymentMatterKind = keyof typeof PAYMENT_MATTER_CLOSING;

/** A payment matter's name (`dispute:<case id>`), of a kind the table knows. */
export function paymentMatter(kind: PaymentMatterKind, ref?: string): string {
  return matter(kind, ref);
}

/** Refusal rule: a refund waiting for its payment is closed by the payment arriving. */
export const ADJUSTMENT_WAITS_RULE = 'adjustment_waits_for_payment' as const;

/** The rules an acknowledge is refused by (the shared ones, and the payment's own). */
export type MatterRule = Exclude<AcknowledgeRefusal['rule'], 'closed_otherwise'> | typeof ADJUSTMENT_WAITS_RULE;

export interface MatterRefusal {
  rule: MatterRule;
  detail: string;
}

/**
 * Why an acknowledge (naming `named`, or none) is refused on this payment, or null. `namedMatters`
 * false: the rule before matters were named (a blanket acknowledge closed everything), kept for
 * histories recorded then.
 */
export function acknowledgeRefusal(
  s: { txnId: string; attention: string[] },
  named: string | undefined,
  namedMatters = true,
): MatterRefusal | null {
  const ack = acknowledgeMatters(PAYMENT_MATTER_CLOSING, s.attention, named, s.txnId);
  if (ack.ok) return null;
  if (ack.rule === 'nothing_to_acknowledge') return { rule: ack.rule, detail: ack.detail };
  if (!namedMatters) return null;
  if (ack.rule === 'closed_otherwise')
    return {
      rule: ADJUSTMENT_WAITS_RULE,
      detail: `${named} closes when the payment arrives and the waiting refunds apply, not by acknowledgement`,
    };
  return { rule: ack.rule, detail: ack.detail };
}

/** What an acknowledge that was not refused closes, and what stays open. */
export function acknowledged(
  s: { txnId: string; attention: string[] },
  named: string | undefined,
  namedMatters = true,
): { closed: string[]; open: string[] } {
  if (!namedMatters) return { closed: [...s.attention], open: [] };
  const ack = acknowledgeMatters(PAYMENT_MATTER_CLOSING, s.attention, named, s.txnId);
  return ack.ok ? { closed: ack.closed, open: ack.open } : { closed: [], open: [...s.attention] };
}
