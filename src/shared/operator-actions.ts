import { z } from 'zod';
import { lazySchema } from './lazy-schema';

/**
 * What an operator sends an entity (a payment, a recurring profile, a Mass Pay batch, a parked
 * message), from the admin API or straight from the Temporal Web UI: who acts (`operator`) and why
 * (`reason`). One schema builder for every feature, used by both doors: the API answers 400 on a bad
 * body, a workflow handler records and ignores it (a signal typed by hand must never wedge an entity).
 */
/** One check list rather than a chain: each chained call copies the schema (see lazy-schema.ts). */
const text = (max: number) => z.string().check(z.trim(), z.minLength(1), z.maxLength(max));

/** Any name typed by hand (payments, profiles, parked messages). */
export const OperatorNameSchema = lazySchema(() => text(100));
/**
 * A name that must say who once case, accents, punctuation and invisible characters are gone
 * (see operatorIdentity): where four eyes compare names (Mass Pay).
 */
export const IdentifiedOperatorNameSchema = lazySchema(() =>
  text(100).refine((n) => operatorIdentity(n) !== '', 'must contain letters or digits'),
);
export const ReasonSchema = lazySchema(() => text(2000));

/**
 * Profiles and Mass Pay called the reason `note` until the operator actions were made one: a body
 * (or a Web UI signal, or a signal recorded in a running workflow's history) that still says `note`
 * is read as `reason`. When both are given, `reason` wins.
 */
export function noteAsReason(input: unknown): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const { note, ...rest } = input as Record<string, unknown>;
  if (note === undefined || 'reason' in rest) return input;
  return { ...rest, reason: note };
}

/** The operator-action schema, with the action's own fields (`extra`, built with it: see lazy-schema.ts). */
export function operatorActionSchema<Extra extends z.ZodRawShape = Record<never, never>>(
  extra: () => Extra = () => ({}) as Extra,
  operator: z.ZodType<string> = OperatorNameSchema,
) {
  return lazySchema(() => z.preprocess(noteAsReason, z.object({ operator, reason: ReasonSchema }).extend(extra())));
}

export const OperatorActionSchema = operatorActionSchema();
export type OperatorAction = z.infer<typeof OperatorActionSchema>;

export const AssignCustomerActionSchema = operatorActionSchema(() => ({ customerId: text(64) }));
export type AssignCustomerAction = z.infer<typeof AssignCustomerActionSchema>;

/**
 * `matter` names the one matter to close (as listed in the payment's `attention`); without it only
 * the notices are closed: a contradiction always needs its own decision (see payment-matters.ts).
 */
export const AcknowledgeActionSchema = operatorActionSchema(() => ({ matter: text(300).optional() }));
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

/**
 * Why a decision was refused, as the rules say it: `rule` is the rule's code (what a script or a
 * test reads), `detail` the sentence for a person. 409: not now (the entity's state); 422: never
 * like this (who asks, what is named). Nothing changed but a note and an audit entry.
 */
export interface Refusal<Rule extends string = string> {
  status: 409 | 422;
  rule: Rule;
  detail: string;
}

/** What a decision came to, as the entity's rules decided it. */
export type DecisionResult<Rule extends string = string> =
  { ok: true; detail: string } | ({ ok: false } & Refusal<Rule>);

/**
 * What the admin API sends an entity's `operatorAction` update: the action's name and its body as
 * received (validated by the update's validator with the same schema a signal's payload meets).
 */
export interface OperatorRequest<Action extends string = string> {
  action: Action;
  body: unknown;
}

/**
 * What an entity answers an operator's update with, once the decision is applied (its ledger
 * postings, reservations and PayPal calls done) and the state saved: the result, the state as it
 * now is, and what the decision set going that is still running (e.g. the calls of a Mass Pay send).
 */
export interface OperatorAnswer<State, Result = DecisionResult> {
  result: Result;
  state: State;
  inFlight: InFlight[];
}

/** Work a decision started that continues after the answer (shown to the caller, never hidden). */
export interface InFlight {
  /** What runs: `paypal_calls` (a Mass Pay send's calls still to make). */
  kind: 'paypal_calls';
  pending: number;
  detail: string;
}

/** The failure type an update's validator refuses a malformed request with (the API answers 400). */
export const INVALID_ACTION = 'InvalidAction';

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
