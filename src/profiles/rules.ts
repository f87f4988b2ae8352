import { describeMoney, formatMinor, isSupportedCurrency, parseAmount } from '../shared/money';
import type { Posting, PostingOutcome, Proof } from '../payments/rules';
import type { MessageOutcomeRecord } from '../messages/state';
import type { LifecycleEvent } from '../payments/state';
import { INFORMATIONAL_FLAGS } from '../payments/state';
import type { AcknowledgeProfileAction, AssignProfileAction, BillOutstandingAction, ProfileAction } from './actions';
import {
  PROFILE_MONEY_TXN_TYPES,
  ProfileStatusSchema,
  statusOfTxnType,
  type CyclePayment,
  type FieldSource,
  type ProfileEvent,
  type ProfileField,
  type ProfileHoldReason,
  type ProfileState,
  type ProfileStatus,
  type Stamp,
} from './state';
import { acknowledgeMatters } from '../shared/matters';
import { reasonText } from '../shared/hold-reasons';
import { matter, MATTER_CLOSING } from './matters';
import { clone, NeedFact, notApplied, pushBounded } from '../shared/rules-kit';

/**
 * The rules of one recurring profile's life, as a pure function (the shape of decidePayment):
 * given the state and one input, what the state becomes and which effects follow. Facts (a
 * customer match, a ledger posting, PayPal's answer to an NVP call) are asked for by stopping
 * and re-running with the fact added.
 *
 * PayPal's messages about a profile arrive late, twice, out of order and not always of the kind
 * expected, so each observed field carries a stamp (who said it, as of when) and only a newer
 * word replaces it; status moves backwards (Suspended → Active) only on a strictly later dated
 * event or on PayPal's own answer to our API call; Cancelled and Expired are left only by PayPal's
 * answer. Money moves only on Completed payments, once per PayPal transaction (the ledger key is
 * the one a payment entity would use for the same txn, so even a misrouted copy cannot credit twice).
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

export interface NvpCall {
  method: 'BillOutstandingAmount' | 'ManageRecurringPaymentsProfileStatus' | 'GetRecurringPaymentsProfileDetails';
  params: Record<string, string>;
}
/**
 * PayPal's answer (ACK and its first error), or why there was none: `Unreachable` when the call
 * certainly did not reach PayPal (no credentials, connection refused) or gave up retrying a call
 * that is safe to repeat; `Unknown` when a call that moves money may have reached PayPal and its
 * answer was lost (an error status, a reset, a timeout): PayPal may have acted on it.
 */
export type NvpOutcome =
  | { ack: 'Success'; fields: Record<string, string> }
  | { ack: 'Failure'; code: string; shortMessage: string; longMessage: string }
  | { ack: 'Unreachable'; message: string }
  | { ack: 'Unknown'; message: string };

/** The failure type of an NVP call that certainly never reached PayPal: safe to make again. */
export const NVP_NOT_SENT = 'NvpNotSent';

/**
 * The fields of PayPal's answers the rules read. GetRecurringPaymentsProfileDetails also answers
 * with the subscriber's name, shipping address and card details: those never leave the activity
 * (nor reach a workflow history, an audit entry or the admin API).
 */
export const NVP_ANSWER_FIELDS = [
  'ACK',
  'CORRELATIONID',
  'TIMESTAMP',
  'PROFILEID',
  'STATUS',
  'CURRENCYCODE',
  'AMT',
  'OUTSTANDINGBALANCE',
  'NEXTBILLINGDATE',
  'FAILEDPAYMENTCOUNT',
] as const;

/** An answer reduced to the fields the rules read. */
export function keepUsedFields(answer: NvpOutcome): NvpOutcome {
  if (answer.ack !== 'Success') return answer;
  const fields: Record<string, string> = {};
  for (const k of NVP_ANSWER_FIELDS) if (Object.hasOwn(answer.fields, k)) fields[k] = answer.fields[k]!;
  return { ack: 'Success', fields };
}

/** What an audit entry keeps of a call and its answer: the ids and PayPal's verdict, no personal data. */
function auditedCall(call: NvpCall, answer: NvpOutcome): Record<string, unknown> {
  const params: Record<string, string> = {};
  for (const k of ['PROFILEID', 'ACTION', 'AMT']) if (call.params[k] !== undefined) params[k] = call.params[k]!;
  const paypal =
    answer.ack === 'Success'
      ? { ack: answer.ack, ...(answer.fields.CORRELATIONID ? { correlationId: answer.fields.CORRELATIONID } : {}) }
      : answer;
  return { call: { method: call.method, params }, paypal };
}

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
  | { type: 'alert'; kind: string; messageId: string | null; detail: string }
  | {
      type: 'audit';
      actor: string;
      action: string;
      reason?: string;
      customerId?: string;
      details?: Record<string, unknown>;
    }
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
const KEYS_LIMIT = 500;
const PAYMENTS_LIMIT = 100;
const STATUS_RANK: Record<ProfileStatus, number> = { Pending: 0, Active: 1, Suspended: 2, Cancelled: 3, Expired: 3 };
const TERMINAL: ProfileStatus[] = ['Cancelled', 'Expired'];
const DAY_MS = 24 * 3600 * 1000;
export const ATTENTION = {
  maxFailed: matter('suspended_max_failed_payments'),
  outstanding: matter('outstanding_over_threshold'),
  noCustomer: matter('no_customer_match'),
  billUncertain: matter('bill_uncertain'),
} as const;

/** Never throws: an unexpected error leaves the state unchanged and asks a person. */
export function decideProfile(
  state: ProfileState,
  input: ProfileInput,
  facts: ProfileFacts,
  ctx: ProfileContext,
): ProfileDecision {
  const d = new Decider(clone(state), facts, ctx);
  try {
    return d.run(input);
  } catch (err) {
    if (err instanceof NeedFact) return { kind: 'need', need: err.need, effects: d.effects };
    const s = clone(state);
    const messageId = input.type === 'ipn' || input.type === 'adjustment' ? input.event.messageId : null;
    const detail = `${input.type}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300);
    if (!s.attention.includes(matter('internal_error'))) s.attention.push(matter('internal_error'));
    pushHistory(s, {
      at: ctx.now,
      source: 'workflow',
      messageId,
      what: `could not decide (${detail}); waiting for a person`,
    });
    return {
      kind: 'done',
      state: s,
      effects: [{ type: 'alert', kind: 'profile_internal_error', messageId, detail: `${s.profileId}: ${detail}` }],
      outcome: messageId ? { messageId, outcome: 'internal_error', detail, addFlags: ['alert'] } : null,
      result: 'action' in input ? { ok: false, status: 409, rule: 'internal_error', detail } : null,
    };
  }
}

export function needsPerson(s: ProfileState): boolean {
  return s.attention.length > 0 || s.payments.some((p) => p.held !== null);
}

/**
 * Why PayPal (or our own rules) would refuse this request now, or null. Checked before calling
 * PayPal so a request PayPal would refuse costs no call; the admin API asks the same question.
 */
export function refusalOf(
  s: ProfileState,
  input: OperatorInput,
  now: string,
  rules: ProfileRules = CURRENT_RULES,
): Extract<ActionResult, { ok: false }> | null {
  const refuse = (status: 409 | 422, rule: string, detail: string) => ({ ok: false as const, status, rule, detail });
  const st = s.status ?? 'unknown';
  switch (input.type) {
    case 'suspend':
      return s.status === 'Active'
        ? null
        : refuse(409, '11557', `only an Active profile can be suspended; ${s.profileId} is ${st}`);
    case 'reactivate':
      return s.status === 'Suspended'
        ? null
        : refuse(409, '11558', `only a Suspended profile can be reactivated; ${s.profileId} is ${st}`);
    case 'cancel':
      return s.status === 'Active' || s.status === 'Suspended' || s.status === 'Cancelled'
        ? null
        : refuse(409, '11556', `only an Active or Suspended profile can be cancelled; ${s.profileId} is ${st}`);
    case 'bill': {
      // First: until we know whether PayPal acted on the last bill, any bill could be a second one.
      if (rules.billOnce && s.billUncertain) {
        const u = s.billUncertain;
        return refuse(
          409,
          'bill_uncertain',
          `the bill sent by ${u.operator} at ${u.at} got no answer and may have been carried out: no bill ` +
            `is sent again until its IPN arrives or PayPal's outstanding balance settles it (refresh)`,
        );
      }
      if (s.status !== 'Active' && s.status !== 'Suspended') {
        return refuse(
          409,
          'profile_status',
          `only an Active or Suspended profile can be billed; ${s.profileId} is ${st}`,
        );
      }
      const outstanding = s.outstandingMinor ?? 0;
      if (outstanding <= 0 || !s.currency)
        return refuse(409, 'no_outstanding_balance', `${s.profileId} has no outstanding balance`);
      const amount = billAmount(s, input.action);
      if (amount === null)
        return refuse(422, 'amount', `amount ${JSON.stringify(input.action.amount)} is not an amount of ${s.currency}`);
      if (amount <= 0) return refuse(422, 'amount', 'amount must be greater than zero');
      if (amount > outstanding) {
        return refuse(
          409,
          '11576',
          `amount ${describeMoney(amount, s.currency)} exceeds the ` +
            `outstanding ${describeMoney(outstanding, s.currency)}`,
        );
      }
      if (s.billQueued)
        return refuse(
          409,
          '11577',
          `an outstanding payment billed by ${s.billQueued.operator} at ${s.billQueued.at} is still queued`,
        );
      const next = s.nextPaymentDate ? Date.parse(s.nextPaymentDate) : NaN;
      const untilNext = next - Date.parse(now);
      if (Number.isFinite(untilNext) && untilNext >= 0 && untilNext < DAY_MS) {
        return refuse(409, '11578', `a scheduled payment is due at ${s.nextPaymentDate}, within 24 hours`);
      }
      return null;
    }
    case 'refresh':
      return null;
    case 'assign':
      return s.payments.some((p) => p.creditedMinor > 0)
        ? refuse(
            409,
            'already_credited',
            `${s.profileId} already credited ${s.customerId}; moving money between customers is not an assignment`,
          )
        : null;
    case 'approve':
      return s.payments.some((p) => p.holdCause?.code === 'checks_failed')
        ? null
        : refuse(409, 'nothing_held', `no payment of ${s.profileId} is held on failed checks`);
    case 'acknowledge': {
      const ack = acknowledgeMatters(MATTER_CLOSING, s.attention, input.action.matter, s.profileId);
      if (ack.ok) return null;
      if (ack.rule === 'nothing_to_acknowledge') return refuse(409, ack.rule, ack.detail);
      if (!rules.namedMatters) return null;
      if (ack.rule !== 'closed_otherwise') return refuse(409, ack.rule, ack.detail);
      return ack.closing === 'assign'
        ? refuse(409, 'assign_customer', 'payments wait for a customer: assign one, which closes this matter')
        : refuse(
            409,
            'bill_uncertain',
            'an uncertain bill is closed by what PayPal did (its IPN, or its balance on refresh), ' +
              'not by acknowledgement',
          );
    }
  }
}

/** The amount a bill request asks for, in minor units (the whole balance when none is given); null when unreadable. */
export function billAmount(s: ProfileState, a: BillOutstandingAction): number | null {
  if (a.amount === undefined) return s.outstandingMinor ?? 0;
  if (!s.currency || !isSupportedCurrency(s.currency)) return null;
  try {
    return parseAmount(a.amount, s.currency);
  } catch {
    return null;
  }
}

class Decider {
  readonly effects: ProfileEffect[] = [];
  private result: ActionResult | null = null;

  private readonly rules: ProfileRules;

  constructor(
    private readonly s: ProfileState,
    private readonly facts: ProfileFacts,
    private readonly ctx: ProfileContext,
  ) {
    this.rules = ctx.rules ?? CURRENT_RULES;
  }

  run(input: ProfileInput): ProfileDecision {
    const outcome = this.apply(input);
    return { kind: 'done', state: this.s, effects: this.effects, outcome, result: this.result };
  }

  private apply(input: ProfileInput): MessageOutcomeRecord | null {
    switch (input.type) {
      case 'ipn':
        return this.onIpn(input.event);
      case 'adjustment':
        return this.onAdjustment(input.event);
      case 'malformed':
        this.note('workflow', `ignored a malformed ${input.signal} signal: ${input.issues}`);
        this.audit({
          actor: 'unknown',
          action: 'malformed_signal',
          details: { signal: input.signal, issues: input.issues },
        });
        this.alert('malformed_signal', null, `${this.s.profileId}: ${input.signal}: ${input.issues}`);
        return null;
      case 'scheduled_refresh':
        this.refresh(null);
        return null;
      default:
        this.onOperator(input);
        return null;
    }
  }

  private need<T>(have: T | undefined, need: ProfileFactNeed): T {
    if (have === undefined) throw new NeedFact<ProfileFactNeed>(need);
    return have;
  }

  // ---- IPN events ----------------------------------------------------------------------------

  private onIpn(e: ProfileEvent): MessageOutcomeRecord {
    const s = this.s;
    if (e.integrationId !== s.integrationId || e.profileId !== s.profileId) {
      this.attend(matter('foreign_event', e.messageId));
      this.note('ipn', `refused an event for ${e.integrationId}/${e.profileId}: not this profile`, e.messageId);
      this.alert(
        'profile_foreign_event',
        e.messageId,
        `${s.profileId} got an event for ${e.integrationId}/${e.profileId}`,
      );
      return notApplied.foreign(e.messageId, 'event for another profile');
    }
    const isMoney = PROFILE_MONEY_TXN_TYPES.includes(e.txnType) && e.txnId !== null && e.paymentStatus !== null;
    const key = isMoney ? `${e.txnId}:${e.paymentStatus}` : `evt:${e.dedupeKey}`;
    if (s.processedKeys.includes(key)) {
      this.note('ipn', `duplicate ${e.txnType} (${key.slice(0, 80)}): ignored`, e.messageId);
      return notApplied.duplicate(e.messageId, String(e.txnType));
    }
    const proof = this.need(this.facts.proof, { fact: 'proof', event: e });
    if (!proof.ok) {
      this.attend(matter('unproven_event', e.messageId));
      this.note('ipn', `ignored an event that no verified message backs: ${proof.reason}`, e.messageId);
      this.alert('profile_unproven_event', e.messageId, `${s.profileId}: ${proof.reason}`);
      return notApplied.unproven(e.messageId, proof.reason);
    }
    s.processedKeys.push(key);
    if (s.processedKeys.length > KEYS_LIMIT) s.processedKeys.splice(0, s.processedKeys.length - KEYS_LIMIT);

    const blocking = this.blockingFlags(e.flags);
    if (blocking.length > 0 && !isMoney) {
      // Another account's profile, or a live message on a sandbox integration: it must not steer ours.
      this.attend(matter('checks_failed', e.messageId));
      this.note('ipn', `${e.txnType} not applied: checks failed (${blocking.join(',')})`, e.messageId);
      this.alert('profile_event_checks_failed', e.messageId, `${s.profileId}: ${blocking.join(',')}`);
      return {
        messageId: e.messageId,
        outcome: `applied:${s.status ?? 'unknown'}`,
        detail: `checks failed: ${blocking.join(',')}`,
      };
    }
    if (s.sandbox === null) s.sandbox = e.sandbox;
    if (s.payerEmail === null) s.payerEmail = e.payerEmail;
    if (s.custom === null) s.custom = e.custom;

    const stamp: Stamp = { source: 'ipn', at: e.eventAt, dated: e.dated, by: e.messageId };
    const before = summary(s);
    const target = e.profileStatus ?? statusOfTxnType(e.txnType);
    if (target) this.setStatus(target, stamp, e.messageId);
    if (e.currency) this.setField('currency', e.currency, stamp);
    if (e.amountPerCycleMinor !== null && e.txnType !== 'recurring_payment_outstanding_payment') {
      this.setField('amountPerCycle', e.amountPerCycleMinor, stamp);
    }
    if (e.outstandingMinor !== null) this.setField('outstanding', e.outstandingMinor, stamp);
    if (e.txnType.startsWith('recurring_payment') || e.nextPaymentDate !== null)
      this.setField('nextPaymentDate', e.nextPaymentDate, stamp);
    if (['recurring_payment_skipped', 'recurring_payment_failed', 'subscr_failed'].includes(e.txnType)) {
      this.setField('failedPaymentCount', s.failedPaymentCount + 1, stamp, true);
    }
    const after = summary(s);
    const what = `${e.txnType}${e.paymentStatus ? ` ${e.paymentStatus}` : ''}`;
    this.note('ipn', `${what}${before === after ? ' (nothing newer)' : `: ${after}`}`, e.messageId);
    if (e.initialPaymentStatus === 'Failed')
      this.alert('profile_initial_payment_failed', e.messageId, `${s.profileId}: initial payment failed`);

    if (e.txnType.startsWith('recurring_payment_outstanding_payment')) {
      s.billQueued = null;
      // PayPal runs one outstanding payment at a time and announces each: this is the bill's result.
      this.reconcileBill({ by: 'paypal', ipn: e });
    }
    if (isMoney) this.onPayment(e);
    else if (s.customerId === null && !s.attention.includes(ATTENTION.noCustomer)) this.matchOrAttend(e.messageId);

    if (
      e.txnType === 'recurring_payment_suspended_due_to_max_failed_payment' &&
      !s.attention.includes(ATTENTION.maxFailed)
    ) {
      this.attend(ATTENTION.maxFailed);
      this.alert(
        'profile_suspended_max_failed',
        e.messageId,
        `${s.profileId} suspended after the maximum failed payments`,
      );
    }
    this.checkOutstanding(e.messageId);
    return {
      messageId: e.messageId,
      outcome: `applied:${s.status ?? 'unknown'}`,
      detail: s.history.at(-1)?.what ?? '',
    };
  }

  /** PayPal's own status moves forward; backwards only on a strictly later dated word, or PayPal's API answer. */
  private setStatus(target: ProfileStatus, stamp: Stamp, messageId: string | null): void {
    const s = this.s;
    if (s.status === target) return this.restamp('status', stamp);
    const cur = s.fields.status;
    const fromApi = stamp.source !== 'ipn';
    const forward = s.status === null || STATUS_RANK[target] > STATUS_RANK[s.status];
    const later = stamp.dated && cur !== undefined && secs(stamp.at) > secs(cur.at);
    if (!fromApi && s.status !== null && TERMINAL.includes(s.status)) {
      this.note(stamp.source, `${target} after ${s.status}: recorded, not applied`, messageId);
      // Older news is normal; PayPal dating a live status after its own final one is a contradiction.
      if (this.rules.namedMatters && !TERMINAL.includes(target) && later && messageId) {
        this.contradiction(
          matter('final_status_contradicted', messageId),
          messageId,
          `${target} dated ${stamp.at}, after ${s.status} as of ${cur?.at ?? '?'}`,
        );
      }
      return;
    }
    if (!fromApi && !forward && !later) {
      this.note(
        stamp.source,
        `${target} is older than ${s.status} (as of ${cur?.at ?? '?'}): recorded, not applied`,
        messageId,
      );
      return;
    }
    s.status = target;
    s.fields.status = stamp;
  }

  private restamp(field: ProfileField, stamp: Stamp): void {
    const cur = this.s.fields[field];
    if (!cur || secs(stamp.at) >= secs(cur.at)) this.s.fields[field] = stamp;
  }

  /** Sets an observed field when this word is at least as new as the one it replaces. */
  private setField(
    field: Exclude<ProfileField, 'status' | 'customerId'>,
    value: unknown,
    stamp: Stamp,
    force = false,
  ): void {
    const s = this.s;
    const cur = s.fields[field];
    if (!force && cur && secs(stamp.at) < secs(cur.at)) return;
    s.fields[field] = stamp;
    switch (field) {
      case 'currency':
        s.currency = value as string;
        return;
      case 'amountPerCycle':
        s.amountPerCycleMinor = value as number;
        return;
      case 'outstanding':
        s.outstandingMinor = value as number;
        return;
      case 'nextPaymentDate':
        s.nextPaymentDate = value as string | null;
        return;
      case 'failedPaymentCount':
        s.failedPaymentCount = value as number;
        return;
    }
  }

  private checkOutstanding(messageId: string | null): void {
    const s = this.s;
    const { outstandingMinor: out, amountPerCycleMinor: cycle } = s;
    if (out === null || cycle === null || cycle <= 0 || !s.currency) return;
    if (out > cycle * this.ctx.outstandingAlertCycles && !s.attention.includes(ATTENTION.outstanding)) {
      this.attend(ATTENTION.outstanding);
      const detail =
        `${s.profileId}: outstanding ${describeMoney(out, s.currency)} ` +
        `is over ${this.ctx.outstandingAlertCycles} cycles`;
      this.alert('profile_outstanding_over_threshold', messageId, detail);
    }
  }

  // ---- money ---------------------------------------------------------------------------------

  private onPayment(e: ProfileEvent): void {
    const s = this.s;
    let p = s.payments.find((x) => x.txnId === e.txnId);
    if (p?.paymentStatus === 'Completed') {
      this.note('ipn', `${e.txnId} ${e.paymentStatus} after Completed: recorded`, e.messageId);
      return;
    }
    const fresh: CyclePayment = {
      txnId: e.txnId!,
      txnType: e.txnType,
      paymentStatus: e.paymentStatus!,
      messageId: e.messageId,
      currency: e.currency,
      grossMinor: e.grossMinor,
      creditMinor: e.creditMinor,
      flags: e.flags,
      sandbox: e.sandbox,
      at: e.eventAt,
      creditedMinor: 0,
      debitedMinor: 0,
      held: null,
      holdCause: null,
    };
    if (p) Object.assign(p, fresh);
    else {
      p = fresh;
      s.payments.push(p);
      if (s.payments.length > PAYMENTS_LIMIT) s.payments.splice(0, s.payments.length - PAYMENTS_LIMIT);
    }
    if (e.paymentStatus !== 'Completed') return;
    const final = s.fields.status;
    if (this.rules.namedMatters && s.status && TERMINAL.includes(s.status) && final && e.dated) {
      // Money PayPal collected is credited as received; that it was collected at all needs a person.
      if (secs(e.eventAt) > secs(final.at)) {
        this.contradiction(
          matter('payment_after_final', p.txnId),
          e.messageId,
          `${p.txnId} Completed on ${e.eventAt}, after ${s.status} as of ${final.at}`,
        );
      }
    }
    // A payment on time clears the failures before it (PayPal counts consecutive failures).
    const failed = s.fields.failedPaymentCount;
    if (!failed || e.eventAt >= failed.at)
      this.setField('failedPaymentCount', 0, { source: 'ipn', at: e.eventAt, dated: e.dated, by: e.messageId });
    this.effects.push({ type: 'claim_txn', txnId: p.txnId });
    this.credit(p, null);
  }

  private blockingFlags(flags: string[]): string[] {
    return flags.filter((f) => !INFORMATIONAL_FLAGS.includes(f) && !this.s.approvedFlags.includes(f));
  }

  /** Credits a Completed payment once (mc_gross, not the profile's amount: a catch-up carries more). */
  private credit(p: CyclePayment, by: ProfileAction | null): void {
    const s = this.s;
    const blocking = this.blockingFlags(p.flags);
    if (blocking.length > 0) return this.hold(p, { code: 'checks_failed', flags: blocking });
    if (p.creditMinor === null || p.creditMinor <= 0 || !p.currency || !isSupportedCurrency(p.currency))
      return this.hold(p, { code: 'amount_unusable' });
    const customerId = s.customerId ?? this.match();
    if (!customerId) {
      this.attend(ATTENTION.noCustomer);
      return this.hold(p, { code: 'no_customer_match' });
    }
    const posted = this.post({
      customerId,
      currency: p.currency,
      amountMinor: p.creditMinor,
      idempotencyKey: `credit:${s.integrationId}:${p.txnId}`,
      reason: 'payment',
      mode: p.sandbox ? 'sandbox' : 'live',
      integrationId: s.integrationId,
      txnId: p.txnId,
      messageId: p.messageId,
      ...(by ? { operator: by.operator, note: by.reason } : {}),
    });
    if (!posted.ok) {
      this.note('workflow', `the ledger refused crediting ${p.txnId}: ${posted.reason.slice(0, 300)}`, p.messageId);
      return this.hold(p, { code: 'ledger_conflict' });
    }
    if (s.customerId === null) {
      s.customerId = customerId;
      s.fields.customerId = { source: 'ipn', at: this.ctx.now, dated: false, by: p.messageId };
    }
    p.creditedMinor = p.creditMinor;
    p.held = null;
    p.holdCause = null;
    s.creditedMinor += p.creditMinor;
    this.note(
      'workflow',
      `credited ${describeMoney(p.creditMinor, p.currency)} (${p.txnId}) to ${customerId}`,
      p.messageId,
    );
  }

  private post(posting: Posting): PostingOutcome {
    return this.need(this.facts.postings?.[posting.idempotencyKey], { fact: 'posting', posting });
  }

  private match(): string | null {
    const s = this.s;
    return this.need(this.facts.customerMatch, {
      fact: 'customerMatch',
      integrationId: s.integrationId,
      custom: s.custom,
      payerEmail: s.payerEmail,
    });
  }

  private matchOrAttend(messageId: string): void {
    const found = this.match();
    const s = this.s;
    if (found) {
      s.customerId = found;
      s.fields.customerId = { source: 'ipn', at: this.ctx.now, dated: false, by: messageId };
      return;
    }
    this.attend(ATTENTION.noCustomer);
    this.note('workflow', 'no customer matches the payer: held for an operator to assign one', messageId);
    this.alert('profile_held', messageId, `${s.profileId}: no customer matches`);
  }

  private hold(p: CyclePayment, cause: ProfileHoldReason): void {
    const reason = reasonText(cause);
    if (p.held === reason) return;
    p.held = reason;
    p.holdCause = cause;
    this.note('workflow', `${p.txnId} held: ${reason}`, p.messageId);
    this.alert('profile_payment_held', p.messageId, `${this.s.profileId}/${p.txnId}: ${reason}`);
  }

  private releaseHeld(by: ProfileAction): void {
    for (const p of this.s.payments) if (p.held !== null && p.paymentStatus === 'Completed') this.credit(p, by);
  }

  // ---- refunds, reversals and disputes of cycle payments -------------------------------------

  private onAdjustment(e: LifecycleEvent): MessageOutcomeRecord {
    const s = this.s;
    const p = s.payments.find((x) => x.txnId === e.paymentTxnId);
    const key = e.kind === 'dispute' ? `case:${e.caseId ?? e.messageId}` : `${e.txnId}:${e.paymentStatus}`;
    if (e.integrationId !== s.integrationId || !p) {
      this.attend(matter('foreign_event', e.messageId));
      this.alert(
        'profile_foreign_event',
        e.messageId,
        `${s.profileId} got a ${e.kind} of ${e.paymentTxnId}, not one of its payments`,
      );
      return notApplied.foreign(e.messageId, 'not a payment of this profile');
    }
    if (s.processedKeys.includes(key)) {
      return notApplied.duplicate(e.messageId, key);
    }
    const proof = this.need(this.facts.proof, { fact: 'adjustmentProof', event: e });
    if (!proof.ok) {
      this.attend(matter('unproven_event', e.messageId));
      this.alert('profile_unproven_event', e.messageId, `${s.profileId}: ${proof.reason}`);
      return notApplied.unproven(e.messageId, proof.reason);
    }
    s.processedKeys.push(key);
    const attendAdjustment = (why: string) => {
      this.attend(matter(e.kind, e.txnId));
      this.note('ipn', `${e.kind} ${e.txnId} of ${p.txnId} needs a person: ${why}`, e.messageId);
      this.alert('profile_adjustment_held', e.messageId, `${s.profileId}/${p.txnId}: ${why}`);
    };
    if (e.kind === 'dispute') attendAdjustment(`dispute ${e.caseId ?? ''} opened`);
    else if (p.creditedMinor <= 0) attendAdjustment('the payment was never credited');
    else if (this.blockingFlags(e.flags).length > 0 || e.creditMinor === null || e.currency !== p.currency) {
      attendAdjustment('checks failed or another currency');
    } else if (e.kind === 'canceled_reversal') {
      const amount = Math.min(e.creditMinor, p.debitedMinor);
      if (amount > 0 && this.postAdjustment(e, p, amount)) {
        p.debitedMinor -= amount;
        s.debitedMinor -= amount;
      }
    } else {
      const remaining = p.creditedMinor - p.debitedMinor;
      if (e.creditMinor > remaining)
        attendAdjustment(`${describeMoney(e.creditMinor, p.currency!)} exceeds what remains`);
      else if (this.postAdjustment(e, p, -e.creditMinor)) {
        p.debitedMinor += e.creditMinor;
        s.debitedMinor += e.creditMinor;
      }
    }
    return {
      messageId: e.messageId,
      outcome: `applied:${s.status ?? 'unknown'}`,
      detail: s.history.at(-1)?.what ?? '',
    };
  }

  private postAdjustment(e: LifecycleEvent, p: CyclePayment, amountMinor: number): boolean {
    const s = this.s;
    const reason = e.kind === 'canceled_reversal' ? 'canceled_reversal' : e.kind === 'reversal' ? 'reversal' : 'refund';
    const posted = this.post({
      customerId: s.customerId!,
      currency: p.currency!,
      amountMinor,
      idempotencyKey: `${e.kind}:${s.integrationId}:${e.txnId}:${e.paymentStatus}`,
      reason,
      mode: p.sandbox ? 'sandbox' : 'live',
      integrationId: s.integrationId,
      txnId: e.txnId,
      parentTxnId: p.txnId,
      messageId: e.messageId,
    });
    if (!posted.ok) {
      this.attend(matter('ledger_conflict', e.txnId));
      this.alert('profile_adjustment_held', e.messageId, `${s.profileId}/${e.txnId}: ${posted.reason.slice(0, 200)}`);
      return false;
    }
    this.note('ipn', `${e.kind} ${e.txnId} of ${p.txnId}: ${describeMoney(amountMinor, p.currency!)}`, e.messageId);
    return true;
  }

  // ---- operators and PayPal's API ------------------------------------------------------------

  private onOperator(input: OperatorInput): void {
    const s = this.s;
    const a = input.action;
    const refusal = refusalOf(s, input, this.ctx.now, this.rules);
    const auditAction = `profile_${input.type}`;
    if (refusal) {
      this.result = refusal;
      this.note('operator', `${a.operator} asked to ${input.type}: refused (${refusal.rule}) ${refusal.detail}`);
      this.audit({
        actor: a.operator,
        action: `${auditAction}_refused`,
        reason: a.reason,
        details: { rule: refusal.rule, refused: refusal.detail },
      });
      return;
    }
    switch (input.type) {
      case 'assign': {
        const exists = this.need(this.facts.customerExists, {
          fact: 'customerExists',
          customerId: input.action.customerId,
        });
        if (!exists) {
          this.result = {
            ok: false,
            status: 422,
            rule: 'no_such_customer',
            detail: `no customer ${input.action.customerId}`,
          };
          this.audit({
            actor: a.operator,
            action: 'profile_assign_refused',
            reason: a.reason,
            details: { refused: 'no such customer' },
          });
          return;
        }
        this.audit({
          actor: a.operator,
          action: 'profile_assign',
          reason: a.reason,
          customerId: input.action.customerId,
        });
        s.customerId = input.action.customerId;
        s.fields.customerId = { source: 'api', at: this.ctx.now, dated: false, by: a.operator };
        s.attention = s.attention.filter((x) => x !== ATTENTION.noCustomer);
        this.note('operator', `${a.operator} assigned customer ${s.customerId}: ${a.reason}`);
        this.releaseHeld(a);
        this.result = { ok: true, detail: `assigned to ${s.customerId}` };
        return;
      }
      case 'approve': {
        this.audit({
          actor: a.operator,
          action: 'profile_approve',
          reason: a.reason,
          customerId: s.customerId ?? undefined,
        });
        for (const p of s.payments) if (p.holdCause?.code === 'checks_failed') s.approvedFlags.push(...p.flags);
        this.note('operator', `${a.operator} approved held payments: ${a.reason}`);
        this.releaseHeld(a);
        this.result = { ok: true, detail: 'approved' };
        return;
      }
      case 'acknowledge':
        return this.acknowledge(input.action);
      case 'refresh':
        this.refresh(a);
        return;
      case 'cancel':
        if (s.status === 'Cancelled') {
          this.result = { ok: true, detail: `${s.profileId} is already cancelled` };
          this.note('operator', `${a.operator} asked to cancel: already cancelled, nothing to do`);
          this.audit({
            actor: a.operator,
            action: auditAction,
            reason: a.reason,
            details: { result: 'already cancelled' },
          });
          return;
        }
        return this.manage(input.type, 'Cancel', 'Cancelled', a);
      case 'suspend':
        return this.manage(input.type, 'Suspend', 'Suspended', a);
      case 'reactivate':
        return this.manage(input.type, 'Reactivate', 'Active', a);
      case 'bill':
        return this.bill(input.action);
    }
  }

  private acknowledge(a: AcknowledgeProfileAction): void {
    const s = this.s;
    // Refused beforehand (refusalOf) when it would close nothing it may.
    const ack = acknowledgeMatters(MATTER_CLOSING, s.attention, a.matter, s.profileId);
    const closes = (m: string) =>
      !this.rules.namedMatters
        ? // No customer stays a matter until one is assigned: acknowledging it would hide held money.
          !(m === ATTENTION.noCustomer && s.customerId === null)
        : ack.ok && ack.closed.includes(m);
    const closed = s.attention.filter(closes);
    s.attention = s.attention.filter((m) => !closes(m));
    this.audit({
      actor: a.operator,
      action: 'profile_acknowledge',
      reason: a.reason,
      details: { closed, open: s.attention },
    });
    this.note('operator', `${a.operator} acknowledged ${closed.join(', ')}: ${a.reason}`);
    const open = s.attention.length ? `; still open: ${s.attention.join(', ')}` : '';
    this.result = {
      ok: true,
      detail: this.rules.namedMatters ? `acknowledged ${closed.join(', ')}${open}` : 'acknowledged',
    };
  }

  private callPayPal(call: NvpCall): NvpOutcome {
    return this.need(this.facts.nvp, { fact: 'nvp', call });
  }

  /** Records who asked what and what PayPal said; false (with the result set) unless PayPal said Success. */
  private answered(
    type: string,
    a: ProfileAction,
    call: NvpCall,
    answer: NvpOutcome,
  ): answer is Extract<NvpOutcome, { ack: 'Success' }> {
    const shown =
      answer.ack === 'Success'
        ? 'Success'
        : answer.ack === 'Failure'
          ? `Failure ${answer.code} ${answer.longMessage}`
          : `no answer: ${answer.message}`;
    this.audit({
      actor: a.operator,
      action: `profile_${type}`,
      reason: a.reason,
      customerId: this.s.customerId ?? undefined,
      details: auditedCall(call, answer),
    });
    this.note('api', `${a.operator} asked to ${type} (${a.reason}): PayPal answered ${shown}`);
    if (answer.ack === 'Success') return true;
    this.result =
      answer.ack === 'Failure'
        ? {
            ok: false,
            status: 409,
            rule: answer.code,
            detail: `PayPal refused: ${answer.code} ${answer.shortMessage}: ${answer.longMessage}`,
            paypal: answer,
          }
        : { ok: false, status: 502, rule: 'paypal_unreachable', detail: answer.message, paypal: answer };
    return false;
  }

  private manage(type: 'cancel' | 'suspend' | 'reactivate', action: string, to: ProfileStatus, a: ProfileAction): void {
    const call: NvpCall = {
      method: 'ManageRecurringPaymentsProfileStatus',
      params: { PROFILEID: this.s.profileId, ACTION: action, NOTE: a.reason },
    };
    const answer = this.callPayPal(call);
    if (!this.answered(type, a, call, answer)) {
      // PayPal's 11556 on a cancel means it is cancelled there already: that is what was asked.
      if (type === 'cancel' && answer.ack === 'Failure' && answer.code === '11556') {
        this.note('api', 'PayPal says the profile cannot be cancelled: refresh to learn its status');
      }
      return;
    }
    // No IPN follows an API change: PayPal's answer is the confirmation.
    this.setStatus(to, { source: 'api', at: this.ctx.now, dated: true, by: a.operator }, null);
    if (type === 'reactivate') this.s.attention = this.s.attention.filter((x) => x !== ATTENTION.maxFailed);
    this.result = { ok: true, detail: `${this.s.profileId} is ${to}`, paypal: answer };
  }

  private bill(a: BillOutstandingAction): void {
    const st = this.s;
    const amount = billAmount(st, a)!;
    const params: Record<string, string> = { PROFILEID: st.profileId, NOTE: a.reason };
    if (a.amount !== undefined) params.AMT = formatMinor(amount, st.currency!);
    const call: NvpCall = { method: 'BillOutstandingAmount', params };
    const answer = this.callPayPal(call);
    if (!this.answered('bill', a, call, answer)) {
      if (answer.ack === 'Unknown' && this.rules.billOnce) this.billUncertain(amount, a, answer.message);
      return;
    }
    // The money arrives (or fails) by IPN; until then PayPal refuses another bill.
    st.billQueued = { amountMinor: amount, at: this.ctx.now, operator: a.operator };
    this.result = {
      ok: true,
      detail: `billing ${describeMoney(amount, st.currency!)}; the result arrives by IPN`,
      paypal: answer,
    };
  }

  /**
   * The bill was sent and its answer lost: PayPal may have billed. Not sent again (PayPal documents
   * no idempotency for it), held for a person until evidence settles it (`reconcileBill`).
   */
  private billUncertain(amount: number, a: BillOutstandingAction, why: string): void {
    const st = this.s;
    st.billUncertain = {
      amountMinor: amount,
      at: this.ctx.now,
      operator: a.operator,
      outstandingBeforeMinor: st.outstandingMinor ?? 0,
      why: why.slice(0, 300),
    };
    this.attend(ATTENTION.billUncertain);
    const detail =
      `PayPal's answer to billing ${describeMoney(amount, st.currency!)} was lost (${why.slice(0, 200)}): it may ` +
      `have billed. Not sent again; held until its IPN arrives or PayPal's balance settles it`;
    this.note('api', detail);
    this.alert('profile_bill_uncertain', null, `${st.profileId}: ${detail}`);
    this.result = { ok: false, status: 502, rule: 'bill_uncertain', detail, paypal: { ack: 'Unknown', message: why } };
  }

  /**
   * Evidence about an uncertain bill. PayPal's outstanding-payment IPN (Completed or failed) means
   * it was carried out; so does PayPal's balance below what it was when the bill was sent (were
   * something else to have lowered it, a new bill could still ask only for what remains). A balance
   * not lower once the settle window has passed, with no such IPN in it, means it was not: only then
   * may a bill be sent again. Within the window an unchanged balance proves nothing (PayPal may
   * still be collecting).
   */
  private reconcileBill(
    evidence: { by: 'paypal'; ipn: ProfileEvent } | { by: string; outstandingMinor: number },
  ): void {
    const st = this.s;
    const u = st.billUncertain;
    if (!u) return;
    const money = (m: number) => describeMoney(m, st.currency!);
    const elapsed = Date.parse(this.ctx.now) - Date.parse(u.at);
    let verdict: 'carried_out' | 'not_carried_out';
    let why: string;
    if ('ipn' in evidence) {
      verdict = 'carried_out';
      why = `PayPal's ${evidence.ipn.txnType} IPN arrived`;
    } else if (evidence.outstandingMinor < u.outstandingBeforeMinor) {
      verdict = 'carried_out';
      why = `PayPal's outstanding is ${money(evidence.outstandingMinor)}, ${money(u.outstandingBeforeMinor)} when sent`;
    } else if (elapsed >= this.ctx.billSettleMs) {
      verdict = 'not_carried_out';
      why =
        `PayPal's outstanding is still ${money(evidence.outstandingMinor)} ` +
        `${Math.round(elapsed / 1000)} s after the bill, and no outstanding-payment IPN came`;
    } else {
      this.note(
        'refresh',
        `bill of ${money(u.amountMinor)} still uncertain: PayPal's outstanding is ` +
          `${money(evidence.outstandingMinor)} as when sent; settled no earlier than ` +
          `${new Date(Date.parse(u.at) + this.ctx.billSettleMs).toISOString()}`,
      );
      return;
    }
    st.billUncertain = null;
    st.attention = st.attention.filter((m) => m !== ATTENTION.billUncertain);
    const messageId = 'ipn' in evidence ? evidence.ipn.messageId : null;
    const detail =
      `bill of ${money(u.amountMinor)} by ${u.operator} at ${u.at}: ` + `${verdict.replaceAll('_', ' ')} (${why})`;
    this.note('ipn' in evidence ? 'ipn' : 'refresh', detail, messageId);
    this.audit({
      actor: evidence.by,
      action: 'profile_bill_reconciled',
      customerId: st.customerId ?? undefined,
      details: {
        verdict,
        amountMinor: u.amountMinor,
        sentAt: u.at,
        outstandingBeforeMinor: u.outstandingBeforeMinor,
        ...('ipn' in evidence
          ? { messageId, txnType: evidence.ipn.txnType }
          : { outstandingAfterMinor: evidence.outstandingMinor }),
      },
    });
    this.alert('profile_bill_reconciled', messageId, `${st.profileId}: ${detail}`);
  }

  /** PayPal's current view of the profile replaces ours field by field; what changed is recorded as drift. */
  private refresh(a: ProfileAction | null): void {
    const st = this.s;
    const call: NvpCall = { method: 'GetRecurringPaymentsProfileDetails', params: { PROFILEID: st.profileId } };
    const answer = this.callPayPal(call);
    const who = a ?? { operator: 'schedule', reason: 'scheduled refresh' };
    st.lastRefreshAt = this.ctx.now;
    if (!this.answered('refresh', who, call, answer)) {
      if (!a)
        this.alert(
          'profile_refresh_failed',
          null,
          `${st.profileId}: ${this.result?.ok === false ? this.result.detail : ''}`,
        );
      return;
    }
    const f = answer.fields;
    const stamp: Stamp = { source: 'refresh', at: this.ctx.now, dated: true, by: who.operator };
    const before = summary(st);
    const status = ProfileStatusSchema.safeParse(f.STATUS);
    if (status.success) this.setStatus(status.data, stamp, null);
    const currency = f.CURRENCYCODE ?? st.currency;
    if (currency && isSupportedCurrency(currency)) {
      this.setField('currency', currency, stamp);
      const minor = (v: string | undefined) => {
        try {
          return v === undefined ? null : parseAmount(v, currency);
        } catch {
          return null;
        }
      };
      const out = minor(f.OUTSTANDINGBALANCE);
      if (out !== null) this.setField('outstanding', out, stamp);
      if (out !== null) this.reconcileBill({ by: who.operator, outstandingMinor: out });
      const amt = minor(f.AMT);
      if (amt !== null) this.setField('amountPerCycle', amt, stamp);
    }
    // PayPal leaves NEXTBILLINGDATE out when nothing is scheduled (a suspended or ended profile).
    const next = Date.parse(f.NEXTBILLINGDATE ?? '');
    this.setField('nextPaymentDate', Number.isFinite(next) ? new Date(next).toISOString() : null, stamp);
    if (f.FAILEDPAYMENTCOUNT !== undefined && /^\d+$/.test(f.FAILEDPAYMENTCOUNT)) {
      this.setField('failedPaymentCount', Number(f.FAILEDPAYMENTCOUNT), stamp);
    }
    // PayPal no longer shows a queued bill once it ran: its IPN tells us the result.
    const after = summary(st);
    if (before !== after) {
      this.note('refresh', `PayPal's view differed: ${before} → ${after}`);
      this.alert('profile_drift', null, `${st.profileId}: ${before} → ${after}`);
    }
    this.checkOutstanding(null);
    this.result = { ok: true, detail: before === after ? 'no change' : `updated: ${after}`, paypal: answer };
  }

  // ---- bookkeeping ---------------------------------------------------------------------------

  private attend(m: string): void {
    if (!this.s.attention.includes(m)) this.s.attention.push(m);
  }

  /** PayPal said something a final state rules out: a matter only a decision naming it closes. */
  private contradiction(m: string, messageId: string, detail: string): void {
    this.attend(m);
    this.note('ipn', `contradiction: ${detail}; waiting for a person`, messageId);
    this.alert('profile_contradiction', messageId, `${this.s.profileId}: ${detail}`);
  }

  private note(source: FieldSource | 'operator' | 'workflow', what: string, messageId: string | null = null): void {
    pushHistory(this.s, { at: this.ctx.now, source, messageId, what });
  }

  private alert(kind: string, messageId: string | null, detail: string): void {
    this.effects.push({ type: 'alert', kind, messageId, detail });
  }

  private audit(a: Omit<Extract<ProfileEffect, { type: 'audit' }>, 'type'>): void {
    this.effects.push({ type: 'audit', ...a });
  }
}

/** The observed fields in one line, for history and drift notes. */
function summary(st: ProfileState): string {
  const money = (m: number | null) => (m === null || !st.currency ? String(m) : describeMoney(m, st.currency));
  return (
    `status ${st.status ?? '?'}, per cycle ${money(st.amountPerCycleMinor)}, outstanding ` +
    `${money(st.outstandingMinor)}, next ${st.nextPaymentDate ?? 'N/A'}, failed ${st.failedPaymentCount}`
  );
}

/** PayPal's clock has whole seconds: two words in the same second are equally new. */
function secs(iso: string): string {
  return iso.slice(0, 19);
}

function pushHistory(st: ProfileState, entry: ProfileState['history'][number]): void {
  pushBounded(st.history, entry, HISTORY_LIMIT);
}
