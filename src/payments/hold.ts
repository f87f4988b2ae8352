import { z } from 'zod';
import { lazySchema } from '../shared/lazy-schema';
import {
  aboutTxn,
  amountUnusableReason,
  checksFailedReason,
  ledgerConflictReason,
  noCustomerMatchReason,
  parseReasonText,
  reasonText,
  unrecognizedReason,
} from '../shared/hold-reasons';

/**
 * Why a payment, or the adjustment first in line on it, waits for a person (see shared/hold-reasons.ts).
 * Holds on the payment: its checks failed, its amount is unusable, no customer matches, the ledger
 * refused it. Holds on an adjustment (refund, reversal…) name its txn id.
 */
export const PaymentHoldReasonSchema = lazySchema(() =>
  z.discriminatedUnion('code', [
    checksFailedReason(),
    amountUnusableReason(),
    noCustomerMatchReason(),
    ledgerConflictReason(),
    aboutTxn('adjustment_checks_failed'),
    aboutTxn('adjustment_currency_mismatch'),
    aboutTxn('adjustment_mode_mismatch'),
    /** More would be refunded or reversed than remains credited: approving caps it at what remains. */
    aboutTxn('refund_exceeds_original'),
    aboutTxn('reversal_exceeds_original'),
    unrecognizedReason(),
  ]),
);
export type PaymentHoldReason = z.infer<typeof PaymentHoldReasonSchema>;

/** Whether approving this hold lets the adjustment be capped at what remains credited. */
export function capsOnApprove(cause: PaymentHoldReason): boolean {
  return cause.code === 'refund_exceeds_original' || cause.code === 'reversal_exceeds_original';
}

export function parsePaymentHoldReason(text: string): PaymentHoldReason {
  return parseReasonText(PaymentHoldReasonSchema, text);
}

const holdFields = () =>
  z.object({
    /** The text form of `cause` (what the admin API, alerts and the history show). */
    reason: z.string(),
    cause: PaymentHoldReasonSchema,
    on: z.enum(['payment', 'adjustment']),
    messageId: z.string(),
    since: z.string(),
  });

/**
 * A hold as saved. Snapshots and running workflows from before the reasons were typed carry the
 * text alone (`reason`): its `cause` is read back from it.
 */
export const PaymentHoldSchema = lazySchema(() =>
  z.preprocess((saved) => {
    if (saved === null || typeof saved !== 'object' || 'cause' in saved) return saved;
    const { reason } = saved as { reason?: unknown };
    return typeof reason === 'string' ? { ...saved, cause: parsePaymentHoldReason(reason) } : saved;
  }, holdFields()),
);
export type PaymentHold = z.infer<ReturnType<typeof holdFields>>;

/** A hold on `on` for `cause`, with its text beside it. */
export function holdFor(
  cause: PaymentHoldReason,
  on: PaymentHold['on'],
  messageId: string,
  since: string,
): PaymentHold {
  return { reason: reasonText(cause), cause, on, messageId, since };
}
