import type { MessageOutcomeRecord } from '../messages/state';
import type { Posting, PostingOutcome } from '../shared/ledger';
import type { AlertEffect, AuditEffect, Proof } from '../shared/rules-kit';
import type { LifecycleEvent } from '../payments/state';
import { pushBounded, NeedFact } from '../shared/rules-kit';
import type { AcknowledgeProfileAction, AssignProfileAction, BillOutstandingAction, ProfileAction } from './actions';
import { matter } from './matters';
import type { NvpCall, NvpOutcome } from './nvp-calls';
import type { FieldSource, ProfileEvent, ProfileState } from './state';

/**
 * What the recurring profile's rules (rules.ts) are made of: their inputs, facts, effects and
 * answers, and the step one input is decided in (the state being changed, the facts given, the
 * effects and the answer so far, and the bookkeeping every part of the rules shares). The rules
 * themselves are split along their seams: IPN events (ipn-events.ts), the observed fields
 * (observed-fields.ts), money (money.ts), operators (operators.ts) and PayPal's API (nvp-actions.ts).
 */

export type OperatorInput =
  | { type: 'assign'; action: AssignProfileAction }
  | { type: 'approve'; action: ProfileAction }
  | { type: 'acknowledge'; action: AcknowledgeProfileAction }
  | { type: 'suspend' | 'reactivate' | 'cancel' | 'refresh'; action: ProfileAction }
  | { type: 'bill'; action: BillOutstandingAction };

export type ProfileInput =
  | { type: 'ipn'; event: ProfileEvent }
  /** A refund, reversal, its cancellation or a dispute of one of this profile's cycle payments. */
  | { type: 'adjustment'; event: LifecycleEvent }
  | OperatorInput
  /** The refresh schedule fired. */
  | { type: 'scheduled_refresh' }
  | { type: 'malformed'; signal: string; issues: string };

export type ProfileFactNeed =
  | { fact: 'proof'; event: ProfileEvent }
  | { fact: 'adjustmentProof'; event: LifecycleEvent }
  | { fact: 'customerExists'; customerId: string }
  | { fact: 'customerMatch'; integrationId: string; custom: string | null; payerEmail: string | null }
  | { fact: 'posting'; posting: Posting }
  | { fact: 'nvp'; call: NvpCall };

export interface ProfileFacts {
  proof?: Proof;
  customerExists?: boolean;
  customerMatch?: string | null;
  postings?: Record<string, PostingOutcome>;
  nvp?: NvpOutcome;
}

export type ProfileEffect =
  | AlertEffect
  | AuditEffect
  /** Cycle payments this profile owns: their refunds and reversals are routed here. */
  | { type: 'claim_txn'; txnId: string };

/** What an operator's request came to: the API answers with it. */
export type ActionResult =
  | { ok: true; detail: string; paypal?: NvpOutcome }
  | { ok: false; status: 409 | 422 | 502; rule: string; detail: string; paypal?: NvpOutcome };

export type ProfileDecision =
  | { kind: 'need'; need: ProfileFactNeed; effects: ProfileEffect[] }
  | {
      kind: 'done';
      state: ProfileState;
      effects: ProfileEffect[];
      outcome: MessageOutcomeRecord | null;
      result: ActionResult | null;
    };

/**
 * Rule changes a running workflow adopts only through `patched(...)` (its recorded history was
 * decided by the rules before them); everything else gets the current rules.
 */
export interface ProfileRules {
  /** BillOutstandingAmount runs once; a lost answer is `bill_uncertain` until reconciled. */
  billOnce: boolean;
  /**
   * A blanket acknowledge closes notices only; contradictions (among them PayPal dating a payment or
   * a live status after the profile ended, raised from then on) are closed one by one, by name.
   */
  namedMatters: boolean;
}
export const CURRENT_RULES: ProfileRules = { billOnce: true, namedMatters: true };

export interface ProfileContext {
  /** Workflow time, ISO. */
  now: string;
  /** Outstanding balance above this many cycles' amount asks a person. */
  outstandingAlertCycles: number;
  /**
   * How long after an uncertain bill PayPal's unchanged balance (and no IPN) counts as "not billed":
   * PayPal announces a collected outstanding payment by IPN; this is how long we wait for one.
   */
  billSettleMs: number;
  rules?: ProfileRules;
}

const HISTORY_LIMIT = 100;
export const ATTENTION = {
  maxFailed: matter('suspended_max_failed_payments'),
  outstanding: matter('outstanding_over_threshold'),
  noCustomer: matter('no_customer_match'),
  billUncertain: matter('bill_uncertain'),
} as const;

/** One input being decided: a copy of the state it changes, the facts given so far, what it leads to. */
export class ProfileStep {
  readonly effects: ProfileEffect[] = [];
  /** An operator's request's answer, once known. */
  result: ActionResult | null = null;
  readonly rules: ProfileRules;

  constructor(
    readonly s: ProfileState,
    readonly facts: ProfileFacts,
    readonly ctx: ProfileContext,
  ) {
    this.rules = ctx.rules ?? CURRENT_RULES;
  }

  /** A fact given, or a stop naming it (the caller fetches it and decides again). */
  need<T>(have: T | undefined, need: ProfileFactNeed): T {
    if (have === undefined) throw new NeedFact<ProfileFactNeed>(need);
    return have;
  }

  attend(m: string): void {
    if (!this.s.attention.includes(m)) this.s.attention.push(m);
  }

  /** PayPal said something a final state rules out: a matter only a decision naming it closes. */
  contradiction(m: string, messageId: string, detail: string): void {
    this.attend(m);
    this.note('ipn', `contradiction: ${detail}; waiting for a person`, messageId);
    this.alert('profile_contradiction', messageId, `${this.s.profileId}: ${detail}`);
  }

  note(source: FieldSource | 'operator' | 'workflow', what: string, messageId: string | null = null): void {
    pushHistory(this.s, { at: this.ctx.now, source, messageId, what });
  }

  alert(kind: string, messageId: string | null, detail: string): void {
    this.effects.push({ type: 'alert', kind, messageId, detail });
  }

  audit(a: Omit<Extract<ProfileEffect, { type: 'audit' }>, 'type'>): void {
    this.effects.push({ type: 'audit', ...a });
  }
}

export function pushHistory(st: ProfileState, entry: ProfileState['history'][number]): void {
  pushBounded(st.history, entry, HISTORY_LIMIT);
}
