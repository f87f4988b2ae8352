import { z } from 'zod';
import { isSupportedCurrency } from '../shared/money';
import { MoneyModeSchema } from '../shared/money-mode';
import { PAYMENT_TXN_TYPES } from '../messages/summary';

const lowerEmail = z.email().transform((e) => e.toLowerCase());

/** Amounts in minor units per PayPal currency, e.g. `{"USD": 500000}` for 5,000.00 USD. */
const minorPerCurrency = z
  .record(z.string(), z.number().int().positive())
  .refine((r) => Object.keys(r).every(isSupportedCurrency), 'keys must be PayPal currency codes');

/**
 * Caps on the Mass Pay batches we send, per currency: a batch whose total is over `perBatchMinor`,
 * or that takes the day's total (UTC, batches created that day and not cancelled or denied) over
 * `perDayMinor`, needs a second, distinct approver. A currency not named has no cap.
 */
export const PayoutCapsSchema = z.object({
  perBatchMinor: minorPerCurrency.default({}),
  perDayMinor: minorPerCurrency.default({}),
});
export type PayoutCaps = z.infer<typeof PayoutCapsSchema>;

/** What an operator configures for one PayPal business account (the admin API's PUT body). */
export const IntegrationInputSchema = z
  .object({
    name: z.string().trim().min(1),
    mode: MoneyModeSchema,
    ipnEnabled: z.boolean().default(true),
    /** Postback verification; may be switched off only for sandbox integrations. */
    verifyTransaction: z.boolean().default(true),
    allowedTxnTypes: z.array(z.string().min(1)).default([...PAYMENT_TXN_TYPES]),
    allowedCurrencies: z.array(z.string().refine(isSupportedCurrency, 'not a PayPal currency')).min(1),
    receiverEmails: z.array(lowerEmail).default([]),
    /** PayPal's merchant account id: the stronger check, since emails can change. */
    receiverIds: z.array(z.string().min(1)).default([]),
    /** Credit the gross amount, or gross minus PayPal's fee. */
    feePolicy: z.enum(['gross', 'net']).default('gross'),
    /** How a payer becomes a customer: our id echoed in `custom`, and/or the payer's PayPal email. */
    matchBy: z
      .array(z.enum(['custom', 'email']))
      .min(1)
      .default(['custom', 'email']),
    /**
     * Where this integration's PayPal API (NVP) credentials are: the environment variables
     * `<prefix>_USERNAME`, `_PASSWORD` and `_SIGNATURE`. A reference, never the secret itself,
     * named explicitly so no two integrations can end up sharing credentials by a naming accident.
     */
    nvpCredentialsEnv: z
      .string()
      .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'an environment variable prefix: A-Z, 0-9 and _, starting with a letter')
      .optional(),
    /**
     * Where this integration's PayPal REST app credentials are: `<prefix>_CLIENT_ID`,
     * `_CLIENT_SECRET` and `_WEBHOOK_ID` (the app's webhook, part of every webhook signature). With
     * them, payouts go through Payouts REST by default. A reference, never the secret itself.
     */
    payoutsRestEnv: z
      .string()
      .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'an environment variable prefix: A-Z, 0-9 and _, starting with a letter')
      .optional(),
    /** Absent: no caps. */
    payoutCaps: PayoutCapsSchema.optional(),
  })
  .refine((i) => i.verifyTransaction || i.mode === 'sandbox', {
    path: ['verifyTransaction'],
    message: 'can be false only in sandbox mode',
  })
  .refine((i) => i.receiverEmails.length + i.receiverIds.length > 0, {
    path: ['receiverEmails'],
    message: 'give at least one receiver email or receiver id',
  });

export type IntegrationInput = z.input<typeof IntegrationInputSchema>;
export type Integration = z.infer<typeof IntegrationInputSchema> & { id: string };

export const IntegrationIdSchema = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'letters, digits, - and _ only (1-64)');
