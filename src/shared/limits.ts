/**
 * What an unverified IPN body may put into workflow ids, search attributes and summaries. Temporal
 * refuses a workflow id over 1,000 bytes and a keyword search attribute over 2 KiB, and a refused
 * start never succeeds on retry. PayPal's ids and codes are short ASCII tokens (17-character txn
 * ids, `Completed`, `web_accept`), so a value outside these bounds is not PayPal's: the message is
 * stored all the same and flagged malformed, and the value never reaches Temporal raw.
 *
 * Pure (bundled into Temporal workflows): no Node imports.
 */
export const ID_PART_MAX_CHARS = 64;

/** Visible ASCII except `:` (the workflow-id separator): no spaces, control characters or multi-byte text. */
const ID_PART = new RegExp(`^[!-9;-~]{1,${ID_PART_MAX_CHARS}}$`);

/** A workflow's static summary is one line in the Web UI's list. */
export const SUMMARY_MAX_CHARS = 200;

export function isIdPart(value: string): boolean {
  return ID_PART.test(value);
}

/** IPN fields that become parts of workflow ids, search attributes or summaries, by their PayPal names. */
const ID_FIELDS = {
  txnId: 'txn_id',
  parentTxnId: 'parent_txn_id',
  paymentStatus: 'payment_status',
  txnType: 'txn_type',
} as const;

export type IdFields = Record<keyof typeof ID_FIELDS, string | null>;

/** Why these fields cannot be used as ids (null when they can). Never echoes more than a short prefix. */
export function idFieldsProblem(fields: IdFields): string | null {
  for (const [key, name] of Object.entries(ID_FIELDS) as Array<[keyof IdFields, string]>) {
    const value = fields[key];
    if (value === null || isIdPart(value)) continue;
    const shown = JSON.stringify(value.slice(0, 24)) + (value.length > 24 ? '…' : '');
    const rule = `at most ${ID_PART_MAX_CHARS} visible ASCII characters other than ":"`;
    return `${name} ${shown} (${value.length} characters) is not a PayPal id: ${rule}`;
  }
  return null;
}

/**
 * A short stand-in for a value that may not be used raw: `invalid-` and 8 hex digits (FNV-1a),
 * enough to tell deliveries of the same bad value apart in a list, not to identify anything.
 */
export function idPartOrHash(value: string): string {
  if (isIdPart(value)) return value;
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) h = Math.imul(h ^ value.charCodeAt(i), 0x01000193);
  return `invalid-${(h >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * The most items one Mass Pay IPN can carry. It reports every item of its batch, and a batch is at
 * most PayPal's largest: an upload file takes up to 5,000 rows (Mass Payments guide), the MassPay
 * NVP call 250 items (NVP reference). Beyond that it is no PayPal message: stored, flagged
 * malformed, never applied.
 */
export const MASSPAY_MAX_ITEMS = 5_000;

/**
 * The most `&`-separated parts an IPN body may have. A Mass Pay item has at most 10 fields
 * (masspay_txn_id, mc_gross, mc_fee, mc_currency, payment_gross, payment_fee, receiver_email,
 * status, unique_id, reason_code: `_x` each), the message itself a few dozen; other messages
 * (carts included) carry far fewer. Counted on the raw bytes before anything is decoded.
 */
export const IPN_MAX_FIELDS = MASSPAY_MAX_ITEMS * 10 + 500;

/**
 * The longest value a summary field (what workflows receive) may have. PayPal's longest documented
 * IPN values are 255 characters (`custom`, `memo`); four times that is still no PayPal message,
 * and keeps a forged body from putting a megabyte into a payment's history before verification.
 */
export const SUMMARY_VALUE_MAX_CHARS = 1_024;

/** Why a summary cannot be acted on (null when it can): ids as above, and no value over the length cap. */
export function summaryProblem(summary: IdFields & Record<string, unknown>): string | null {
  const ids = idFieldsProblem(summary);
  if (ids) return ids;
  for (const [key, value] of Object.entries(summary)) {
    if (typeof value === 'string' && value.length > SUMMARY_VALUE_MAX_CHARS)
      return `${key} has ${value.length} characters: no PayPal value is longer than ${SUMMARY_VALUE_MAX_CHARS}`;
  }
  return null;
}
