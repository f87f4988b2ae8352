import type { MessageOutcomeRecord } from '../messages/state';
import type { Posting, PostingOutcome } from '../shared/ledger';
import type {
  AcknowledgeAction,
  AssignCustomerAction,
  DecisionResult,
  OperatorAction,
  Refusal,
} from '../shared/operator-actions';
import { NeedFact, pushBounded, type Proof } from '../shared/rules-kit';
import { paymentMatter, type MatterRule } from './matters';
import type { LifecycleEvent, PaymentState } from './state';

/**
 * What the payment rules (rules.ts) are made of: their inputs, facts, effects and answers, and the
 * step one input is decided in (the state being changed, the facts given, the effects and the answer
 * so far, and the bookkeeping every part of the rules shares). The rules themselves are split along
 * their seams: IPN events (ipn-events.ts), money (money.ts) and operators (operators.ts).
 */

export type PaymentInput =
  | { type: 'ipn'; event: LifecycleEvent }
  | { type: 'assign'; action: AssignCustomerAction }
  | { type: 'approve' | 'reject'; action: OperatorAction }
  | { type: 'acknowledge'; action: AcknowledgeAction }
  /** A signal whose payload failed its schema: recorded and ignored. */
  | { type: 'malformed'; signal: string; issues: string }
  /** Time passed (a timer fired): deadlines are looked at. */
  | { type: 'tick' };

export type FactNeed =
  | { fact: 'proof'; event: LifecycleEvent }
  | { fact: 'customerExists'; customerId: string }
  | { fact: 'customerMatch'; integrationId: string; custom: string | null; payerEmail: string | null }
  | { fact: 'posting'; posting: Posting };

export interface PaymentFacts {
  proof?: Proof;
  customerExists?: boolean;
  customerMatch?: string | null;
  postings?: Record<string, PostingOutcome>;
}

export type PaymentEffect =
  | { type: 'alert'; kind: string; messageId: string | null; detail: string }
  | {
      type: 'audit';
      actor: string;
      action: string;
      reason?: string;
      customerId?: string;
      details?: Record<string, unknown>;
    };

/** The rules an operator's decision on a payment can be refused by (the `rule` of a Refusal). */
export type PaymentRefusalRule =
  | 'nothing_held'
  | typeof LIVE_ON_SANDBOX_RULE
  | 'already_credited'
  | 'unknown_customer'
  | MatterRule
  | 'internal_error';
export type PaymentRefusal = Refusal<PaymentRefusalRule>;
export type PaymentResult = DecisionResult<PaymentRefusalRule>;

export type PaymentDecision =
  /** `effects` so far run before the fact is fetched: an audit precedes the posting it leads to. */
  | { kind: 'need'; need: FactNeed; effects: PaymentEffect[] }
  /** `result`: what an operator's decision came to (null for any other input). */
  | {
      kind: 'done';
      state: PaymentState;
      effects: PaymentEffect[];
      outcome: MessageOutcomeRecord | null;
      result: PaymentResult | null;
    };

export interface DecideContext {
  /** Workflow time, ISO. */
  now: string;
  /** How long a refund or reversal may wait for a payment we never saw before a person is asked. */
  orphanGraceSeconds: number;
  /**
   * Whether approve is refused for a live message held on a sandbox integration (see refusalOf).
   * Default true; false only where a workflow replays a history recorded before the rule.
   */
  refuseLiveOnSandbox?: boolean;
  /**
   * Whether an acknowledge closes only what it may (payment-matters.ts: a named matter, or the
   * notices). Default true; false only where a workflow replays a history recorded before the rule.
   */
  namedMatters?: boolean;
}

/**
 * A sandbox integration never posts live money, whatever an operator approves. A message without
 * test_ipn held on one (`live_message_on_sandbox`) would be credited as live money: anyone can send
 * it (sandbox integrations may skip verification), and approving is one click. Refusing the approve
 * is safer than crediting it as sandbox money instead: a message claiming to be live is not test
 * money either, and the refusal tells the operator what to do (reject it; a real live payment
 * belongs to a live integration). The ledger refuses such a posting too, as a last line.
 */
export const LIVE_ON_SANDBOX_RULE = 'sandbox_integration_live_money';

const HISTORY_LIMIT = 100;
export const ORPHAN_ATTENTION = paymentMatter('adjustment_without_payment');

/** One input being decided: a copy of the state it changes, the facts given so far, what it leads to. */
export class PaymentStep {
  readonly effects: PaymentEffect[] = [];
  /** An operator decision's outcome; set when refused or once the decision is applied. */
  result: PaymentResult | null = null;

  constructor(
    readonly s: PaymentState,
    readonly facts: PaymentFacts,
    readonly ctx: DecideContext,
  ) {}

  /** A fact given, or a stop naming it (the caller fetches it and decides again). */
  need<T>(have: T | undefined, need: FactNeed): T {
    if (have === undefined) throw new NeedFact<FactNeed>(need);
    return have;
  }

  attend(matter: string): void {
    if (!this.s.attention.includes(matter)) this.s.attention.push(matter);
  }

  note(what: string, messageId: string | null = null): void {
    pushHistory(this.s, { at: this.ctx.now, messageId, what });
  }

  alert(kind: string, messageId: string | null, detail: string): void {
    this.effects.push({ type: 'alert', kind, messageId, detail });
  }

  audit(a: Omit<Extract<PaymentEffect, { type: 'audit' }>, 'type'>): void {
    this.effects.push({ type: 'audit', ...a });
  }
}

export function pushHistory(s: PaymentState, entry: PaymentState['history'][number]): void {
  pushBounded(s.history, entry, HISTORY_LIMIT);
}
