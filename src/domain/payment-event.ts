import { z } from 'zod';

/** Why a payment waits for a person, or why a message did not move money. */
export const CheckFlagSchema = z.enum([
  'unverified',
  'receiver_mismatch',
  'currency_not_allowed',
  'txn_type_not_allowed',
  'malformed_amount',
  'live_message_on_sandbox',
  /** A payment whose gross is negative: never credited as positive. */
  'negative_amount',
]);
export type CheckFlag = z.infer<typeof CheckFlagSchema>;

/**
 * One verified IPN, reduced to what a payment's lifecycle needs. Refunds, reversals and
 * their cancellations are routed to the lifecycle of the payment they adjust (parentTxnId).
 */
export const PaymentEventSchema = z.object({
  messageId: z.string(),
  integrationId: z.string(),
  kind: z.enum(['payment', 'refund', 'reversal', 'canceled_reversal', 'dispute']),
  /** This message's own txn_id (a refund has its own, new one). */
  txnId: z.string(),
  /** The payment whose lifecycle this event belongs to. */
  paymentTxnId: z.string(),
  paymentStatus: z.string(),
  pendingReason: z.string().nullable(),
  reasonCode: z.string().nullable(),
  txnType: z.string().nullable(),
  currency: z.string().nullable(),
  /** Absolute amounts in minor units; null when the message carries none (disputes). */
  grossMinor: z.number().int().nullable(),
  feeMinor: z.number().int().nullable(),
  payerEmail: z.string().nullable(),
  custom: z.string().nullable(),
  caseId: z.string().nullable(),
  flags: z.array(CheckFlagSchema),
  receivedAt: z.string(),
  /**
   * Sandbox money (`test_ipn=1`), kept in accounts apart from live money. States saved before the
   * field existed had only live integrations' money in them credited to live accounts: false.
   */
  sandbox: z.boolean().default(false),
});
export type PaymentEvent = z.infer<typeof PaymentEventSchema>;
