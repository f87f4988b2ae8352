import { z } from 'zod';
import { paymentEventFields } from './event';
import { PaymentHoldSchema } from './hold';
import { lazySchema } from '../shared/lazy-schema';

export const LifecycleEventSchema = lazySchema(() =>
  z.object({ ...paymentEventFields(), creditMinor: z.number().int().nullable() }),
);

/**
 * Everything a payment's lifecycle knows, saved after every step so a later run of the
 * workflow (after an idle close or continue-as-new) resumes exactly where this one stopped.
 */
export const PaymentStateSchema = lazySchema(() =>
  z.object({
    integrationId: z.string(),
    txnId: z.string(),
    phase: z.enum(['awaiting_payment', 'pending', 'credited', 'held', 'rejected', 'not_paid']),
    paymentStatus: z.string().nullable(),
    customerId: z.string().nullable(),
    currency: z.string().nullable(),
    payment: LifecycleEventSchema.nullable(),
    creditedMinor: z.number().int(),
    debitedMinor: z.number().int(),
    reversedMinor: z.number().int(),
    hold: PaymentHoldSchema.nullable(),
    /** Check flags an operator approved: they no longer hold the payment. */
    approvedFlags: z.array(z.string()),
    /** An operator approved applying an over-limit adjustment capped at what remains. */
    capApproved: z.boolean(),
    /** Refunds, reversals and cancellations waiting for the payment to be credited. */
    waiting: z.array(LifecycleEventSchema),
    /** Open matters for a person that do not block money (disputes). */
    attention: z.array(z.string()),
    processedKeys: z.array(z.string()),
    history: z.array(z.object({ at: z.string(), messageId: z.string().nullable(), what: z.string() })),
  }),
);
export type PaymentState = z.infer<typeof PaymentStateSchema>;
export type LifecycleEvent = z.infer<typeof LifecycleEventSchema>;

/**
 * A state as the workflow loaded it (the activity's answer, which its history records), read again:
 * a history recorded before the hold reasons were typed answers with a hold without its `cause`.
 * What the schema refuses (nothing an activity loaded should) is used as it came.
 */
export function upgradePaymentState(loaded: PaymentState): PaymentState {
  const read = PaymentStateSchema.safeParse(loaded);
  return read.success ? read.data : loaded;
}

export function initialPaymentState(integrationId: string, txnId: string): PaymentState {
  return {
    integrationId,
    txnId,
    phase: 'awaiting_payment',
    paymentStatus: null,
    customerId: null,
    currency: null,
    payment: null,
    creditedMinor: 0,
    debitedMinor: 0,
    reversedMinor: 0,
    hold: null,
    approvedFlags: [],
    capApproved: false,
    waiting: [],
    attention: [],
    processedKeys: [],
    history: [],
  };
}

/** Flags that only inform: the integration chose to skip verification (sandbox only). */
export const INFORMATIONAL_FLAGS = ['unverified'];
