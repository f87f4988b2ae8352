import { z } from 'zod';
import { isSupportedCurrency, parseAmount } from '../shared/money';
import {
  amountUnusableReason,
  checksFailedReason,
  ledgerConflictReason,
  noCustomerMatchReason,
  parseReasonText,
  unrecognizedReason,
} from '../shared/hold-reasons';

/**
 * A PayPal recurring payments profile (or a Standard subscription, keyed by subscr_id): the
 * schemas its workflow, activities and admin API share. Pure (bundled into workflows).
 */

export const PROFILE_STATUSES = ['Pending', 'Active', 'Suspended', 'Cancelled', 'Expired'] as const;
export const ProfileStatusSchema = z.enum(PROFILE_STATUSES);
export type ProfileStatus = z.infer<typeof ProfileStatusSchema>;

/** Who last told us a field's value: a PayPal IPN, PayPal's answer to our API call, or a details refresh. */
export const FieldSourceSchema = z.enum(['ipn', 'api', 'refresh']);
export type FieldSource = z.infer<typeof FieldSourceSchema>;

export { PROFILE_TXN_TYPES, isProfileTxnType } from '../messages/txn-types';

/** Types whose Completed payment_status is money received for the profile. */
export const PROFILE_MONEY_TXN_TYPES = ['recurring_payment', 'subscr_payment', 'recurring_payment_outstanding_payment'];

/**
 * One verified IPN about a profile, reduced to what its rules need. Built by the activity that
 * routes it (from the stored raw bytes) and stored with the message: the profile applies only an
 * event a verified message backs, field for field.
 */
export const ProfileEventSchema = z.object({
  messageId: z.string(),
  integrationId: z.string(),
  profileId: z.string(),
  txnType: z.string(),
  txnId: z.string().nullable(),
  paymentStatus: z.string().nullable(),
  profileStatus: ProfileStatusSchema.nullable(),
  currency: z.string().nullable(),
  amountPerCycleMinor: z.number().int().nullable(),
  outstandingMinor: z.number().int().nullable(),
  /** mc_gross / mc_fee, absolute, and what is credited (gross, or net under the integration's fee policy). */
  grossMinor: z.number().int().nullable(),
  feeMinor: z.number().int().nullable(),
  creditMinor: z.number().int().nullable(),
  /** ISO; null when PayPal says N/A. */
  nextPaymentDate: z.string().nullable(),
  /** When it happened, ISO, and whether PayPal's own clock said so (payment_date, ' +
'subscr_date, a creation's time_created). */
  eventAt: z.string(),
  dated: z.boolean(),
  initialPaymentStatus: z.string().nullable(),
  payerEmail: z.string().nullable(),
  custom: z.string().nullable(),
  flags: z.array(z.string()),
  sandbox: z.boolean(),
  receivedAt: z.string(),
  /** Same for a resend of this message, different for any other message about the profile. */
  dedupeKey: z.string(),
});
export type ProfileEvent = z.infer<typeof ProfileEventSchema>;

const StampSchema = z.object({
  source: FieldSourceSchema,
  at: z.string(),
  dated: z.boolean(),
  by: z.string().nullable(),
});
export type Stamp = z.infer<typeof StampSchema>;
export const PROFILE_FIELDS = [
  'status',
  'amountPerCycle',
  'currency',
  'outstanding',
  'nextPaymentDate',
  'failedPaymentCount',
  'customerId',
] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];

/** Why a cycle payment is not credited yet (see shared/hold-reasons.ts). */
export const ProfileHoldReasonSchema = z.discriminatedUnion('code', [
  checksFailedReason(),
  amountUnusableReason(),
  noCustomerMatchReason(),
  ledgerConflictReason(),
  unrecognizedReason(),
]);
export type ProfileHoldReason = z.infer<typeof ProfileHoldReasonSchema>;

export function parseProfileHoldReason(text: string): ProfileHoldReason {
  return parseReasonText(ProfileHoldReasonSchema, text);
}

const CyclePaymentFieldsSchema = z.object({
  txnId: z.string(),
  txnType: z.string(),
  paymentStatus: z.string(),
  messageId: z.string(),
  currency: z.string().nullable(),
  grossMinor: z.number().int().nullable(),
  creditMinor: z.number().int().nullable(),
  flags: z.array(z.string()),
  sandbox: z.boolean(),
  at: z.string(),
  creditedMinor: z.number().int(),
  debitedMinor: z.number().int(),
  /** Why it is not credited yet, or null: the text form of `holdCause` (what the admin API and history show). */
  held: z.string().nullable(),
  holdCause: ProfileHoldReasonSchema.nullable(),
});
/**
 * A cycle payment as saved. Snapshots and running workflows from before the reasons were typed carry
 * the text alone (`held`): its `holdCause` is read back from it.
 */
export const CyclePaymentSchema = z.preprocess((saved) => {
  if (saved === null || typeof saved !== 'object' || 'holdCause' in saved) return saved;
  const { held } = saved as { held?: unknown };
  return { ...saved, holdCause: typeof held === 'string' ? parseProfileHoldReason(held) : null };
}, CyclePaymentFieldsSchema);
export type CyclePayment = z.infer<typeof CyclePaymentFieldsSchema>;

export const BillUncertainSchema = z.object({
  amountMinor: z.number().int(),
  /** When it was sent (workflow time, ISO). */
  at: z.string(),
  operator: z.string(),
  /** Our outstanding balance when it was sent: PayPal's balance after is compared against it. */
  outstandingBeforeMinor: z.number().int(),
  /** Why there was no answer (transport error, timeout). */
  why: z.string(),
});
export type BillUncertain = z.infer<typeof BillUncertainSchema>;

export const ProfileStateSchema = z.object({
  integrationId: z.string(),
  profileId: z.string(),
  status: ProfileStatusSchema.nullable(),
  currency: z.string().nullable(),
  amountPerCycleMinor: z.number().int().nullable(),
  /** Null until PayPal told us. */
  outstandingMinor: z.number().int().nullable(),
  nextPaymentDate: z.string().nullable(),
  failedPaymentCount: z.number().int(),
  customerId: z.string().nullable(),
  payerEmail: z.string().nullable(),
  custom: z.string().nullable(),
  sandbox: z.boolean().nullable(),
  fields: z.partialRecord(z.enum(PROFILE_FIELDS), StampSchema),
  /** Cycle and outstanding payments, newest last; money is keyed by txn in the ledger, so trimming loses none. */
  payments: z.array(CyclePaymentSchema),
  creditedMinor: z.number().int(),
  debitedMinor: z.number().int(),
  /** A BillOutstandingAmount PayPal accepted whose result (an IPN) has not arrived: PayPal refuses another (11577). */
  billQueued: z.object({ amountMinor: z.number().int().nullable(), at: z.string(), operator: z.string() }).nullable(),
  /**
   * A BillOutstandingAmount sent whose answer never reached us (lost, timed out): PayPal may have
   * billed. No bill is sent again until evidence says what happened (see `bill_uncertain`).
   * Absent from states saved before it existed.
   */
  billUncertain: BillUncertainSchema.nullable().default(null),
  approvedFlags: z.array(z.string()),
  /** Matters a person must look at: suspension for failed payments, a large balance, no customer, refused events. */
  attention: z.array(z.string()),
  lastRefreshAt: z.string().nullable(),
  processedKeys: z.array(z.string()),
  history: z.array(
    z.object({ at: z.string(), source: z.string(), messageId: z.string().nullable(), what: z.string() }),
  ),
});
export type ProfileState = z.infer<typeof ProfileStateSchema>;

/**
 * A state as the workflow loaded it (the activity's answer, which its history records), read again:
 * a history recorded before the hold reasons were typed answers with cycle payments without
 * `holdCause`. What the schema refuses (nothing an activity loaded should) is used as it came.
 */
export function upgradeProfileState(loaded: ProfileState): ProfileState {
  const read = ProfileStateSchema.safeParse(loaded);
  return read.success ? read.data : loaded;
}

export function initialProfileState(integrationId: string, profileId: string): ProfileState {
  return {
    integrationId,
    profileId,
    status: null,
    currency: null,
    amountPerCycleMinor: null,
    outstandingMinor: null,
    nextPaymentDate: null,
    failedPaymentCount: 0,
    customerId: null,
    payerEmail: null,
    custom: null,
    sandbox: null,
    fields: {},
    payments: [],
    creditedMinor: 0,
    debitedMinor: 0,
    billQueued: null,
    billUncertain: null,
    approvedFlags: [],
    attention: [],
    lastRefreshAt: null,
    processedKeys: [],
    history: [],
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const PAYPAL_DATE = /^(\d{2}):(\d{2}):(\d{2}) ([A-Z][a-z]{2}) (\d{1,2}), (\d{4}) (PST|PDT)$/;

/** `HH:MM:SS Mon DD, YYYY PST|PDT` to ISO; null for `N/A`, blanks and anything else. */
export function parsePayPalDate(text: string | null | undefined): string | null {
  const m = PAYPAL_DATE.exec(text?.trim() ?? '');
  if (!m) return null;
  const month = MONTHS.indexOf(m[4]!);
  if (month < 0) return null;
  const offsetHours = m[7] === 'PDT' ? 7 : 8;
  const ms = Date.UTC(Number(m[6]), month, Number(m[5]), Number(m[1]) + offsetHours, Number(m[2]), Number(m[3]));
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** The reverse, for the simulator and tests: PayPal writes Pacific time (PDT is assumed from March to October). */
export function formatPayPalDate(iso: string): string {
  const d = new Date(iso);
  const month = d.getUTCMonth();
  const pdt = month >= 2 && month <= 9;
  const local = new Date(d.getTime() - (pdt ? 7 : 8) * 3600_000);
  const p = (n: number) => String(n).padStart(2, '0');
  const time = `${p(local.getUTCHours())}:${p(local.getUTCMinutes())}:${p(local.getUTCSeconds())}`;
  return (
    `${time} ${MONTHS[local.getUTCMonth()]} ${p(local.getUTCDate())}, ` +
    `${local.getUTCFullYear()} ${pdt ? 'PDT' : 'PST'}`
  );
}

/** An amount in minor units, or null when absent or not an amount of this currency. */
export function minorOrNull(text: string | null | undefined, currency: string | null): number | null {
  if (!text || !currency || !isSupportedCurrency(currency)) return null;
  try {
    return Math.abs(parseAmount(text, currency));
  } catch {
    return null;
  }
}

/** The profile status a txn_type announces by itself (PayPal's profile_status, when given, wins). */
export function statusOfTxnType(txnType: string): ProfileStatus | null {
  switch (txnType) {
    case 'recurring_payment_profile_created':
    case 'subscr_signup':
    case 'subscr_payment':
      return 'Active';
    case 'recurring_payment_profile_cancel':
    case 'subscr_cancel':
      return 'Cancelled';
    case 'recurring_payment_suspended':
    case 'recurring_payment_suspended_due_to_max_failed_payment':
      return 'Suspended';
    case 'recurring_payment_expired':
    case 'subscr_eot':
      return 'Expired';
    default:
      return null;
  }
}

/** Decoded IPN fields to a profile event. `flags` are the checks' verdict on the message. */
export function toProfileEvent(
  fields: Readonly<Record<string, string>>,
  ctx: {
    messageId: string;
    integrationId: string;
    profileId: string;
    receivedAt: string;
    flags: string[];
    feePolicy: 'gross' | 'net';
  },
): ProfileEvent {
  const get = (k: string) => {
    const v = Object.hasOwn(fields, k) ? fields[k]?.trim() : undefined;
    return v ? v.replaceAll('\u0000', '\uFFFD') : null;
  };
  const txnType = get('txn_type') ?? 'unknown';
  const currency = get('mc_currency') ?? get('currency_code');
  const paymentDate = parsePayPalDate(get('payment_date'));
  const subscrDate = parsePayPalDate(get('subscr_date'));
  const created = txnType === 'recurring_payment_profile_created' ? parsePayPalDate(get('time_created')) : null;
  // time_created on other messages is the profile's creation, not the event's: those events are
  // dated by their arrival instead (PayPal sends them as they happen).
  const eventAt = paymentDate ?? subscrDate ?? created;
  const rawStatus = get('profile_status');
  const profileStatus = ProfileStatusSchema.safeParse(rawStatus).success ? (rawStatus as ProfileStatus) : null;
  const flags = [...ctx.flags];
  if (rawStatus && !profileStatus) flags.push('unknown_profile_status');
  const grossMinor = minorOrNull(get('mc_gross'), currency);
  const feeMinor = minorOrNull(get('mc_fee'), currency);
  const creditMinor = grossMinor === null ? null : grossMinor - (ctx.feePolicy === 'net' ? (feeMinor ?? 0) : 0);
  const nextText = get('next_payment_date');
  const event: Omit<ProfileEvent, 'dedupeKey'> = {
    messageId: ctx.messageId,
    integrationId: ctx.integrationId,
    profileId: ctx.profileId,
    txnType,
    txnId: get('txn_id'),
    paymentStatus: get('payment_status'),
    profileStatus,
    currency,
    amountPerCycleMinor: minorOrNull(get('amount_per_cycle') ?? get('mc_amount3') ?? get('amount'), currency),
    outstandingMinor: minorOrNull(get('outstanding_balance'), currency),
    grossMinor,
    feeMinor,
    creditMinor,
    nextPaymentDate: nextText === 'N/A' ? null : parsePayPalDate(nextText),
    eventAt: eventAt ?? ctx.receivedAt,
    dated: eventAt !== null,
    initialPaymentStatus: get('initial_payment_status'),
    payerEmail: get('payer_email')?.toLowerCase() ?? null,
    custom: get('custom'),
    flags,
    sandbox: fields['test_ipn'] === '1',
    receivedAt: ctx.receivedAt,
  };
  // A resend repeats every field (resend=true aside); two different messages never share all of these.
  const dedupeKey = [
    txnType,
    event.txnId ?? '',
    event.paymentStatus ?? '',
    get('payment_date') ?? get('subscr_date') ?? get('time_created') ?? '',
    get('next_payment_date') ?? '',
    get('outstanding_balance') ?? '',
    rawStatus ?? '',
    get('ipn_track_id') ?? '',
  ].join('|');
  return { ...event, dedupeKey };
}

/** Declared with the other workflow ids; re-exported for the profile's own modules. */
export { profileWorkflowId } from '../shared/ids';

/**
 * Whether PayPal's recurring-payments API (NVP) knows this profile: every `I-` id does (Express
 * Checkout profiles and newer Standard subscriptions); a legacy `S-` subscription does not, so
 * refreshing it on a schedule could only fail and alert every day.
 */
export function isApiManaged(profileId: string): boolean {
  return profileId.startsWith('I-');
}
