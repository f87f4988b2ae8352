import { describeMoney, isSupportedCurrency } from '../shared/money';
import { moneyModeOf } from '../shared/money-mode';
import type {
  AcknowledgeAction,
  AssignCustomerAction,
  DecisionResult,
  OperatorAction,
  Refusal,
} from '../shared/operator-actions';
import { acknowledged, acknowledgeRefusal, paymentMatter, type MatterRule } from './matters';
import { INFORMATIONAL_FLAGS, type LifecycleEvent, type PaymentState } from './state';
import { clone, NeedFact, notApplied, pushBounded, type AlertEffect, type AuditEffect } from '../shared/rules-kit';
import type { MessageOutcomeRecord } from '../messages/state';
import type { MoneyMode, Posting, PostingOutcome } from '../shared/ledger';
import type { Proof } from '../shared/rules-kit';
import { adjustmentKey, creditKey } from '../shared/ids';
import { capsOnApprove, holdFor, type PaymentHoldReason } from './hold';

/**
 * The rules of one PayPal transaction's life, as a pure function: given the state and one input,
 * what the state becomes and which effects follow. The workflow only gathers the facts this asks
 * for (a customer match, a ledger posting's result, a message's proof) and runs the effects.
 *
 * Facts work by re-running: when `decide` needs one it has not been given, it stops and names it;
 * the caller fetches it and calls again from the same state with that fact added. Ledger postings
 * are facts too — they are idempotent by key, so asking twice never moves money twice — which
 * lets a posting's failure become a hold instead of state that claims money moved.
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

export type PaymentEffect = AlertEffect | AuditEffect;

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

const NO_MONEY_STATUSES = ['Denied', 'Failed', 'Expired', 'Voided', 'Declined'];
const HISTORY_LIMIT = 100;
const INTERNAL_ERROR = paymentMatter('internal_error');
export const ORPHAN_ATTENTION = paymentMatter('adjustment_without_payment');

/**
 * Never throws: an unexpected error (a bug, an input no rule foresaw) leaves the state as it was,
 * asks a person, and says why — a workflow task that throws would retry forever and wedge the
 * payment with everything queued behind it.
 */
export function decidePayment(
  state: PaymentState,
  input: PaymentInput,
  facts: PaymentFacts,
  ctx: DecideContext,
): PaymentDecision {
  const decider = new Decider(clone(state), facts, ctx);
  try {
    return decider.run(input);
  } catch (err) {
    if (err instanceof NeedFact) return { kind: 'need', need: err.need, effects: decider.effects };
    const s = clone(state);
    const messageId = input.type === 'ipn' ? input.event.messageId : null;
    const detail = `${input.type}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300);
    if (!s.attention.includes(INTERNAL_ERROR)) s.attention.push(INTERNAL_ERROR);
    pushHistory(s, { at: ctx.now, messageId, what: `could not decide (${detail}); waiting for a person` });
    return {
      kind: 'done',
      state: s,
      effects: [{ type: 'alert', kind: 'payment_internal_error', messageId, detail: `${s.txnId}: ${detail}` }],
      outcome: messageId ? { messageId, outcome: 'internal_error', detail, addFlags: ['alert'] } : null,
      result: 'action' in input ? { ok: false, status: 409, rule: 'internal_error', detail } : null,
    };
  }
}

/** Whether a person must act before this payment can move on (it then never closes on idle). */
export function needsPerson(s: PaymentState): boolean {
  return s.hold !== null || s.attention.length > 0;
}

/**
 * When the workflow should wake up by itself (epoch ms), or null: refunds and reversals that
 * arrived for a payment we have not credited are shown to a person once the grace period ends.
 */
export function nextDeadline(s: PaymentState, orphanGraceSeconds: number): number | null {
  if (s.phase === 'credited' || s.waiting.length === 0 || s.attention.includes(ORPHAN_ATTENTION)) return null;
  const oldest = Math.min(...s.waiting.map((w) => Date.parse(w.receivedAt)).filter((t) => Number.isFinite(t)));
  return Number.isFinite(oldest) ? oldest + orphanGraceSeconds * 1000 : null;
}

/**
 * How long the workflow may wait for input before acting by itself: until a deadline (then a tick),
 * else until idle (then it closes, its state being in MongoDB) unless a person must act first
 * (then it waits as long as it takes). A deadline always wins over closing: a closed workflow has
 * no timer, and the refund waiting for it would never be shown to anyone.
 */
export function nextWake(
  s: PaymentState,
  nowMs: number,
  idleMs: number,
  orphanGraceSeconds: number,
): { afterMs: number | null; then: 'tick' | 'close' } {
  const deadline = nextDeadline(s, orphanGraceSeconds);
  if (deadline !== null) return { afterMs: Math.max(0, deadline - nowMs), then: 'tick' };
  return needsPerson(s) ? { afterMs: null, then: 'close' } : { afterMs: idleMs, then: 'close' };
}

/**
 * Why an operator's decision is refused now, or null when it matches something pending. The
 * workflow asks it for the update and the signal alike, on the payment as it is when the decision's
 * turn comes. (Assigning a customer that does not exist is refused too, once the rules asked.)
 */
export function refusalOf(
  s: PaymentState,
  input: Extract<PaymentInput, { action: unknown }>,
  rules: { refuseLiveOnSandbox: boolean; namedMatters?: boolean } = { refuseLiveOnSandbox: true },
): PaymentRefusal | null {
  const conflict = (rule: PaymentRefusalRule, detail: string): PaymentRefusal => ({ status: 409, rule, detail });
  switch (input.type) {
    case 'approve': {
      if (!s.hold) return conflict('nothing_held', `nothing is held on ${s.txnId} to approve`);
      const held = s.hold.on === 'payment' ? s.payment : s.waiting[0];
      if (rules.refuseLiveOnSandbox && held?.flags.includes('live_message_on_sandbox'))
        return {
          status: 422,
          rule: LIVE_ON_SANDBOX_RULE,
          detail:
            `${held.txnId} came without test_ipn to a sandbox integration, ` +
            'which never posts live money; reject it (a real live payment belongs to a live integration)',
        };
      return null;
    }
    case 'reject':
      return s.hold ? null : conflict('nothing_held', `nothing is held on ${s.txnId} to ${input.type}`);
    case 'acknowledge': {
      const refusal = acknowledgeRefusal(s, input.action.matter, rules.namedMatters ?? true);
      return refusal === null ? null : conflict(refusal.rule, refusal.detail);
    }
    case 'assign':
      // Who was credited is settled by the ledger entry; moving money between customers is not an assignment.
      return s.creditedMinor > 0
        ? conflict('already_credited', `${s.txnId} is already credited to ${s.customerId}`)
        : null;
  }
}

class Decider {
  readonly effects: PaymentEffect[] = [];

  constructor(
    private readonly s: PaymentState,
    private readonly facts: PaymentFacts,
    private readonly ctx: DecideContext,
  ) {}

  /** An operator decision's outcome; set by refused() or once the decision is applied. */
  private result: PaymentResult | null = null;

  run(input: PaymentInput): PaymentDecision {
    const outcome = this.apply(input);
    const result = 'action' in input ? (this.result ?? this.applied(input.type)) : null;
    return { kind: 'done', state: this.s, effects: this.effects, outcome, result };
  }

  /** An applied decision's answer: what the payment's history now says of it. */
  private applied(type: string): PaymentResult {
    return { ok: true, detail: this.s.history.at(-1)?.what ?? type };
  }

  private apply(input: PaymentInput): MessageOutcomeRecord | null {
    switch (input.type) {
      case 'ipn':
        return this.onIpn(input.event);
      case 'assign':
        this.onAssign(input.action);
        return null;
      case 'approve':
        this.onApprove(input.action);
        return null;
      case 'reject':
        this.onReject(input.action);
        return null;
      case 'acknowledge':
        this.onAcknowledge(input.action);
        return null;
      case 'malformed':
        this.note(`ignored a malformed ${input.signal} signal: ${input.issues}`);
        this.audit({
          actor: 'unknown',
          action: 'malformed_signal',
          details: { signal: input.signal, issues: input.issues },
        });
        this.alert('malformed_signal', null, `${this.s.txnId}: ${input.signal}: ${input.issues}`);
        return null;
      case 'tick':
        this.onTick();
        return null;
    }
  }

  // ---- facts ---------------------------------------------------------------------------------

  private need<T>(have: T | undefined, need: FactNeed): T {
    if (have === undefined) throw new NeedFact<FactNeed>(need);
    return have;
  }

  private post(posting: Posting): PostingOutcome {
    return this.need(this.facts.postings?.[posting.idempotencyKey], { fact: 'posting', posting });
  }

  // ---- IPN events ----------------------------------------------------------------------------

  private onIpn(e: LifecycleEvent): MessageOutcomeRecord {
    const s = this.s;
    if (e.integrationId !== s.integrationId || e.paymentTxnId !== s.txnId) {
      // Another payment's event: applying it here would move money on the wrong transaction.
      this.attend(paymentMatter('foreign_event', e.messageId));
      this.note(`refused an event for ${e.integrationId}/${e.paymentTxnId}: not this payment`, e.messageId);
      this.alert(
        'payment_foreign_event',
        e.messageId,
        `${s.integrationId}/${s.txnId} got an event for ${e.integrationId}/${e.paymentTxnId}`,
      );
      return notApplied.foreign(e.messageId, 'event for another payment');
    }
    const key = e.kind === 'dispute' ? `case:${e.caseId ?? e.messageId}` : `${e.txnId}:${e.paymentStatus}`;
    if (s.processedKeys.includes(key)) {
      this.note(`duplicate of ${key}: ignored`, e.messageId);
      return notApplied.duplicate(e.messageId, key);
    }
    // Money moves only on what a stored, verified message says: a hand-made event (say, a signal
    // typed into the Web UI) proves nothing and is shown to a person instead.
    const proof = this.need(this.facts.proof, { fact: 'proof', event: e });
    if (!proof.ok) {
      this.attend(paymentMatter('unproven_event', e.messageId));
      this.note(`ignored an event that no verified message backs: ${proof.reason}`, e.messageId);
      this.alert('payment_unproven_event', e.messageId, `${s.txnId}: ${proof.reason}`);
      return notApplied.unproven(e.messageId, proof.reason);
    }
    s.processedKeys.push(key);
    switch (e.kind) {
      case 'payment':
        this.onPaymentStatus(e);
        break;
      case 'dispute':
        this.attend(paymentMatter('dispute', (e.caseId ?? 'no-case-id').slice(0, 64)));
        this.note(`dispute opened (${e.caseId ?? 'no case id'})`, e.messageId);
        this.alert('dispute_opened', e.messageId, `dispute on ${s.txnId}`);
        break;
      default:
        s.waiting.push(e);
        this.note(`${e.kind} ${e.txnId} received`, e.messageId);
        this.applyWaiting();
    }
    return {
      messageId: e.messageId,
      outcome: `applied:${s.phase}`,
      detail: s.hold?.reason ?? s.history.at(-1)?.what ?? '',
    };
  }

  private onPaymentStatus(e: LifecycleEvent): void {
    const s = this.s;
    // Nothing follows Completed on the payment's own txn (later money moves come as refunds and
    // reversals with their own txn ids): a status arriving after it was sent earlier and delivered
    // late, and must not replace the Completed a held payment is waiting to credit.
    if (s.phase === 'credited' || s.phase === 'rejected' || s.payment?.paymentStatus === 'Completed') {
      const after = s.payment?.paymentStatus === 'Completed' ? `Completed (${s.phase})` : s.phase;
      this.note(`${e.paymentStatus} after ${after}: recorded`, e.messageId);
      return;
    }
    s.paymentStatus = e.paymentStatus;
    s.payment = e;
    s.currency = e.currency;
    if (e.paymentStatus === 'Completed') {
      this.credit(null);
    } else if (NO_MONEY_STATUSES.includes(e.paymentStatus)) {
      if (s.hold?.on === 'payment') s.hold = null;
      s.phase = 'not_paid';
      this.note(`${e.paymentStatus}: no money moves`, e.messageId);
    } else {
      // Pending (any pending_reason), Created, Processed: wait for Completed.
      if (s.hold?.on !== 'payment') s.phase = 'pending';
      const why = e.pendingReason ? ` (${e.pendingReason})` : '';
      this.note(`${e.paymentStatus}${why}: waiting for Completed`, e.messageId);
    }
  }

  private blockingFlags(e: LifecycleEvent): string[] {
    return e.flags.filter((f) => !INFORMATIONAL_FLAGS.includes(f) && !this.s.approvedFlags.includes(f));
  }

  private modeOf(e: LifecycleEvent): MoneyMode {
    return moneyModeOf(e.sandbox);
  }

  /** Credits the payment once; holds it instead when a check failed or no customer matches. */
  private credit(by: OperatorAction | null): void {
    const s = this.s;
    const p = s.payment!;
    const blocking = this.blockingFlags(p);
    if (blocking.length > 0) return this.holdOn('payment', { code: 'checks_failed', flags: blocking }, p.messageId);
    if (p.creditMinor === null || p.creditMinor <= 0 || !p.currency || !isSupportedCurrency(p.currency)) {
      return this.holdOn('payment', { code: 'amount_unusable' }, p.messageId);
    }
    const customerId =
      s.customerId ??
      this.need(this.facts.customerMatch, {
        fact: 'customerMatch',
        integrationId: s.integrationId,
        custom: p.custom,
        payerEmail: p.payerEmail,
      });
    if (!customerId) return this.holdOn('payment', { code: 'no_customer_match' }, p.messageId);
    const posted = this.post({
      customerId,
      currency: p.currency,
      amountMinor: p.creditMinor,
      idempotencyKey: creditKey(s.integrationId, s.txnId),
      reason: 'payment',
      mode: this.modeOf(p),
      integrationId: s.integrationId,
      txnId: s.txnId,
      messageId: p.messageId,
      ...(by ? { operator: by.operator, note: by.reason } : {}),
    });
    if (!posted.ok) return this.ledgerConflict('payment', posted.reason, p.messageId);
    s.customerId = customerId;
    s.creditedMinor = p.creditMinor;
    s.phase = 'credited';
    s.hold = null;
    const approved = by ? ` (approved by ${by.operator})` : '';
    this.note(`credited ${describeMoney(p.creditMinor, p.currency)} to ${customerId}${approved}`, p.messageId);
    this.applyWaiting();
  }

  /** Applies refunds, reversals and cancellations in arrival order once the payment is credited. */
  private applyWaiting(by: OperatorAction | null = null): void {
    const s = this.s;
    while (s.phase === 'credited' && s.hold === null && s.waiting.length > 0) {
      const e = s.waiting[0]!;
      if (this.blockingFlags(e).length > 0 || e.creditMinor === null || e.creditMinor <= 0) {
        return this.holdOn('adjustment', { code: 'adjustment_checks_failed', txnId: e.txnId }, e.messageId);
      }
      if (e.currency !== s.currency)
        return this.holdOn('adjustment', { code: 'adjustment_currency_mismatch', txnId: e.txnId }, e.messageId);
      if (e.sandbox !== s.payment?.sandbox)
        return this.holdOn('adjustment', { code: 'adjustment_mode_mismatch', txnId: e.txnId }, e.messageId);
      let amount = e.creditMinor;
      if (e.kind === 'canceled_reversal') {
        const outstanding = s.reversedMinor;
        if (outstanding <= 0) {
          // Its reversal has not arrived yet (PayPal delivers out of order): it waits behind the
          // others, which must not be blocked by it; the reversal itself may be among them.
          if (s.waiting.every((w) => w.kind === 'canceled_reversal')) return;
          s.waiting.push(s.waiting.shift()!);
          continue;
        }
        amount = Math.min(amount, outstanding);
        const posted = this.postAdjustment(e, amount, by);
        if (!posted.ok) return this.ledgerConflict('adjustment', posted.reason, e.messageId);
        s.reversedMinor -= amount;
        s.debitedMinor -= amount;
      } else {
        const remaining = s.creditedMinor - s.debitedMinor;
        if (amount > remaining) {
          const code = e.kind === 'reversal' ? 'reversal_exceeds_original' : 'refund_exceeds_original';
          if (!s.capApproved) return this.holdOn('adjustment', { code, txnId: e.txnId }, e.messageId);
          amount = remaining;
        }
        if (amount > 0) {
          const posted = this.postAdjustment(e, -amount, by);
          if (!posted.ok) return this.ledgerConflict('adjustment', posted.reason, e.messageId);
        }
        s.capApproved = false;
        s.debitedMinor += amount;
        if (e.kind === 'reversal') s.reversedMinor += amount;
      }
      s.waiting.shift();
      const signed = e.kind === 'canceled_reversal' ? amount : -amount;
      this.note(`${e.kind} ${e.txnId}: ${describeMoney(signed, s.currency!)}`, e.messageId);
      by = null; // the operator decided about the held adjustment, not the ones behind it
    }
    if (s.waiting.length === 0) s.attention = s.attention.filter((a) => a !== ORPHAN_ATTENTION);
  }

  private postAdjustment(e: LifecycleEvent, amountMinor: number, by: OperatorAction | null): PostingOutcome {
    const s = this.s;
    const reason = e.kind === 'canceled_reversal' ? 'canceled_reversal' : e.kind === 'reversal' ? 'reversal' : 'refund';
    return this.post({
      customerId: s.customerId!,
      currency: s.currency!,
      amountMinor,
      idempotencyKey: adjustmentKey(e.kind, s.integrationId, e.txnId, e.paymentStatus),
      reason,
      mode: this.modeOf(e),
      integrationId: s.integrationId,
      txnId: e.txnId,
      parentTxnId: s.txnId,
      messageId: e.messageId,
      ...(by ? { operator: by.operator, note: by.reason } : {}),
    });
  }

  private ledgerConflict(on: 'payment' | 'adjustment', reason: string, messageId: string): void {
    this.note(`the ledger refused the posting: ${reason.slice(0, 300)}`, messageId);
    this.holdOn(on, { code: 'ledger_conflict' }, messageId);
  }

  private holdOn(on: 'payment' | 'adjustment', cause: PaymentHoldReason, messageId: string): void {
    const s = this.s;
    const hold = holdFor(cause, on, messageId, this.ctx.now);
    const reason = hold.reason;
    if (s.hold?.reason === reason) return;
    s.hold = hold;
    if (on === 'payment') s.phase = 'held';
    this.note(`held: ${reason}`, messageId);
    this.alert('payment_held', messageId, `${s.txnId}: ${reason}`);
  }

  // ---- time ----------------------------------------------------------------------------------

  private onTick(): void {
    const deadline = nextDeadline(this.s, this.ctx.orphanGraceSeconds);
    if (deadline === null || Date.parse(this.ctx.now) < deadline) return;
    const txns = this.s.waiting.map((w) => `${w.kind} ${w.txnId}`).join(', ');
    this.attend(ORPHAN_ATTENTION);
    this.note(`${txns} still waiting: the payment was never seen credited; it applies if the payment arrives`);
    this.alert('adjustment_without_payment', this.s.waiting[0]?.messageId ?? null, `${this.s.txnId}: ${txns}`);
  }

  // ---- operators -----------------------------------------------------------------------------

  /** Records and audits a refused decision; true when refused. */
  private refused(input: Extract<PaymentInput, { action: unknown }>, action: string): boolean {
    const namedMatters = this.ctx.namedMatters ?? true;
    const why = refusalOf(this.s, input, { refuseLiveOnSandbox: this.ctx.refuseLiveOnSandbox ?? true, namedMatters });
    if (why === null) return false;
    const a = input.action;
    this.note(`${a.operator} tried to ${input.type}: refused, ${why.detail}`);
    const customerId = input.type === 'assign' ? input.action.customerId : undefined;
    this.audit({
      actor: a.operator,
      action: `${action}_refused`,
      reason: a.reason,
      customerId,
      details: { refused: why.detail, rule: why.rule },
    });
    this.result = { ok: false, ...why };
    return true;
  }

  private onAssign(a: AssignCustomerAction): void {
    const s = this.s;
    if (this.refused({ type: 'assign', action: a }, 'assign_customer')) return;
    const exists = this.need(this.facts.customerExists, { fact: 'customerExists', customerId: a.customerId });
    if (!exists) {
      this.note(`${a.operator} tried to assign unknown customer ${a.customerId}`);
      this.audit({
        actor: a.operator,
        action: 'assign_customer_refused',
        reason: a.reason,
        customerId: a.customerId,
        details: { hold: s.hold?.reason ?? null, refused: 'no such customer', rule: 'unknown_customer' },
      });
      this.result = { ok: false, status: 422, rule: 'unknown_customer', detail: `no customer ${a.customerId}` };
      return;
    }
    this.audit({
      actor: a.operator,
      action: 'assign_customer',
      reason: a.reason,
      customerId: a.customerId,
      details: { hold: s.hold?.reason ?? null },
    });
    s.customerId = a.customerId;
    this.note(`${a.operator} assigned customer ${a.customerId}: ${a.reason}`);
    this.resume(a);
  }

  private onApprove(a: OperatorAction): void {
    const s = this.s;
    if (this.refused({ type: 'approve', action: a }, 'approve')) return;
    const hold = s.hold!;
    this.audit({
      actor: a.operator,
      action: 'approve',
      reason: a.reason,
      customerId: s.customerId ?? undefined,
      details: { hold: hold.reason },
    });
    this.note(`${a.operator} approved ${hold.reason}: ${a.reason}`);
    if (hold.on === 'payment') s.approvedFlags.push(...(s.payment?.flags ?? []));
    else {
      s.approvedFlags.push(...(s.waiting[0]?.flags ?? []));
      // Capping is approved only by approving an over-limit hold, and used up by the adjustment
      // held; approving a flagged one must not silently cap a later refund.
      s.capApproved = capsOnApprove(hold.cause);
    }
    this.resume(a);
  }

  private onReject(a: OperatorAction): void {
    const s = this.s;
    if (this.refused({ type: 'reject', action: a }, 'reject')) return;
    const hold = s.hold!;
    this.audit({
      actor: a.operator,
      action: 'reject',
      reason: a.reason,
      customerId: s.customerId ?? undefined,
      details: { hold: hold.reason },
    });
    this.note(`${a.operator} rejected ${hold.reason}: ${a.reason}`);
    s.hold = null;
    if (hold.on === 'payment') {
      s.phase = 'rejected';
    } else {
      const dropped = s.waiting.shift();
      this.note(`dropped ${dropped?.kind ?? 'adjustment'} ${dropped?.txnId ?? ''}`);
      this.applyWaiting();
    }
  }

  private onAcknowledge(a: AcknowledgeAction): void {
    const s = this.s;
    if (this.refused({ type: 'acknowledge', action: a }, 'acknowledge')) return;
    const named = this.ctx.namedMatters ?? true;
    const { closed, open } = acknowledged(s, a.matter, named);
    this.audit({
      actor: a.operator,
      action: 'acknowledge',
      reason: a.reason,
      customerId: s.customerId ?? undefined,
      details: named ? { closed, open } : { attention: s.attention },
    });
    this.note(`${a.operator} acknowledged ${closed.join(', ')}: ${a.reason}`);
    // Before named matters, an orphaned refund was acknowledged too: it stays waiting (a person knows).
    s.attention = open;
  }

  /** Retries whatever was held, now with the operator's decision in place. */
  private resume(by: OperatorAction): void {
    const s = this.s;
    const hold = s.hold;
    if (!hold) return;
    s.hold = null;
    if (hold.on === 'payment') {
      s.phase = 'pending';
      if (s.payment?.paymentStatus === 'Completed') this.credit(by);
    } else {
      this.applyWaiting(by);
    }
  }

  // ---- bookkeeping ---------------------------------------------------------------------------

  private attend(matter: string): void {
    if (!this.s.attention.includes(matter)) this.s.attention.push(matter);
  }

  private note(what: string, messageId: string | null = null): void {
    pushHistory(this.s, { at: this.ctx.now, messageId, what });
  }

  private alert(kind: string, messageId: string | null, detail: string): void {
    this.effects.push({ type: 'alert', kind, messageId, detail });
  }

  private audit(a: Omit<Extract<PaymentEffect, { type: 'audit' }>, 'type'>): void {
    this.effects.push({ type: 'audit', ...a });
  }
}

function pushHistory(s: PaymentState, entry: PaymentState['history'][number]): void {
  pushBounded(s.history, entry, HISTORY_LIMIT);
}
