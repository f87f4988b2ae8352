/**
 * The handful of IPN fields the service acts on, pulled out of the decoded
 * form into a typed, validated shape.
 *
 * Pure (bundled into Temporal workflows): no Node imports. Amounts stay the raw
 * decimal strings PayPal sent; converting them needs the currency and belongs
 * to money.ts at the point of use, where a bad amount can be reported properly.
 */
import { z } from 'zod';

export { PAYMENT_TXN_TYPES, isPaymentTxnType, type PaymentTxnType } from './txn-types';

const text = z.string().nullable();

export const MasspayItemSchema = z.object({
  /** The `_x` suffix, 1-based as PayPal numbers them. */
  index: z.number().int().min(1),
  masspayTxnId: text,
  gross: text,
  fee: text,
  currency: text,
  receiverEmail: text,
  status: text,
  uniqueId: text,
  reasonCode: text,
});

export type MasspayItem = z.infer<typeof MasspayItemSchema>;

export const IpnSummarySchema = z.object({
  txnType: text,
  txnId: text,
  parentTxnId: text,
  paymentStatus: text,
  pendingReason: text,
  reasonCode: text,
  receiverEmail: text,
  receiverId: text,
  business: text,
  payerEmail: text,
  payerId: text,
  custom: text,
  invoice: text,
  currency: text,
  gross: text,
  fee: text,
  testIpn: z.boolean(),
  resend: z.boolean(),
  ipnTrackId: text,
  recurringPaymentId: text,
  subscrId: text,
  caseId: text,
  caseType: text,
  profileStatus: text,
  paymentDate: text,
  masspayItems: z.array(MasspayItemSchema),
});

export type IpnSummary = z.infer<typeof IpnSummarySchema>;

type Fields = Readonly<Record<string, string>>;

/** Per-item Mass Pay field prefixes (`<prefix>_<x>`) and where each lands in an item. */
const MASSPAY_ITEM_FIELDS = {
  masspay_txn_id: 'masspayTxnId',
  mc_gross: 'gross',
  mc_fee: 'fee',
  mc_currency: 'currency',
  receiver_email: 'receiverEmail',
  status: 'status',
  unique_id: 'uniqueId',
  reason_code: 'reasonCode',
} as const satisfies Record<string, Exclude<keyof MasspayItem, 'index'>>;

type MasspayPrefix = keyof typeof MASSPAY_ITEM_FIELDS;

// Requires the underscore: `mc_gross1` (cart item amount) must not match, and
// no leading zero, so "_01" cannot alias "_1".
const MASSPAY_ITEM_KEY = new RegExp(`^(${Object.keys(MASSPAY_ITEM_FIELDS).join('|')})_([1-9][0-9]*)$`);

/**
 * With `items: false`, Mass Pay items are left out (`masspayItems` is empty): what workflows receive
 * before verification, bounded whatever the body; the items are read inside activities (see
 * countMasspayItems for their number).
 */
export function summarizeIpn(fields: Fields, { items = true }: { items?: boolean } = {}): IpnSummary {
  const txnType = field(fields, 'txn_type');
  return {
    txnType,
    txnId: field(fields, 'txn_id'),
    parentTxnId: field(fields, 'parent_txn_id'),
    paymentStatus: field(fields, 'payment_status'),
    pendingReason: field(fields, 'pending_reason'),
    reasonCode: field(fields, 'reason_code'),
    receiverEmail: email(fields, 'receiver_email'),
    // Compared as-is: the IPN Simulator even puts an email here.
    receiverId: field(fields, 'receiver_id'),
    business: email(fields, 'business'),
    payerEmail: email(fields, 'payer_email'),
    payerId: field(fields, 'payer_id'),
    // Our own reference round-tripped through PayPal; stray padding must not break lookups.
    custom: trimmed(fields, 'custom'),
    invoice: field(fields, 'invoice'),
    // Recurring-profile messages carry only currency_code.
    currency: field(fields, 'mc_currency') ?? field(fields, 'currency_code'),
    // No fallback to `amount`/`payment_gross`: lifecycle messages move no money,
    // and payment_gross is USD-only.
    gross: field(fields, 'mc_gross'),
    fee: field(fields, 'mc_fee'),
    testIpn: fields['test_ipn'] === '1',
    resend: fields['resend'] === 'true',
    ipnTrackId: field(fields, 'ipn_track_id'),
    recurringPaymentId: field(fields, 'recurring_payment_id'),
    subscrId: field(fields, 'subscr_id'),
    caseId: field(fields, 'case_id'),
    caseType: field(fields, 'case_type'),
    // PayPal pads some recurring values (period_type arrives as " Regular").
    profileStatus: trimmed(fields, 'profile_status'),
    paymentDate: field(fields, 'payment_date'),
    masspayItems: items && isMasspay(Object.keys(fields), txnType) ? masspayItems(fields) : [],
  };
}

/**
 * Cart IPNs number their items with the same `mc_gross_x` / `mc_currency_x`
 * names Mass Pay uses, so items are only read from Mass Pay messages; a
 * `masspay_txn_id_x` field identifies one even if txn_type were missing.
 */
export function isMasspay(keys: readonly string[], txnType: string | null): boolean {
  return txnType === 'masspay' || keys.some((key) => /^masspay_txn_id_[1-9][0-9]*$/.test(key));
}

/**
 * The item a Mass Pay item key belongs to (`_x`, as written), or null for any other key: from the
 * key alone, before any value is decoded. summarizeIpn never finds more items than such keys.
 */
export function masspayItemOf(key: string): string | null {
  return MASSPAY_ITEM_KEY.exec(key)?.[2] ?? null;
}

function masspayItems(fields: Fields): MasspayItem[] {
  const items = new Map<number, MasspayItem>();
  for (const key of Object.keys(fields)) {
    const match = MASSPAY_ITEM_KEY.exec(key);
    if (match === null) continue;
    const prefix = match[1] as MasspayPrefix;
    const index = Number(match[2]);
    // An empty value is treated as absent, like everywhere else in the summary,
    // so a blank leftover field does not conjure up an item.
    const value = prefix === 'receiver_email' ? email(fields, key) : field(fields, key);
    if (value === null || !Number.isSafeInteger(index)) continue;
    const item = items.get(index) ?? emptyItem(index);
    item[MASSPAY_ITEM_FIELDS[prefix]] = value;
    items.set(index, item);
  }
  return [...items.values()].sort((a, b) => a.index - b.index);
}

function emptyItem(index: number): MasspayItem {
  return {
    index,
    masspayTxnId: null,
    gross: null,
    fee: null,
    currency: null,
    receiverEmail: null,
    status: null,
    uniqueId: null,
    reasonCode: null,
  };
}

/** The raw value, or null when absent or blank. */
function field(fields: Fields, key: string): string | null {
  // hasOwn: a plain-object `fields` must not answer "constructor" from its prototype.
  if (!Object.hasOwn(fields, key)) return null;
  const value = fields[key];
  // No PayPal value contains NUL, and PostgreSQL (under FerretDB) cannot store one in any string:
  // kept, it would make every later write of this value fail. The raw bytes keep the original.
  return typeof value === 'string' && value.trim() !== '' ? value.replaceAll('\u0000', '\uFFFD') : null;
}

function trimmed(fields: Fields, key: string): string | null {
  return field(fields, key)?.trim() ?? null;
}

/** PayPal treats addresses case-insensitively; store one canonical form for comparisons. */
function email(fields: Fields, key: string): string | null {
  return trimmed(fields, key)?.toLowerCase() ?? null;
}
