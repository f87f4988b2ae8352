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

/**
 * Customer top-ups through PayPal Checkout (src/topups): which currencies, the least and most one
 * top-up may be, the amounts the hosted page offers, and which API (`orders`: Orders v2 with the REST
 * app in payoutsRestEnv; `express`: Express Checkout over NVP with nvpCredentialsEnv; default: orders
 * when a REST app is named). Absent: this integration takes no top-ups.
 */
export const TopupLimitsSchema = z
  .object({
    currencies: z.array(z.string().refine(isSupportedCurrency, 'not a PayPal currency')).min(1),
    minMinor: minorPerCurrency,
    maxMinor: minorPerCurrency,
    /** The hosted page's amount buttons, per currency (within min..max). */
    choicesMinor: z.record(z.string(), z.array(z.number().int().positive()).max(8)).default({}),
    api: z.enum(['orders', 'express']).optional(),
  })
  .refine((t) => t.currencies.every((c) => t.minMinor[c] !== undefined && t.maxMinor[c] !== undefined), {
    path: ['minMinor'],
    message: 'every top-up currency needs a minMinor and a maxMinor',
  })
  .refine((t) => t.currencies.every((c) => t.minMinor[c]! <= t.maxMinor[c]!), {
    path: ['maxMinor'],
    message: 'maxMinor must not be below minMinor',
  });
export type TopupLimits = z.infer<typeof TopupLimitsSchema>;

/** The API an integration's top-ups go through: as configured, else Orders v2 when it has a REST app. */
export function topupApiOf(i: { topups?: { api?: 'orders' | 'express' }; payoutsRestEnv?: string }) {
  return i.topups?.api ?? (i.payoutsRestEnv ? 'orders' : 'express');
}

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
    topups: TopupLimitsSchema.optional(),
  })
  .refine((i) => i.verifyTransaction || i.mode === 'sandbox', {
    path: ['verifyTransaction'],
    message: 'can be false only in sandbox mode',
  })
  .refine((i) => !i.topups || i.topups.currencies.every((c) => i.allowedCurrencies.includes(c)), {
    path: ['topups', 'currencies'],
    message: 'top-up currencies must be among allowedCurrencies (the capture comes back as a payment IPN)',
  })
  .refine((i) => !i.topups || (topupApiOf(i) === 'express' ? !!i.nvpCredentialsEnv : !!i.payoutsRestEnv), {
    path: ['topups', 'api'],
    message: 'orders needs payoutsRestEnv (the REST app); express needs nvpCredentialsEnv',
  })
  .refine((i) => i.receiverEmails.length + i.receiverIds.length > 0, {
    path: ['receiverEmails'],
    message: 'give at least one receiver email or receiver id',
  });

export type IntegrationInput = z.input<typeof IntegrationInputSchema>;
export type Integration = z.infer<typeof IntegrationInputSchema> & { id: string };
/** How a payer becomes a customer (see `matchBy` above). */
export type MatchBy = Integration['matchBy'];

export const IntegrationIdSchema = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'letters, digits, - and _ only (1-64)');
