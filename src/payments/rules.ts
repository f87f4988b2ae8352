import { clone, NeedFact } from '../shared/rules-kit';
import type { MessageOutcomeRecord } from '../messages/state';
import {
  ORPHAN_ATTENTION,
  PaymentStep,
  pushHistory,
  type DecideContext,
  type PaymentDecision,
  type PaymentFacts,
  type PaymentInput,
  type PaymentResult,
} from './decide-kit';
import { onIpn } from './ipn-events';
import { paymentMatter } from './matters';
import { onAcknowledge, onApprove, onAssign, onReject } from './operators';
import type { PaymentState } from './state';

/**
 * The rules of one PayPal transaction's life, as a pure function: given the state and one input,
 * what the state becomes and which effects follow. The workflow only gathers the facts this asks
 * for (a customer match, a ledger posting's result, a message's proof) and runs the effects.
 *
 * Facts work by re-running: when `decide` needs one it has not been given, it stops and names it;
 * the caller fetches it and calls again from the same state with that fact added. Ledger postings
 * are facts too — they are idempotent by key, so asking twice never moves money twice — which
 * lets a posting's failure become a hold instead of state that claims money moved.
 *
 * This module is the entry: it sends each input to its part of the rules (see decide-kit.ts).
 */

export {
  LIVE_ON_SANDBOX_RULE,
  ORPHAN_ATTENTION,
  type DecideContext,
  type FactNeed,
  type PaymentDecision,
  type PaymentEffect,
  type PaymentFacts,
  type PaymentInput,
  type PaymentRefusal,
  type PaymentRefusalRule,
  type PaymentResult,
} from './decide-kit';
export { refusalOf } from './operators';

const INTERNAL_ERROR = paymentMatter('internal_error');

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
  const d = new PaymentStep(clone(state), facts, ctx);
  try {
    const outcome = apply(d, input);
    const result = 'action' in input ? (d.result ?? applied(d, input.type)) : null;
    return { kind: 'done', state: d.s, effects: d.effects, outcome, result };
  } catch (err) {
    if (err instanceof NeedFact) return { kind: 'need', need: err.need, effects: d.effects };
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

/** An applied decision's answer: what the payment's history now says of it. */
function applied(d: PaymentStep, type: string): PaymentResult {
  return { ok: true, detail: d.s.history.at(-1)?.what ?? type };
}

function apply(d: PaymentStep, input: PaymentInput): MessageOutcomeRecord | null {
  switch (input.type) {
    case 'ipn':
      return onIpn(d, input.event);
    case 'assign':
      onAssign(d, input.action);
      return null;
    case 'approve':
      onApprove(d, input.action);
      return null;
    case 'reject':
      onReject(d, input.action);
      return null;
    case 'acknowledge':
      onAcknowledge(d, input.action);
      return null;
    case 'malformed':
      d.note(`ignored a malformed ${input.signal} signal: ${input.issues}`);
      d.audit({
        actor: 'unknown',
        action: 'malformed_signal',
        details: { signal: input.signal, issues: input.issues },
      });
      d.alert('malformed_signal', null, `${d.s.txnId}: ${input.signal}: ${input.issues}`);
      return null;
    case 'tick':
      onTick(d);
      return null;
  }
}

function onTick(d: PaymentStep): void {
  const deadline = nextDeadline(d.s, d.ctx.orphanGraceSeconds);
  if (deadline === null || Date.parse(d.ctx.now) < deadline) return;
  const txns = d.s.waiting.map((w) => `${w.kind} ${w.txnId}`).join(', ');
  d.attend(ORPHAN_ATTENTION);
  d.note(`${txns} still waiting: the payment was never seen credited; it applies if the payment arrives`);
  d.alert('adjustment_without_payment', d.s.waiting[0]?.messageId ?? null, `${d.s.txnId}: ${txns}`);
}
