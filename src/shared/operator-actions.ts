import { z } from 'zod';

/**
 * What an operator may send a payment, from the admin API or straight from the Temporal Web UI.
 * One schema per action, used by both: the API answers 400 on a bad body, a workflow handler
 * records and ignores it (a signal typed by hand must never wedge a payment).
 */
const text = (max: number) => z.string().trim().min(1).max(max);

export const OperatorActionSchema = z.object({ operator: text(100), reason: text(2000) });
export type OperatorAction = z.infer<typeof OperatorActionSchema>;

export const AssignCustomerActionSchema = OperatorActionSchema.extend({ customerId: text(64) });
export type AssignCustomerAction = z.infer<typeof AssignCustomerActionSchema>;

/**
 * `matter` names the one matter to close (as listed in the payment's `attention`); without it only
 * the notices are closed: a contradiction always needs its own decision (see payment-matters.ts).
 */
export const AcknowledgeActionSchema = OperatorActionSchema.extend({ matter: text(300).optional() });
export type AcknowledgeAction = z.infer<typeof AcknowledgeActionSchema>;

/**
 * The decisions, each about one kind of pending matter: `approve`/`reject` decide a hold (money
 * waits on them), `acknowledge` closes matters a person has seen to (a dispute, an event not
 * applied), `assign` names the customer. A decision that matches nothing pending is refused and audited.
 */
export const PAYMENT_OPERATOR_ACTIONS = {
  assign: AssignCustomerActionSchema,
  approve: OperatorActionSchema,
  reject: OperatorActionSchema,
  acknowledge: AcknowledgeActionSchema,
} as const;
export type PaymentOperatorActionName = keyof typeof PAYMENT_OPERATOR_ACTIONS;

/** The part of a zod failure worth recording: where and what, never the whole (possibly huge) input. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`)
    .join('; ')
    .slice(0, 500);
}

/**
 * Who an operator name stands for, for every four-eyes compare (creator, approvers, sender, proposer
 * of a release): names are typed by hand, so `Alice`, `alice.`, `ALICE` and `alice` + a zero-width
 * space must all be one person. NFKC folds compatibility forms (full-width letters, ligatures);
 * format characters (\p{Cf}: zero-width spaces and joiners, bidi marks, soft hyphens) are dropped;
 * accents (combining marks after decomposition) are dropped (`José` is `Jose`); case is folded fully
 * (upper then lower: `ß` is `ss`); punctuation, symbols and whitespace are ignored. Erring towards
 * "the same person" only ever refuses more. Through the admin API the name is the authenticated
 * operator id (readJson binds it to the caller's key, see src/shared/http/json-body.ts), so the
 * four-eyes rules compare identities; the folding still guards names typed into the Web UI and
 * histories recorded before operators existed.
 */
export function operatorIdentity(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/\p{Cf}/gu, '')
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toUpperCase()
    .toLowerCase()
    .normalize('NFKC')
    .replace(/[\p{P}\p{S}\p{Z}\s]/gu, '');
}

/** The two names are one person (see operatorIdentity); a name with no identity at all matches anyone. */
export function sameOperator(a: string, b: string): boolean {
  const x = operatorIdentity(a);
  const y = operatorIdentity(b);
  return x === '' || y === '' || x === y;
}
