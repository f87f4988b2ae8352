import { describeMoney } from './money';
import {
  NVP_DUPLICATE_UNIQUE_ID,
  RELEASING_STATES,
  SEND_CHANNEL_MAX_ITEMS,
  type BatchState,
  type ItemCounts,
  type ItemState,
  type MasspayItemReport,
  type PayoutAction,
  type PayoutBatchState,
  type PayoutItem,
  type ResolveItemAction,
  type SendAction,
  type SendChannel,
  type SendChunk,
  type SendState,
  type SubmittedAction,
} from './masspay';
import { clone, NeedFact, pushBounded } from './rules-kit';

/**
 * The rules of a Mass Pay batch we send, as pure functions, in two layers:
 * - `decideItem`: one item and one thing said about it (a PayPal status, a batch-wide denial or
 *   cancellation, an operator's resolution) → the item's next state and the ledger postings.
 *   Items only move forward, so duplicates and any delivery order end in the same place.
 * - `decideBatch`: the batch and one input → its next state and effects, asking for facts (the
 *   result of applying a message to the items stored in MongoDB) by re-running, like decidePayment.
 *
 * Money: creating a batch reserves every item's amount (a debit of the payee, `payout_reserve`);
 * Completed settles it (no movement: the reserved money left with PayPal); any status that brings
 * the money back releases it (a credit, `payout_release`) exactly once. Keys are per batch + item.
 */

// ---- items --------------------------------------------------------------------------------------

export interface PayoutPosting {
  customerId: string;
  currency: string;
  mode: 'live' | 'sandbox';
  /** Signed minor units: reservations are debits (negative), releases credits. */
  amountMinor: number;
  idempotencyKey: string;
  reason: 'payout_reserve' | 'payout_release';
  integrationId: string;
  txnId?: string;
  messageId?: string;
  operator?: string;
  note?: string;
  /** Refused unless the balance still covers it afterwards (checked by the ledger, atomically per account). */
  mustStayCovered?: boolean;
}

export type ItemChange =
  | { source: 'paypal'; report: MasspayItemReport; messageId: string }
  | { source: 'batch'; to: 'Denied' | 'Cancelled'; messageId: string | null; operator: string | null }
  | { source: 'operator'; to: ItemState; operator: string; note: string };

export interface ItemDecision {
  item: PayoutItem;
  postings: PayoutPosting[];
  /** The state moved (false for duplicates and statuses that came too late). */
  moved: boolean;
  /** Why the change was not applied, when it was not. */
  ignored: string | null;
  /** New matters for a person this change raised (also recorded on the item). */
  problems: string[];
}

const ITEM_HISTORY_LIMIT = 30;

/** How far along an item is: a change to a lower or equal rank is late or a duplicate. */
const RANK: Record<ItemState, number> = {
  Pending: 1,
  Unclaimed: 1,
  Completed: 2,
  Returned: 2,
  Failed: 2,
  Blocked: 2,
  Denied: 2,
  Cancelled: 2,
  Reversed: 3,
};

/**
 * Why an item cannot move from `from` to `to`, or null when it can. Reversed may follow Completed
 * (the payee's payment was reversed: the money comes back); nothing else follows a final state.
 * Pending and Unclaimed are both "on its way"; Unclaimed → Pending adds nothing.
 */
export function itemRefusal(from: ItemState, to: ItemState): string | null {
  if (from === to) return `already ${from}`;
  if (to === 'Reversed') return ['Pending', 'Unclaimed', 'Completed'].includes(from) ? null : `${from} is final`;
  if (RANK[from] >= 2) return `${from} is final`;
  if (from === 'Pending' && to === 'Unclaimed') return null;
  if (RANK[to] <= RANK[from]) return `${to} after ${from} adds nothing`;
  return null;
}

export function reservationPosting(item: PayoutItem): PayoutPosting {
  return {
    customerId: item.customerId,
    currency: item.currency,
    mode: item.mode,
    amountMinor: -item.amountMinor,
    idempotencyKey: `payout_reserve:${item.batchId}:${item.uniqueId}`,
    reason: 'payout_reserve',
    integrationId: item.integrationId,
    note: `reserved for Mass Pay batch ${item.batchId} item ${item.uniqueId}`,
    // Money we pay out must be there: two batches created at once must not both take the same balance.
    mustStayCovered: true,
  };
}

export function releasePosting(
  item: PayoutItem,
  why: string,
  by: { messageId?: string; operator?: string },
): PayoutPosting {
  return {
    customerId: item.customerId,
    currency: item.currency,
    mode: item.mode,
    amountMinor: item.amountMinor,
    idempotencyKey: `payout_release:${item.batchId}:${item.uniqueId}`,
    reason: 'payout_release',
    integrationId: item.integrationId,
    ...(item.masspayTxnId ? { txnId: item.masspayTxnId } : {}),
    ...(by.messageId ? { messageId: by.messageId } : {}),
    ...(by.operator ? { operator: by.operator } : {}),
    note: `released: ${why} (batch ${item.batchId} item ${item.uniqueId})`,
  };
}

export function decideItem(current: PayoutItem, change: ItemChange, now: string): ItemDecision {
  const item = clone(current);
  const problems: string[] = [];
  const messageId = change.source === 'paypal' ? change.messageId : change.source === 'batch' ? change.messageId : null;
  const operator = change.source === 'operator' ? change.operator : change.source === 'batch' ? change.operator : null;
  const note = (what: string) => {
    item.history.push({ at: now, what, messageId, operator });
    if (item.history.length > ITEM_HISTORY_LIMIT) item.history.splice(0, item.history.length - ITEM_HISTORY_LIMIT);
  };
  const problem = (p: string) => {
    if (item.problems.includes(p)) return;
    item.problems.push(p);
    problems.push(p);
  };

  let to: ItemState;
  if (change.source === 'paypal') {
    const r = change.report;
    // Facts PayPal reports are kept even when the status itself is late: the txn id links later messages.
    if (r.masspayTxnId && !item.masspayTxnId) item.masspayTxnId = r.masspayTxnId;
    if (r.feeMinor !== null) item.feeMinor = r.feeMinor;
    if (r.reasonCode) item.reasonCode = r.reasonCode;
    if (r.currency !== null && r.currency !== item.currency) problem(`currency_differs:${r.currency.slice(0, 8)}`);
    else if (r.grossMinor !== null && r.grossMinor !== item.amountMinor) problem(`amount_differs:${r.grossMinor}`);
    const status = r.status ?? '';
    if (
      !(['Pending', 'Unclaimed', 'Completed', 'Returned', 'Failed', 'Reversed', 'Blocked'] as string[]).includes(status)
    ) {
      problem(`unknown_status:${status.slice(0, 24) || 'none'}`);
      note(`PayPal said ${JSON.stringify(status.slice(0, 24))}: not a Mass Pay item status; state kept`);
      return { item, postings: [], moved: false, ignored: 'unknown status', problems };
    }
    to = status as ItemState;
  } else {
    to = change.to;
  }

  const refusal = itemRefusal(item.state, to);
  if (refusal) {
    note(`${to}${change.source === 'paypal' ? ' from PayPal' : ''} ignored: ${refusal}`);
    return { item, postings: [], moved: false, ignored: refusal, problems };
  }
  const from = item.state;
  item.state = to;
  const postings: PayoutPosting[] = [];
  const reason =
    change.source === 'paypal' && change.report.reasonCode ? ` (reason code ${change.report.reasonCode})` : '';
  const by = change.source === 'operator' ? ` by ${change.operator}: ${change.note}` : '';
  if (RELEASING_STATES.includes(to) && item.reserved && !item.released) {
    postings.push(
      releasePosting(item, `${to}${reason}`, { messageId: messageId ?? undefined, operator: operator ?? undefined }),
    );
    item.released = true;
    note(
      `${from} → ${to}${reason}${by}: released ${describeMoney(item.amountMinor, item.currency)} to ${item.customerId}`,
    );
  } else if (to === 'Completed') {
    note(`${from} → Completed${by}: paid out, reservation settled`);
  } else {
    note(`${from} → ${to}${reason}${by}`);
  }
  return { item, postings, moved: true, ignored: null, problems };
}

/**
 * What a message already did to an item, from the notes decideItem left: null when it never reached
 * it. A slice of a message re-applied after a crash finds its items here and changes nothing (every
 * state change's note reads `<from> → <to>`; a report that changed nothing left none, or an "ignored").
 */
export function appliedBefore(item: PayoutItem, messageId: string): { moved: boolean } | null {
  const notes = item.history.filter((h) => h.messageId === messageId);
  return notes.length === 0 ? null : { moved: notes.some((h) => h.what.includes(' → ')) };
}

export function countItems(items: Iterable<Pick<PayoutItem, 'state'>>): ItemCounts {
  const counts: ItemCounts = {};
  for (const i of items) counts[i.state] = (counts[i.state] ?? 0) + 1;
  return counts;
}

// ---- batches ------------------------------------------------------------------------------------

export type BatchInput =
  | { type: 'reserve' }
  | { type: 'masspay'; messageId: string }
  | { type: 'approve' | 'cancel' | 'stopWaiting'; action: PayoutAction }
  | { type: 'submitted'; action: SubmittedAction }
  | { type: 'resolve'; action: ResolveItemAction }
  | { type: 'send'; action: SendAction }
  /** The next chunk of a send is due (the workflow adds it while one is pending and nothing halted). */
  | { type: 'sendChunk' }
  | { type: 'malformed'; signal: string; issues: string }
  | { type: 'tick' };

export type BatchOperatorInput = Extract<BatchInput, { action: unknown }>;

export type BatchFactNeed =
  | { fact: 'reserve' }
  | { fact: 'applyMessage'; messageId: string }
  | { fact: 'applyAll'; to: 'Denied' | 'Cancelled'; messageId: string | null; operator: string | null }
  | { fact: 'applyOne'; action: ResolveItemAction }
  | {
      fact: 'sendChunk';
      channel: SendChannel;
      chunk: Pick<SendChunk, 'index' | 'from' | 'to'>;
      emailSubject: string;
    };

/**
 * What one call to PayPal for a chunk came to. `calls` is how many requests were made (a request
 * whose answer was lost may still have reached PayPal); `unsendable` never left (no credentials,
 * the integration's mode no longer the batch's, ...).
 */
export type SendChunkOutcome =
  | { outcome: 'acked'; correlationId: string | null; calls: number }
  | { outcome: 'refused'; code: string; message: string; calls: number }
  | { outcome: 'unreachable'; message: string; calls: number }
  | { outcome: 'unsendable'; message: string; calls: number };

/** What applying something to the stored items did; `counts` are the items' states afterwards. */
export interface ItemsApplied {
  counts: ItemCounts;
  moved: number;
  ignored: number;
  problems: string[];
}

export interface BatchFacts {
  reserve?: ItemsApplied & { failures: string[] };
  /** Not ok when no verified, routed message backs the signal (or it is for another batch). */
  applyMessage?: { ok: false; reason: string } | (ItemsApplied & { ok: true; paymentStatus: string | null });
  applyAll?: ItemsApplied;
  applyOne?: { ok: false; reason: string } | (ItemsApplied & { ok: true });
  sendChunk?: SendChunkOutcome;
}

export type BatchEffect =
  | { type: 'alert'; kind: string; messageId: string | null; detail: string }
  | { type: 'audit'; actor: string; action: string; reason?: string; details?: Record<string, unknown> };

export type BatchDecision =
  | { kind: 'need'; need: BatchFactNeed; effects: BatchEffect[] }
  | { kind: 'done'; state: PayoutBatchState; effects: BatchEffect[] };

export interface BatchDeadlines {
  /** Submitted and no Processed within this: a person is asked. */
  processedWithinSeconds: number;
  /** Submitted and no Completed within this (unclaimed items return after 30 days): a person is asked. */
  completedWithinSeconds: number;
}

const HISTORY_LIMIT = 100;
const APPLIED_MESSAGES_LIMIT = 200;
export const NOT_PROCESSED = 'not_processed_in_time';
export const NOT_COMPLETED = 'not_completed_in_time';
const FINAL_BATCH_STATES: readonly BatchState[] = ['completed', 'denied', 'cancelled'];
const SENT_STATES: readonly BatchState[] = ['submitted', 'processed', 'completed'];

/** Calls of at most `perCall` items, in the batch's item order. */
export function planChunks(itemCount: number, perCall: number): SendChunk[] {
  const chunks: SendChunk[] = [];
  for (let from = 0, index = 0; from < itemCount; from += perCall, index++) {
    const to = Math.min(from + perCall, itemCount);
    chunks.push({ index, from, to, state: 'pending', calls: 0, correlationId: null, error: null });
  }
  return chunks;
}

/** A chunk stopped the send: PayPal refused it, or it went unanswered. A person decides what next. */
const sendHalted = (send: SendState) => send.chunks.some((c) => c.state === 'refused' || c.state === 'uncertain');
/** PayPal has, or may have, some of the batch's items through our API calls. */
const sendReachedPayPal = (send: SendState | null) =>
  !!send && send.chunks.some((c) => c.state === 'acked' || c.state === 'uncertain');

/** The chunk to send next, or null (none left, a chunk halted the send, or the batch ended). */
export function nextSendChunk(s: PayoutBatchState): SendChunk | null {
  if (!s.send || sendHalted(s.send) || s.state === 'cancelled' || s.state === 'denied') return null;
  return s.send.chunks.find((c) => c.state === 'pending') ?? null;
}

const SEND_MATTER = /^(send_|duplicate_unique_ids:)/;

export interface Refusal {
  /** 409: not now (the batch's state); 422: never for this operator (a rule about who). */
  status: 409 | 422;
  rule: string;
}

/** Why an operator's action is refused now, or null. The admin API asks the same before signalling. */
export function batchRefusal(s: PayoutBatchState, input: BatchOperatorInput): Refusal | null {
  const conflict = (rule: string): Refusal => ({ status: 409, rule });
  switch (input.type) {
    case 'approve':
      if (s.state !== 'created') return conflict(`only a created batch can be approved; ${s.id} is ${s.state}`);
      if (!s.reserved) return conflict(`${s.id}'s reservations are not all posted yet`);
      if (input.action.operator === s.createdBy) {
        return {
          status: 422,
          rule: `four eyes: ${s.id} was created by ${s.createdBy}, another operator must approve it`,
        };
      }
      return null;
    case 'submitted':
      if (sendReachedPayPal(s.send))
        return conflict(`${s.id} is being sent through PayPal's API: PayPal has (or may have) some of its items`);
      return s.state === 'approved' ? null : conflict(`only an approved batch can be submitted; ${s.id} is ${s.state}`);
    case 'send': {
      if (s.send && !sendHalted(s.send)) {
        return s.send.chunks.every((c) => c.state === 'acked')
          ? conflict(`${s.id} was sent through PayPal's API already`)
          : conflict(`${s.id} is being sent through PayPal's API already`);
      }
      // Again after a halt: calls PayPal has are refused as duplicates, so nothing is paid twice.
      if (s.send && s.channel === 'api' && SENT_STATES.includes(s.state)) return null;
      return s.state === 'approved' ? null : conflict(`only an approved batch can be sent; ${s.id} is ${s.state}`);
    }
    case 'cancel':
      if (sendReachedPayPal(s.send)) {
        return conflict(
          `${s.id}: a call to PayPal went unanswered, PayPal may be paying its items; ` +
            'send again to find out (a repeated call pays nothing twice) or resolve the items',
        );
      }
      return s.state === 'created' || s.state === 'approved'
        ? null
        : conflict(`only a batch not yet submitted to PayPal can be cancelled; ${s.id} is ${s.state}`);
    case 'resolve':
      return SENT_STATES.includes(s.state)
        ? null
        : conflict(`only items of a batch sent to PayPal can be resolved; ${s.id} is ${s.state}`);
    case 'stopWaiting':
      return s.attention.length > 0 || (!s.stoppedWaiting && (s.state === 'submitted' || s.state === 'processed'))
        ? null
        : conflict(`${s.id} is not waiting for PayPal and nothing on it needs a person`);
  }
}

export function batchNeedsPerson(s: PayoutBatchState): boolean {
  return s.attention.length > 0;
}

/** The batch has nothing left to wait for: its workflow may close when idle (a later IPN restarts it). */
export function batchSettled(s: PayoutBatchState): boolean {
  const open = (s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0);
  return FINAL_BATCH_STATES.includes(s.state) && s.attention.length === 0 && (open === 0 || s.state !== 'completed');
}

/** When the workflow should wake up by itself to look at the deadlines (epoch ms), or null. */
export function nextBatchDeadline(s: PayoutBatchState, d: BatchDeadlines): number | null {
  if (s.stoppedWaiting || !s.submittedAt) return null;
  const submitted = Date.parse(s.submittedAt);
  if (!Number.isFinite(submitted)) return null;
  const due: number[] = [];
  if (s.state === 'submitted' && !s.attention.includes(NOT_PROCESSED))
    due.push(submitted + d.processedWithinSeconds * 1000);
  if ((s.state === 'submitted' || s.state === 'processed') && !s.attention.includes(NOT_COMPLETED)) {
    due.push(submitted + d.completedWithinSeconds * 1000);
  }
  return due.length ? Math.min(...due) : null;
}

export function initialBatchState(b: {
  id: string;
  integrationId: string;
  currency: string;
  mode: 'live' | 'sandbox';
  createdBy: string;
  createdAt: string;
  note: string | null;
  itemCount: number;
  totalMinor: number;
}): PayoutBatchState {
  return {
    ...b,
    state: 'created',
    reserved: false,
    approvedBy: null,
    submittedAt: null,
    processedAt: null,
    completedAt: null,
    channel: null,
    send: null,
    counts: { Pending: b.itemCount },
    attention: [],
    stoppedWaiting: false,
    appliedMessages: [],
    history: [],
  };
}

/** Never throws: an unexpected error leaves the batch as it was and asks a person. */
export function decideBatch(
  state: PayoutBatchState,
  input: BatchInput,
  facts: BatchFacts,
  ctx: { now: string; deadlines: BatchDeadlines },
): BatchDecision {
  const d = new BatchDecider(clone(state), facts, ctx);
  try {
    d.apply(input);
    return { kind: 'done', state: d.s, effects: d.effects };
  } catch (err) {
    if (err instanceof NeedFact) return { kind: 'need', need: err.need, effects: d.effects };
    const s = clone(state);
    const detail = `${input.type}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300);
    if (!s.attention.includes('internal_error')) s.attention.push('internal_error');
    pushHistory(s, { at: ctx.now, what: `could not decide (${detail}); waiting for a person`, messageId: null });
    return {
      kind: 'done',
      state: s,
      effects: [{ type: 'alert', kind: 'payout_internal_error', messageId: null, detail: `${s.id}: ${detail}` }],
    };
  }
}

class BatchDecider {
  readonly effects: BatchEffect[] = [];

  constructor(
    readonly s: PayoutBatchState,
    private readonly facts: BatchFacts,
    private readonly ctx: { now: string; deadlines: BatchDeadlines },
  ) {}

  apply(input: BatchInput): void {
    switch (input.type) {
      case 'reserve':
        return this.onReserve();
      case 'masspay':
        return this.onMasspay(input.messageId);
      case 'malformed':
        this.note(`ignored a malformed ${input.signal} signal: ${input.issues}`);
        this.audit({
          actor: 'unknown',
          action: 'malformed_signal',
          details: { signal: input.signal, issues: input.issues },
        });
        this.alert('malformed_signal', null, `${this.s.id}: ${input.signal}: ${input.issues}`);
        return;
      case 'tick':
        return this.onTick();
      case 'sendChunk':
        return this.onSendChunk();
      default:
        return this.onOperator(input);
    }
  }

  private need<T>(have: T | undefined, need: BatchFactNeed): T {
    if (have === undefined) throw new NeedFact<BatchFactNeed>(need);
    return have;
  }

  private onReserve(): void {
    if (this.s.reserved) return;
    const r = this.need(this.facts.reserve, { fact: 'reserve' });
    this.s.counts = r.counts;
    if (r.failures.length > 0) {
      this.attend('reservation_failed');
      this.note(`${r.failures.length} reservation(s) failed: ${r.failures.slice(0, 3).join('; ')}`);
      this.alert('payout_reservation_failed', null, `${this.s.id}: ${r.failures.slice(0, 3).join('; ')}`);
      return;
    }
    this.s.reserved = true;
    this.note(`reserved ${describeMoney(this.s.totalMinor, this.s.currency)} over ${this.s.itemCount} item(s)`);
  }

  private onMasspay(messageId: string): void {
    const s = this.s;
    if (s.appliedMessages.includes(messageId)) {
      this.note('message already applied: ignored', messageId);
      return;
    }
    const applied = this.need(this.facts.applyMessage, { fact: 'applyMessage', messageId });
    if (!applied.ok) {
      this.attend(`unproven_message:${messageId.slice(0, 40)}`);
      this.note(`ignored a Mass Pay signal no verified message backs: ${applied.reason}`, messageId);
      this.alert('payout_unproven_message', messageId, `${s.id}: ${applied.reason}`);
      return;
    }
    s.appliedMessages.push(messageId);
    if (s.appliedMessages.length > APPLIED_MESSAGES_LIMIT)
      s.appliedMessages.splice(0, s.appliedMessages.length - APPLIED_MESSAGES_LIMIT);
    s.counts = applied.counts;
    const status = applied.paymentStatus;
    this.note(
      `PayPal: batch ${status ?? '(no status)'}; ${applied.moved} item(s) moved, ${applied.ignored} unchanged`,
      messageId,
    );
    if (applied.problems.length > 0) {
      this.attend(`item_problems:${messageId.slice(0, 40)}`);
      this.alert('payout_item_problems', messageId, `${s.id}: ${applied.problems.slice(0, 5).join(', ')}`);
    }
    if (s.state === 'created' || s.state === 'approved') {
      // PayPal has the batch although nobody marked it submitted (or approved): money may be out.
      this.attend(`sent_while_${s.state}`);
      this.alert(
        'payout_sent_unapproved',
        messageId,
        `${s.id}: PayPal reports ${status} while the batch is ${s.state}`,
      );
      s.submittedAt ??= this.ctx.now;
    }
    switch (status) {
      case 'Processed':
        return this.advance('processed', messageId);
      case 'Completed':
        if (s.channel === 'api' && (s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0) > 0) {
          // Each API call is its own payment at PayPal, completed on its own: the batch is complete
          // once every call's items are (a batch PayPal never finishes meets the Completed deadline).
          this.note('PayPal completed part of the batch (one API call); waiting for the rest', messageId);
          return this.advance('processed', messageId);
        }
        this.advance('completed', messageId);
        if ((s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0) > 0 && s.state === 'completed') {
          this.attend('items_open_after_completed');
          this.note('PayPal completed the batch but some items are still open: resolve them', messageId);
        }
        return;
      case 'Denied':
        return this.onDenied(messageId);
      default:
        this.attend(`unknown_batch_status:${(status ?? 'none').slice(0, 24)}`);
        this.alert('payout_unknown_status', messageId, `${s.id}: payment_status ${status}`);
    }
  }

  /** Processed then Completed, or Completed first: the batch never moves back. */
  private advance(to: 'processed' | 'completed', messageId: string): void {
    const s = this.s;
    if (s.state === 'denied' || s.state === 'cancelled') {
      this.attend(`paypal_${to}_after_${s.state}`);
      this.note(`PayPal says ${to} but the batch is ${s.state}: a person must check the money`, messageId);
      this.alert('payout_contradiction', messageId, `${s.id}: ${to} after ${s.state}`);
      return;
    }
    if (to === 'processed') {
      s.processedAt ??= this.ctx.now;
      if (s.state !== 'completed') s.state = 'processed';
    } else {
      s.completedAt ??= this.ctx.now;
      s.state = 'completed';
    }
    // PayPal answered: the deadline that asked a person about it is moot.
    this.unattend(NOT_PROCESSED);
    if (to === 'completed') this.unattend(NOT_COMPLETED);
  }

  private onDenied(messageId: string): void {
    const s = this.s;
    if (s.state === 'denied' || s.state === 'cancelled') return;
    if (s.send && s.send.chunks.length > 1) {
      // One API call was denied, not necessarily the others: which items come back is for a person.
      this.attend(`denied_partial:${messageId.slice(0, 40)}`);
      this.alert('payout_contradiction', messageId, `${s.id}: PayPal denied one of ${s.send.chunks.length} API calls`);
      this.note('PayPal denied one API call of the batch: resolve its items as Failed once checked', messageId);
      return;
    }
    if (s.state === 'processed' || s.state === 'completed') {
      // Money may already be with the payees: releasing it now could pay twice.
      this.attend(`denied_after_${s.state}`);
      this.alert('payout_contradiction', messageId, `${s.id}: Denied after ${s.state}`);
      return;
    }
    const r = this.need(this.facts.applyAll, { fact: 'applyAll', to: 'Denied', messageId, operator: null });
    s.counts = r.counts;
    s.state = 'denied';
    this.unattend(NOT_PROCESSED);
    this.unattend(NOT_COMPLETED);
    this.note(`PayPal denied the batch: ${r.moved} reservation(s) released`, messageId);
    this.alert('payout_denied', messageId, `${s.id}: denied by PayPal`);
  }

  private onTick(): void {
    const s = this.s;
    if (s.stoppedWaiting || !s.submittedAt) return;
    const since = Date.parse(this.ctx.now) - Date.parse(s.submittedAt);
    const d = this.ctx.deadlines;
    if (s.state === 'submitted' && since >= d.processedWithinSeconds * 1000 && !s.attention.includes(NOT_PROCESSED)) {
      this.attend(NOT_PROCESSED);
      this.note(`no Processed from PayPal ${Math.round(since / 3600_000)} h after submission`);
      this.alert('payout_not_processed', null, s.id);
    }
    if (
      (s.state === 'submitted' || s.state === 'processed') &&
      since >= d.completedWithinSeconds * 1000 &&
      !s.attention.includes(NOT_COMPLETED)
    ) {
      this.attend(NOT_COMPLETED);
      this.note(`no Completed from PayPal ${Math.round(since / 86400_000)} days after submission`);
      this.alert('payout_not_completed', null, s.id);
    }
  }

  private onOperator(input: BatchOperatorInput): void {
    const s = this.s;
    const a = input.action;
    const refusal = batchRefusal(s, input);
    if (refusal) {
      this.note(`${a.operator} tried to ${input.type}: refused, ${refusal.rule}`);
      this.audit({
        actor: a.operator,
        action: `payout_${input.type}_refused`,
        reason: a.note,
        details: { refused: refusal.rule },
      });
      return;
    }
    switch (input.type) {
      case 'approve':
        s.approvedBy = a.operator;
        s.state = 'approved';
        this.note(`approved by ${a.operator}: ${a.note}`);
        break;
      case 'submitted':
        s.submittedAt = input.action.submittedAt ?? this.ctx.now;
        s.state = 'submitted';
        s.channel = 'upload';
        // An API send that never reached PayPal is abandoned for the upload.
        s.send = null;
        s.attention = s.attention.filter((m) => !SEND_MATTER.test(m));
        this.note(`${a.operator} submitted the batch to PayPal at ${s.submittedAt}: ${a.note}`);
        break;
      case 'cancel': {
        const r = this.need(this.facts.applyAll, {
          fact: 'applyAll',
          to: 'Cancelled',
          messageId: null,
          operator: a.operator,
        });
        s.counts = r.counts;
        s.state = 'cancelled';
        this.note(`cancelled by ${a.operator}: ${a.note}; ${r.moved} reservation(s) released`);
        break;
      }
      case 'resolve': {
        const r = this.need(this.facts.applyOne, { fact: 'applyOne', action: input.action });
        if (!r.ok) {
          this.note(`${a.operator} tried to resolve ${input.action.uniqueId}: refused, ${r.reason}`);
          this.audit({
            actor: a.operator,
            action: 'payout_resolve_refused',
            reason: a.note,
            details: { uniqueId: input.action.uniqueId, refused: r.reason },
          });
          return;
        }
        s.counts = r.counts;
        this.note(`${a.operator} resolved ${input.action.uniqueId} as ${input.action.state}: ${a.note}`);
        if ((s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0) === 0)
          this.unattend('items_open_after_completed');
        break;
      }
      case 'send': {
        const previous = s.send;
        const chunks = previous
          ? previous.chunks.map((c) => (c.state === 'acked' ? c : { ...c, state: 'pending' as const, error: null }))
          : planChunks(s.itemCount, SEND_CHANNEL_MAX_ITEMS.api);
        s.send = {
          channel: 'api',
          operator: a.operator,
          startedAt: this.ctx.now,
          emailSubject: input.action.emailSubject ?? previous?.emailSubject ?? `Payment ${s.id}`,
          chunks,
        };
        s.attention = s.attention.filter((m) => !SEND_MATTER.test(m));
        const left = chunks.filter((c) => c.state === 'pending').length;
        this.note(
          `${a.operator} ${previous ? 'sends again' : 'sends'} the batch through PayPal's MassPay API ` +
            `(${left} call(s) of at most ${SEND_CHANNEL_MAX_ITEMS.api} items): ${a.note}`,
        );
        break;
      }
      case 'stopWaiting':
        this.note(
          `${a.operator} stopped waiting for ` +
            `PayPal${s.attention.length ? ` and closed ${s.attention.join(', ')}` : ''}: ${a.note}`,
        );
        s.stoppedWaiting = true;
        s.attention = [];
        break;
    }
    const details: Record<string, unknown> = { batchId: s.id, state: s.state };
    if (input.type === 'resolve') Object.assign(details, { uniqueId: input.action.uniqueId, to: input.action.state });
    this.audit({ actor: a.operator, action: `payout_${input.type}`, reason: a.note, details });
  }

  private onSendChunk(): void {
    const s = this.s;
    const chunk = nextSendChunk(s);
    if (!chunk || !s.send) return;
    const r = this.need(this.facts.sendChunk, {
      fact: 'sendChunk',
      channel: s.send.channel,
      chunk: { index: chunk.index, from: chunk.from, to: chunk.to },
      emailSubject: s.send.emailSubject,
    });
    const label = `call ${chunk.index + 1}/${s.send.chunks.length} (items ${chunk.from + 1}-${chunk.to})`;
    const callsBefore = chunk.calls;
    chunk.calls += r.calls;
    switch (r.outcome) {
      case 'acked':
        chunk.state = 'acked';
        chunk.correlationId = r.correlationId;
        this.note(`PayPal accepted ${label}, CORRELATIONID ${r.correlationId ?? '(none)'}`);
        return this.sentThroughApi();
      case 'refused':
        if (r.code === NVP_DUPLICATE_UNIQUE_ID)
          return this.onDuplicate(chunk, label, callsBefore === 0 && r.calls <= 1);
        chunk.state = 'refused';
        chunk.error = `${r.code}: ${r.message}`.slice(0, 300);
        this.attend(`send_refused:${chunk.index}:${r.code.slice(0, 12)}`);
        this.note(`PayPal refused ${label}: ${chunk.error}; nothing of it was paid`);
        this.alert('payout_send_refused', null, `${s.id}: ${label}: ${chunk.error}`);
        return;
      case 'unreachable':
        chunk.state = 'uncertain';
        chunk.error = r.message.slice(0, 300);
        this.attend(`send_unanswered:${chunk.index}`);
        this.note(
          `no answer from PayPal for ${label} (${chunk.error}): PayPal may have it; send again ` +
            '(PayPal refuses unique ids it already has, so nothing is paid twice)',
        );
        this.alert('payout_send_unanswered', null, `${s.id}: ${label}: ${chunk.error}`);
        if (chunk.calls > 0) this.sentThroughApi();
        return;
      case 'unsendable':
        // A request that failed before may have reached PayPal: such a chunk is uncertain, not refused.
        chunk.state = chunk.calls > 0 ? 'uncertain' : 'refused';
        chunk.error = `not sent: ${r.message}`.slice(0, 300);
        this.attend('send_not_possible');
        this.note(`${label} ${chunk.error}`);
        this.alert('payout_send_not_possible', null, `${s.id}: ${r.message}`.slice(0, 300));
        if (chunk.state === 'uncertain') this.sentThroughApi();
        return;
    }
  }

  /** PayPal already holds every unique id of the call: nothing was paid now, nothing is paid twice. */
  private onDuplicate(chunk: SendChunk, label: string, firstCall: boolean): void {
    chunk.state = 'acked';
    chunk.error = `PayPal already had its unique ids (${NVP_DUPLICATE_UNIQUE_ID})`;
    if (firstCall) {
      // Not our lost answer: someone sent these items already (the upload file?). Money is out once.
      this.attend(`duplicate_unique_ids:${chunk.index}`);
      this.alert('payout_sent_elsewhere', null, `${this.s.id}: ${label}: PayPal already had its unique ids`);
      this.note(`PayPal already had the unique ids of ${label} though we never sent it: check how they got there`);
    } else {
      this.note(`PayPal already had ${label} (an earlier request whose answer was lost): not paid twice`);
    }
    this.sentThroughApi();
  }

  /** PayPal has (or may have) items of the batch: it is submitted, and the Processed deadline runs. */
  private sentThroughApi(): void {
    const s = this.s;
    if (s.state !== 'approved') return;
    s.state = 'submitted';
    s.channel = 'api';
    s.submittedAt = this.ctx.now;
    this.note(`submitted to PayPal through the API at ${s.submittedAt}`);
  }

  private attend(matter: string): void {
    if (!this.s.attention.includes(matter)) this.s.attention.push(matter);
  }

  private unattend(matter: string): void {
    this.s.attention = this.s.attention.filter((m) => m !== matter);
  }

  private note(what: string, messageId: string | null = null): void {
    pushHistory(this.s, { at: this.ctx.now, what, messageId });
  }

  private alert(kind: string, messageId: string | null, detail: string): void {
    this.effects.push({ type: 'alert', kind, messageId, detail });
  }

  private audit(a: Omit<Extract<BatchEffect, { type: 'audit' }>, 'type'>): void {
    this.effects.push({ type: 'audit', ...a });
  }
}

function pushHistory(s: PayoutBatchState, entry: PayoutBatchState['history'][number]): void {
  pushBounded(s.history, entry, HISTORY_LIMIT);
}
