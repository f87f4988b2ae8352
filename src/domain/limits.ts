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
