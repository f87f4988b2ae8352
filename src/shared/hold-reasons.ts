import { z } from 'zod';

/**
 * Why money waits for a person (a hold), as a typed value: code reads `code` and the ids beside it,
 * never a string it would have to parse. Each feature declares its own union from these pieces
 * (src/payments/hold.ts, src/profiles/state.ts). Pure (bundled into workflows).
 *
 * Every reason also has a text form, `code` or `code:<ids>` (`checks_failed:receiver_mismatch`,
 * `refund_exceeds_original:<txnId>`): what the admin API, alerts and histories show, and what
 * snapshots saved before the reasons were typed hold. `reasonText` writes it, `parseReasonText`
 * reads it back into the feature's union.
 */

/**
 * The pieces are functions, called where a feature builds its union: a schema built at a module's
 * top level is built again for every workflow execution (see lazy-schema.ts).
 */
const CHECKS_FAILED = 'checks_failed';

/** The checks of a message failed (src/payments/checks.ts): the flags that block it. */
export const checksFailedReason = () => z.object({ code: z.literal(CHECKS_FAILED), flags: z.array(z.string()) });

/** Reasons without ids, the same for every feature that credits a payment. */
export const amountUnusableReason = () => z.object({ code: z.literal('amount_unusable') });
export const noCustomerMatchReason = () => z.object({ code: z.literal('no_customer_match') });
export const ledgerConflictReason = () => z.object({ code: z.literal('ledger_conflict') });

/**
 * A text no version of the rules wrote (a hand-edited snapshot): kept as it was, shown as it was,
 * decided like any hold (approve or reject), never a reason to fail reading a state.
 */
export const unrecognizedReason = () => z.object({ code: z.literal('unrecognized'), text: z.string() });
type UnrecognizedReason = z.infer<ReturnType<typeof unrecognizedReason>>;

/** A reason about one adjustment (refund, reversal…) of a payment, named by its PayPal txn id. */
export const aboutTxn = <C extends string>(code: C) => z.object({ code: z.literal(code), txnId: z.string() });

type AnyReason =
  | { code: 'checks_failed'; flags: string[] }
  | { code: 'unrecognized'; text: string }
  | { code: string; txnId: string }
  | { code: string };

/** The text form: `code`, `checks_failed:<flag>,<flag>`, `<code>:<txnId>`, or an unrecognized text as it was. */
export function reasonText(reason: AnyReason): string {
  if ('text' in reason) return reason.text;
  if ('flags' in reason) return `${reason.code}:${reason.flags.join(',')}`;
  if ('txnId' in reason) return `${reason.code}:${reason.txnId}`;
  return reason.code;
}

/** Reads a text form (see reasonText) into `schema`'s union; what it does not hold comes back unrecognized. */
export function parseReasonText<S extends z.ZodType>(schema: S, text: string): z.infer<S> | UnrecognizedReason {
  const at = text.indexOf(':');
  const code = at < 0 ? text : text.slice(0, at);
  const rest = at < 0 ? undefined : text.slice(at + 1);
  const candidate =
    rest === undefined ? { code } : code === CHECKS_FAILED ? { code, flags: rest.split(',') } : { code, txnId: rest };
  const parsed = schema.safeParse(candidate);
  // Parsed back to the same text only: a reason with ids must not lose any of them.
  if (parsed.success && reasonText(parsed.data as AnyReason) === text) return parsed.data;
  return { code: 'unrecognized', text };
}
