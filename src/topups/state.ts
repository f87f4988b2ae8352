import { z } from 'zod';
import { MoneyModeSchema } from '../shared/money-mode';

/** Which PayPal API a top-up goes through: Orders v2 (REST app) or Express Checkout (NVP signature). */
export const TopupApiSchema = z.enum(['orders', 'express']);
export type TopupApi = z.infer<typeof TopupApiSchema>;

/**
 * Where a top-up stands. `created`: waiting for the buyer at PayPal; `capturing`: the buyer approved,
 * the capture is asked for; `pending`: PayPal captured but holds the money (waits for COMPLETED);
 * `completed`: captured, the credit is being posted; `credited`: the ledger holds its one entry.
 * The rest are ends where no money moved.
 */
export const TopupPhaseSchema = z.enum([
  'created',
  'capturing',
  'pending',
  'completed',
  'credited',
  'cancelled',
  'expired',
  'failed',
  'held',
]);
export type TopupPhase = z.infer<typeof TopupPhaseSchema>;

/** Why a top-up ended without money, or waits for a person: typed, never a sentence to parse. */
export const TopupReasonSchema = z.enum([
  'buyer_cancelled',
  'not_approved_in_time',
  'capture_declined',
  'amount_mismatch',
  'payee_mismatch',
  'ledger_refused',
  'order_voided',
]);
export type TopupReason = z.infer<typeof TopupReasonSchema>;

/** PayPal's capture as read back (capture answer, GET order/capture, GetTransactionDetails). */
export const CaptureViewSchema = z.object({
  /** PayPal's transaction id: the payment entity's key, the credit's idempotency key. */
  id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  status: z.enum(['COMPLETED', 'PENDING', 'DECLINED', 'FAILED', 'REFUNDED', 'PARTIALLY_REFUNDED']),
  currency: z.string(),
  grossMinor: z.number().int(),
  feeMinor: z.number().int(),
  /** The capture went to one of the integration's own accounts. */
  payeeOk: z.boolean(),
});
export type CaptureView = z.infer<typeof CaptureViewSchema>;

/** What PayPal says of the top-up's order (or Express Checkout token) now. */
export const PayPalViewSchema = z.object({
  order: z.enum(['CREATED', 'APPROVED', 'COMPLETED', 'VOIDED', 'UNKNOWN']),
  capture: CaptureViewSchema.nullable(),
});
export type PayPalView = z.infer<typeof PayPalViewSchema>;

export const TopupStateSchema = z.object({
  id: z.string(),
  integrationId: z.string(),
  customerId: z.string(),
  api: TopupApiSchema,
  mode: MoneyModeSchema,
  currency: z.string(),
  amountMinor: z.number().int().positive(),
  /** Credit gross or gross minus PayPal's fee: the integration's feePolicy, as the IPN path credits. */
  feePolicy: z.enum(['gross', 'net']),
  phase: TopupPhaseSchema,
  reason: TopupReasonSchema.nullable(),
  /** PayPal's order id (Orders v2) or EC token (Express Checkout). */
  paypalRef: z.string(),
  capture: CaptureViewSchema.nullable(),
  /** The ledger entry of the one credit. */
  creditEntryId: z.string().nullable(),
  creditedMinor: z.number().int(),
  expiresAt: z.string(),
  history: z.array(z.object({ at: z.string(), what: z.string() })),
});
export type TopupState = z.infer<typeof TopupStateSchema>;

/** Phases after which nothing more happens to a top-up. */
export const FINAL_PHASES: readonly TopupPhase[] = ['credited', 'cancelled', 'expired', 'failed'];
