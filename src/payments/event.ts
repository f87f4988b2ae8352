import { z } from 'zod';
import { EventKindSchema } from '../shared/contract';
import { lazySchema } from '../shared/lazy-schema';

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
 * Its fields are built when a schema is (see lazy-schema.ts), for this one and for LifecycleEventSchema.
 */
export const paymentEventFields = () => ({
  messageId: z.string(),
  integrationId: z.string(),
  kind: EventKindSchema,
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
  /**
   * test_ipn=1: sandbox money, posted to sandbox accounts. Absent in states saved before the
   * field existed: those payments were posted (if at all) to live accounts, where their refunds
   * and retried postings must go too (see loadPaymentState).
   */
  sandbox: z.boolean().default(false),
  receivedAt: z.string(),
});
export const PaymentEventSchema = lazySchema(() => z.object(paymentEventFields()));
export type PaymentEvent = z.infer<typeof PaymentEventSchema>;
