import { describeMoney } from '../shared/money';
import type { MoneyMode } from '../shared/money-mode';
import { clone, pushBounded } from '../shared/rules-kit';
import { FINAL_PHASES, type PayPalView, type TopupReason, type TopupState } from './state';

/**
 * The rules of one top-up, as a pure function: given its state and one input, what the state
 * becomes and what must happen next (effects the workflow runs as activities, whose results come
 * back as inputs). Money moves in one place only: the `credit` effect, a ledger posting keyed by
 * PayPal's capture id — the same key the payment entity uses when the capture's IPN credits it —
 * so whichever path gets there first, the ledger holds one entry.
 */

export type TopupInput =
  /** The buyer came back from PayPal (the return page): approval claimed, not proven. */
  | { type: 'returned' }
  /** The buyer cancelled at PayPal. */
  | { type: 'cancelled' }
  /** Someone says PayPal changed something (a webhook, an IPN): PayPal is asked, the notice proves nothing. */
  | { type: 'notice'; source: 'webhook' | 'ipn' }
  /** PayPal's answer: to the capture, or to a read of the order and its capture. */
  | { type: 'paypal'; via: 'capture' | 'read'; view: PayPalView }
  /** The credit's posting: its ledger entry, or the ledger's refusal. */
  | { type: 'posted'; entryId: string }
  | { type: 'refused'; detail: string }
  /** Time passed: poll PayPal, expire an order never approved. */
  | { type: 'tick' }
  /** A payload that failed its schema: recorded and ignored. */
  | { type: 'malformed'; signal: string; issues: string };

export interface TopupPosting {
  customerId: string;
  currency: string;
  amountMinor: number;
  idempotencyKey: string;
  reason: 'payment';
  mode: MoneyMode;
  integrationId: string;
  txnId: string;
  note: string;
}

export type TopupEffect =
  | { type: 'capture' }
  | { type: 'read' }
  | { type: 'credit'; posting: TopupPosting }
  | { type: 'alert'; kind: string; detail: string };

export interface TopupDecision {
  state: TopupState;
  effects: TopupEffect[];
}

const HISTORY_LIMIT = 50;

/** The ledger key of a PayPal capture's credit: the payment entity's own (src/payments/rules.ts credit). */
export function creditKeyOf(integrationId: string, captureId: string): string {
  return `credit:${integrationId}:${captureId}`;
}

/**
 * Never throws: an unexpected error (a bug, an answer no rule foresaw) leaves the state as it was,
 * records why and raises an alert; a workflow task that threw would retry forever and wedge the top-up.
 */
export function decideTopup(state: TopupState, input: TopupInput, now: string): TopupDecision {
  try {
    return decide(state, input, now);
  } catch (err) {
    const s: TopupState = clone(state);
    const detail = `${input.type}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300);
    pushBounded(s.history, { at: now, what: `could not decide (${detail})` }, HISTORY_LIMIT);
    return { state: s, effects: [{ type: 'alert', kind: 'topup_internal_error', detail: `${s.id}: ${detail}` }] };
  }
}

function decide(state: TopupState, input: TopupInput, now: string): TopupDecision {
  const s: TopupState = clone(state);
  const effects: TopupEffect[] = [];
  const note = (what: string) => pushBounded(s.history, { at: now, what }, HISTORY_LIMIT);
  const end = (phase: TopupState['phase'], reason: TopupReason) => {
    s.phase = phase;
    s.reason = reason;
    note(`${phase}: ${reason}`);
    if (phase === 'held') effects.push({ type: 'alert', kind: 'topup_held', detail: `${s.id}: ${reason}` });
  };
  const final = FINAL_PHASES.includes(s.phase) || s.phase === 'held';

  switch (input.type) {
    case 'returned':
      // A reload, a second tab, a replayed return URL: one capture asked for, at most.
      if (s.phase === 'created') {
        s.phase = 'capturing';
        note('buyer returned: capturing');
        effects.push({ type: 'capture' });
      } else note(`buyer returned again (${s.phase}): nothing to do`);
      break;
    case 'cancelled':
      if (s.phase === 'created') end('cancelled', 'buyer_cancelled');
      else note(`buyer cancel after ${s.phase}: ignored`);
      break;
    case 'notice':
      if (!final || s.phase === 'held') {
        note(`${input.source} notice: reading PayPal`);
        effects.push({ type: 'read' });
      }
      break;
    case 'tick':
      if (s.phase === 'created' || s.phase === 'pending') effects.push({ type: 'read' });
      else if (s.phase === 'capturing') effects.push({ type: 'capture' });
      else if (s.phase === 'completed' && s.capture) effects.push(creditOf(s));
      break;
    case 'paypal':
      applyPayPal(s, input.via, input.view, now, { note, end, effects });
      break;
    case 'posted':
      if (s.phase === 'completed' && s.capture) {
        s.phase = 'credited';
        s.creditEntryId = input.entryId;
        s.creditedMinor = creditMinorOf(s);
        note(`credited ${describeMoney(s.creditedMinor, s.currency)} to ${s.customerId} (entry ${input.entryId})`);
      }
      break;
    case 'refused':
      if (s.phase === 'completed') {
        note(`the ledger refused the credit: ${input.detail.slice(0, 200)}`);
        end('held', 'ledger_refused');
      }
      break;
    case 'malformed':
      note(`ignored a malformed ${input.signal}: ${input.issues.slice(0, 200)}`);
      effects.push({ type: 'alert', kind: 'malformed_signal', detail: `${s.id}: ${input.signal}` });
      break;
  }
  return { state: s, effects };
}

function applyPayPal(
  s: TopupState,
  via: 'capture' | 'read',
  view: PayPalView,
  now: string,
  h: { note: (w: string) => void; end: (p: TopupState['phase'], r: TopupReason) => void; effects: TopupEffect[] },
): void {
  if (s.phase === 'credited' || s.phase === 'held') return;
  const c = view.capture;
  if (!c) {
    if (view.order === 'VOIDED') return h.end('failed', 'order_voided');
    if (view.order === 'APPROVED' && (s.phase === 'created' || s.phase === 'capturing')) {
      // Approved at PayPal, whether or not the buyer came back: captured within the window.
      if (s.phase === 'created') h.note('approved at PayPal without a return: capturing');
      s.phase = 'capturing';
      h.effects.push({ type: 'capture' });
      return;
    }
    if (view.order === 'CREATED' && s.phase === 'capturing' && via === 'capture') {
      // A return PayPal does not back (not approved yet): the buyer may still approve.
      s.phase = 'created';
      h.note('PayPal says the order is not approved: waiting for the buyer');
    }
    if (s.phase === 'created' && Date.parse(now) >= Date.parse(s.expiresAt)) h.end('expired', 'not_approved_in_time');
    return;
  }
  if (FINAL_PHASES.includes(s.phase) && s.phase !== 'expired' && s.phase !== 'cancelled') return;
  s.capture = c;
  switch (c.status) {
    case 'COMPLETED':
    case 'REFUNDED':
    case 'PARTIALLY_REFUNDED': {
      // Refunded later or not: the capture completed once, and that is what is credited (a refund
      // comes by IPN to the payment entity, which debits it).
      if (c.currency !== s.currency || c.grossMinor !== s.amountMinor) return h.end('held', 'amount_mismatch');
      if (!c.payeeOk) return h.end('held', 'payee_mismatch');
      if (s.phase !== 'completed') {
        s.phase = 'completed';
        h.note(`capture ${c.id} completed: crediting`);
      }
      h.effects.push(creditOf(s));
      return;
    }
    case 'PENDING':
      if (s.phase !== 'pending') h.note(`capture ${c.id} pending at PayPal: waiting for COMPLETED`);
      s.phase = 'pending';
      return;
    case 'DECLINED':
    case 'FAILED':
      return h.end('failed', 'capture_declined');
  }
}

function creditMinorOf(s: TopupState): number {
  const c = s.capture!;
  return c.grossMinor - (s.feePolicy === 'net' ? c.feeMinor : 0);
}

function creditOf(s: TopupState): TopupEffect {
  const c = s.capture!;
  return {
    type: 'credit',
    posting: {
      customerId: s.customerId,
      currency: s.currency,
      amountMinor: creditMinorOf(s),
      idempotencyKey: creditKeyOf(s.integrationId, c.id),
      reason: 'payment',
      mode: s.mode,
      integrationId: s.integrationId,
      txnId: c.id,
      note: `top-up ${s.id}`,
    },
  };
}

/** When the workflow should wake by itself (ms from now), or null when nothing more will happen. */
export function nextWakeMs(s: TopupState, nowMs: number, pollMs: number): number | null {
  if (FINAL_PHASES.includes(s.phase) || s.phase === 'held') return null;
  if (s.phase === 'created') return Math.max(1, Math.min(pollMs, Date.parse(s.expiresAt) - nowMs));
  return pollMs;
}
