import { describeMoney } from '../shared/money';
import {
  NVP_DUPLICATE_UNIQUE_ID,
  RELEASING_STATES,
  SEND_CHANNEL_MAX_ITEMS,
  type BatchState,
  type CapExceeded,
  type ClearContradictionAction,
  type ItemCounts,
  type ItemState,
  type MasspayItemReport,
  type PayoutAction,
  type PayoutBatchState,
  type PayoutContradiction,
  type PayoutItem,
  type PendingRelease,
  type ResolveItemAction,
  type CancelUnclaimedAction,
  type SendAction,
  type SendChannel,
  type SendChunk,
  type SendState,
  type SubmittedAction,
} from './state';
import { sameOperator, type Refusal } from '../shared/operator-actions';
import { clone, NeedFact, pushBounded } from '../shared/rules-kit';

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
  /** New blocking problems: PayPal contradicting what the item holds (also recorded on the item). */
  contradictions: PayoutContradiction[];
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

/** Final states in which the money left with PayPal, and those in which it came back to the payee. */
const PAID_OUT: readonly ItemState[] = ['Completed'];
const RELEASED: readonly ItemState[] = ['Returned', 'Failed', 'Blocked', 'Denied', 'Cancelled'];

/**
 * PayPal reports `paypal` for an item we hold final as `ours`, the money the other way: paid out
 * (Completed) where we released it, or sent back (Returned, Failed, Blocked) where we settled it as
 * paid. A late Pending or Unclaimed is only late; Completed before a Reversed is the usual order;
 * two releasing states agree on the money.
 */
export function contradictsFinal(ours: ItemState, paypal: ItemState): boolean {
  if (PAID_OUT.includes(paypal)) return RELEASED.includes(ours);
  if (paypal === 'Returned' || paypal === 'Failed' || paypal === 'Blocked') return PAID_OUT.includes(ours);
  return false;
}

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
  const contradictions: PayoutContradiction[] = [];
  const contradict = (c: PayoutContradiction) => {
    if (item.contradictions.some((x) => x.id === c.id)) return;
    item.contradictions.push(c);
    contradictions.push(c);
  };

  let to: ItemState;
  if (change.source === 'paypal') {
    const r = change.report;
    // Facts PayPal reports are kept even when the status itself is late: the txn id links later messages.
    if (r.masspayTxnId && !item.masspayTxnId) item.masspayTxnId = r.masspayTxnId;
    else if (r.masspayTxnId && r.masspayTxnId !== item.masspayTxnId) {
      // One unique id, two PayPal transactions: the payee may have been paid twice.
      contradict({
        code: 'second_txn_id',
        id: `second_txn_id:${item.uniqueId}:${r.masspayTxnId}`.slice(0, 200),
        messageId,
        at: now,
        uniqueId: item.uniqueId,
        firstTxnId: item.masspayTxnId!,
        txnId: r.masspayTxnId.slice(0, 64),
      });
      note(`PayPal names a second transaction ${r.masspayTxnId.slice(0, 64)} (first ${item.masspayTxnId})`);
    }
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
      return { item, postings: [], moved: false, ignored: 'unknown status', problems, contradictions };
    }
    to = status as ItemState;
  } else {
    to = change.to;
  }

  const refusal = itemRefusal(item.state, to);
  if (refusal) {
    if (change.source === 'paypal' && contradictsFinal(item.state, to)) {
      contradict({
        code: 'state_contradicts_final',
        id: `state_contradicts_final:${item.uniqueId}:${to}`,
        messageId,
        at: now,
        uniqueId: item.uniqueId,
        ours: item.state,
        paypal: to,
      });
      note(`PayPal says ${to} but the item is ${item.state}: a contradiction, held for a person (money not moved)`);
      return { item, postings: [], moved: false, ignored: refusal, problems, contradictions };
    }
    note(`${to}${change.source === 'paypal' ? ' from PayPal' : ''} ignored: ${refusal}`);
    return { item, postings: [], moved: false, ignored: refusal, problems, contradictions };
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
  return { item, postings, moved: true, ignored: null, problems, contradictions };
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
  /** Payouts REST: ask PayPal to cancel an UNCLAIMED item; its money comes back once PayPal agrees. */
  | { type: 'cancelUnclaimed'; action: CancelUnclaimedAction }
  | { type: 'send'; action: SendAction }
  /** Settle the chunks whose call went unanswered: their items' IPNs, else a search of PayPal's transactions. */
  | { type: 'reconcile'; action: PayoutAction }
  | { type: 'clearContradiction'; action: ClearContradictionAction }
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
  | { fact: 'cancelUnclaimed'; uniqueId: string }
  | {
      fact: 'sendChunk';
      channel: SendChannel;
      chunk: Pick<SendChunk, 'index' | 'from' | 'to'>;
      emailSubject: string;
    }
  /**
   * What PayPal shows of these chunks' items: their IPNs (items PayPal reported), and with `search`
   * its transactions to each payee since `since` (TransactionSearch).
   */
  | { fact: 'reconcile'; search: boolean; chunks: ChunkToReconcile[] }
  /**
   * Whether the batch can be sent now through `channel` (its integration's mode and credentials, never
   * the credentials themselves); without a channel, the integration's default (Payouts REST when it
   * names a REST app, else MassPay NVP), which the answer names.
   */
  | { fact: 'sendReady'; channel: SendChannel | null }
  /** An item's stored state (null: no such item in the batch). */
  | { fact: 'itemState'; uniqueId: string };

export interface ChunkToReconcile {
  index: number;
  from: number;
  to: number;
  /** Where a search of PayPal's transactions starts (ISO). */
  since: string;
}

/**
 * One chunk as reconciled: `reported` items PayPal's IPNs named; `search` what a TransactionSearch
 * found (null when not searched): items matched by payee, amount and currency, or why the search
 * cannot tell (no credentials, PayPal truncated the results, PayPal unreachable).
 */
export interface ChunkReconciliation {
  index: number;
  items: number;
  reported: number;
  search: null | { found: number } | { inconclusive: string };
}

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
  /** Absent from results recorded before contradictions existed. */
  contradictions?: PayoutContradiction[];
}

export interface BatchFacts {
  reserve?: ItemsApplied & { failures: string[] };
  /** Not ok when no verified, routed message backs the signal (or it is for another batch). */
  applyMessage?: { ok: false; reason: string } | (ItemsApplied & { ok: true; paymentStatus: string | null });
  applyAll?: ItemsApplied;
  applyOne?: { ok: false; reason: string } | (ItemsApplied & { ok: true });
  cancelUnclaimed?: { ok: false; reason: string } | { ok: true; moved: number; counts: ItemCounts };
  sendChunk?: SendChunkOutcome;
  reconcile?: ChunkReconciliation[];
  sendReady?: { ok: true; channel?: SendChannel } | { ok: false; reason: string };
  itemState?: ItemState | null;
}

export type BatchEffect =
  | { type: 'alert'; kind: string; messageId: string | null; detail: string }
  | { type: 'audit'; actor: string; action: string; reason?: string; details?: Record<string, unknown> };

export type BatchDecision =
  | { kind: 'need'; need: BatchFactNeed; effects: BatchEffect[] }
  /** `result`: what an operator's action came to (null for any other input). */
  | { kind: 'done'; state: PayoutBatchState; effects: BatchEffect[]; result: BatchResult | null };

export interface BatchDeadlines {
  /** Submitted and no Processed within this: a person is asked. */
  processedWithinSeconds: number;
  /** Submitted and no Completed within this (unclaimed items return after 30 days): a person is asked. */
  completedWithinSeconds: number;
  /**
   * An operator may resolve an item to a state that releases its money alone only this long after
   * submission (before: a second operator confirms). Absent from inputs of batches started before it.
   */
  releaseAfterSeconds?: number;
}

/** The waiting period before one operator may release an item PayPal has not settled (7 days). */
export const DEFAULT_RELEASE_AFTER_SECONDS = 7 * 86400;

export interface BatchContext {
  now: string;
  deadlines: BatchDeadlines;
  /**
   * The rules before issue 13, for histories recorded before patched('masspay-guarded-payouts'):
   * names compared as typed, no caps, stopWaiting closing everything, items released at once.
   */
  legacy?: boolean;
  /**
   * A send is refused when it cannot be sent (credentials, the integration's mode), and a resolution
   * when its item cannot move so, before anything changes: what the admin API checked before its
   * operator actions became updates. False for histories recorded before patched('masspay-operator-updates').
   */
  checkBeforeActing?: boolean;
}

const HISTORY_LIMIT = 100;
const APPLIED_MESSAGES_LIMIT = 200;
const CONTRADICTIONS_LIMIT = 200;
const CLEARED_LIMIT = 200;
/** A search of PayPal's transactions starts this long before the call went unanswered (clocks differ). */
const RECONCILE_MARGIN_MS = 3600_000;
export const NOT_PROCESSED = 'not_processed_in_time';
export const NOT_COMPLETED = 'not_completed_in_time';
const FINAL_BATCH_STATES: readonly BatchState[] = ['completed', 'denied', 'cancelled'];
const SENT_STATES: readonly BatchState[] = ['submitted', 'processed', 'completed'];

/** Calls of at most `perCall` items, in the batch's item order. */
export function planChunks(itemCount: number, perCall: number): SendChunk[] {
  const chunks: SendChunk[] = [];
  for (let from = 0, index = 0; from < itemCount; from += perCall, index++) {
    const to = Math.min(from + perCall, itemCount);
    chunks.push({
      index,
      from,
      to,
      state: 'pending',
      calls: 0,
      correlationId: null,
      error: null,
      uncertainSince: null,
      reconciled: null,
    });
  }
  return chunks;
}

/** A chunk stopped the send: refused, unanswered, or found unsent. A person decides what next. */
const sendHalted = (send: SendState) =>
  send.chunks.some((c) => c.state === 'refused' || c.state === 'uncertain' || c.state === 'not_found');
/** PayPal has, or may have, some of the batch's items through our API calls. */
const sendReachedPayPal = (send: SendState | null) =>
  !!send && send.chunks.some((c) => c.state === 'acked' || c.state === 'uncertain');
/** Chunks whose call went unanswered and that nobody reconciled yet. */
export const uncertainChunks = (s: PayoutBatchState): SendChunk[] =>
  s.send?.chunks.filter((c) => c.state === 'uncertain') ?? [];

/**
 * The batch went (or may have gone) through PayPal's API: a call is in flight, accepted or
 * unanswered. Its upload file is then refused: uploading it too could pay every item twice.
 */
export function wentThroughApi(s: PayoutBatchState): boolean {
  const inFlightOrAt = (c: SendChunk) => c.state === 'pending' || c.state === 'acked' || c.state === 'uncertain';
  return sentByUs(s) || (!!s.send && s.send.chunks.some(inFlightOrAt));
}

/** The batch went out through one of our own API channels (MassPay NVP or Payouts REST), not an upload. */
function sentByUs(s: PayoutBatchState): boolean {
  return s.channel === 'api' || s.channel === 'rest';
}

/** An API send PayPal has nothing of (each call refused or reconciled as not found), no IPN: it may be cancelled. */
function apiSendLeftNothing(s: PayoutBatchState): boolean {
  return (
    sentByUs(s) &&
    s.state === 'submitted' &&
    s.appliedMessages.length === 0 &&
    !!s.send &&
    s.send.chunks.every((c) => c.state === 'refused' || c.state === 'not_found')
  );
}

/** The chunk to send next, or null (none left, a chunk halted the send, or the batch ended). */
export function nextSendChunk(s: PayoutBatchState): SendChunk | null {
  if (!s.send || sendHalted(s.send) || s.state === 'cancelled' || s.state === 'denied') return null;
  return s.send.chunks.find((c) => c.state === 'pending') ?? null;
}

const SEND_MATTER = /^(send_|duplicate_unique_ids:|reconcile_)/;

/**
 * The rules an operator's action on a batch can be refused by (the `rule` of a Refusal). Four-eyes
 * rules answer 422 (never for this operator), the others 409 (not now).
 */
export type BatchRefusalRule =
  | 'batch_state'
  | 'not_reserved'
  | 'four_eyes_creator'
  | 'four_eyes_second_approver'
  | 'four_eyes_release'
  | 'open_contradictions'
  | 'unanswered_calls'
  | 'sent_through_api'
  | 'not_sent_through_rest'
  | 'paypal_refused'
  | 'reached_paypal'
  | 'send_not_possible'
  | 'nothing_to_stop'
  | 'nothing_to_reconcile'
  | 'no_such_contradiction'
  | 'no_such_item'
  | 'item_state'
  | 'internal_error';
export type BatchRefusal = Refusal<BatchRefusalRule>;
/** What a batch's operator action came to: a proposed release waits for a second operator (until when). */
export type BatchResult =
  { ok: true; detail: string; needsSecondOperator?: { until: string | null } } | ({ ok: false } & BatchRefusal);

/**
 * Why an operator's action is refused now, or null. The workflow asks it for the update and the
 * signal alike, on the batch as it is when the action's turn comes.
 *
 * Who may do what (four eyes; names compared as identities, see operatorIdentity):
 * - approve: never the creator; over a cap, two approvals by two different operators, neither the creator;
 * - send (through PayPal's API): never the creator (an approver may send: the creator chose payees and
 *   amounts, so the creator alone can never both pick and pay). Marking an upload `submitted` is a record
 *   of what someone did on PayPal's site, which we cannot see: no rule on who;
 * - resolve to a releasing state before the waiting period: a second operator confirms (resolvePlan).
 */
export function batchRefusal(
  s: PayoutBatchState,
  input: BatchOperatorInput,
  opts: { legacy?: boolean } = {},
): BatchRefusal | null {
  const legacy = opts.legacy === true;
  const conflict = (rule: BatchRefusalRule, detail: string): BatchRefusal => ({ status: 409, rule, detail });
  const fourEyes = (rule: BatchRefusalRule, detail: string): BatchRefusal => ({
    status: 422,
    rule,
    detail: `four eyes: ${detail}`,
  });
  const same = (a: string, b: string) => (legacy ? a === b : sameOperator(a, b));
  const operator = input.action.operator;
  const blocked = () =>
    conflict(
      'open_contradictions',
      `${s.id} has open contradiction(s) (${s.contradictions.map((c) => c.id).join(', ')}): ` +
        'each needs its own decision (clear-contradiction) first',
    );
  switch (input.type) {
    case 'approve':
      if (s.state !== 'created')
        return conflict('batch_state', `only a created batch can be approved; ${s.id} is ${s.state}`);
      if (!s.reserved) return conflict('not_reserved', `${s.id}'s reservations are not all posted yet`);
      if (same(operator, s.createdBy))
        return fourEyes('four_eyes_creator', `${s.id} was created by ${s.createdBy}, another operator must approve it`);
      if (!legacy) {
        const earlier = s.approvals.find((a) => same(a.operator, operator));
        if (earlier)
          return fourEyes(
            'four_eyes_second_approver',
            `${s.id} is over ${capsText(s)} and needs a second approver other than ${earlier.operator}`,
          );
      }
      return null;
    case 'submitted':
      if (sendReachedPayPal(s.send))
        return conflict(
          'sent_through_api',
          `${s.id} is being sent through PayPal's API: PayPal has (or may have) some of its items`,
        );
      return s.state === 'approved'
        ? null
        : conflict('batch_state', `only an approved batch can be submitted; ${s.id} is ${s.state}`);
    case 'send': {
      if (!legacy && same(operator, s.createdBy))
        return fourEyes('four_eyes_creator', `${s.id} was created by ${s.createdBy}, another operator must send it`);
      if (!legacy && s.contradictions.length > 0) return blocked();
      const unsure = legacy ? [] : uncertainChunks(s);
      if (unsure.length > 0) {
        return conflict(
          'unanswered_calls',
          `${s.id}: call(s) ${unsure.map((c) => c.index + 1).join(', ')} went unanswered and PayPal may have ` +
            `them: reconcile first (POST /admin/payouts/${s.id}/reconcile); a call is sent again only once ` +
            'reconciliation found none of its items at PayPal',
        );
      }
      if (s.send && !sendHalted(s.send)) {
        return s.send.chunks.every((c) => c.state === 'acked')
          ? conflict('sent_through_api', `${s.id} was sent through PayPal's API already`)
          : conflict('sent_through_api', `${s.id} is being sent through PayPal's API already`);
      }
      // Again after a halt: only chunks PayPal refused or reconciliation found unsent go out again.
      if (s.send && sentByUs(s) && SENT_STATES.includes(s.state)) return null;
      return s.state === 'approved'
        ? null
        : conflict('batch_state', `only an approved batch can be sent; ${s.id} is ${s.state}`);
    }
    case 'cancel':
      if (!legacy && s.contradictions.length > 0) return blocked();
      if (sendReachedPayPal(s.send)) {
        return conflict(
          'reached_paypal',
          legacy
            ? `${s.id}: a call to PayPal went unanswered, PayPal may be paying its items; ` +
                'send again to find out (a repeated call pays nothing twice) or resolve the items'
            : `${s.id}: PayPal has (or may have) some of its items; reconcile unanswered calls or resolve the items`,
        );
      }
      if (s.state === 'created' || s.state === 'approved') return null;
      if (!legacy && apiSendLeftNothing(s)) return null;
      return conflict(
        'batch_state',
        `only a batch not yet submitted to PayPal can be cancelled; ${s.id} is ${s.state}`,
      );
    case 'resolve': {
      if (!SENT_STATES.includes(s.state))
        return conflict('batch_state', `only items of a batch sent to PayPal can be resolved; ${s.id} is ${s.state}`);
      const asked = legacy ? undefined : pendingReleaseOf(s, input.action);
      if (asked && same(asked.operator, operator))
        return fourEyes(
          'four_eyes_release',
          `${asked.operator} asked for this release of ${asked.uniqueId}; another operator must confirm it`,
        );
      return null;
    }
    case 'cancelUnclaimed':
      if (s.channel !== 'rest') {
        const detail = `only items of a batch sent through Payouts REST can be cancelled at PayPal; ${s.id} was not`;
        return conflict('not_sent_through_rest', detail);
      }
      return SENT_STATES.includes(s.state)
        ? null
        : conflict('batch_state', `${s.id} is ${s.state}: nothing to cancel at PayPal`);
    case 'stopWaiting':
      return s.attention.length > 0 || (!s.stoppedWaiting && (s.state === 'submitted' || s.state === 'processed'))
        ? null
        : conflict(
            'nothing_to_stop',
            `${s.id} is not waiting for PayPal and nothing on it needs a person` +
              (s.contradictions.length > 0 ? ' but its contradictions, each cleared by its own decision' : ''),
          );
    case 'reconcile':
      return uncertainChunks(s).length > 0
        ? null
        : conflict('nothing_to_reconcile', `${s.id} has no call to PayPal whose answer was lost: nothing to reconcile`);
    case 'clearContradiction':
      return s.contradictions.some((c) => c.id === input.action.contradictionId)
        ? null
        : conflict(
            'no_such_contradiction',
            `${s.id} has no open contradiction ${input.action.contradictionId}` +
              (s.contradictions.length ? ` (open: ${s.contradictions.map((c) => c.id).join(', ')})` : ''),
          );
  }
}

const capsText = (s: PayoutBatchState) =>
  s.capsExceeded
    .map((c) => `its ${c.cap.replace('_', '-')} cap (${describeMoney(c.capMinor, c.currency)})`)
    .join(' and ') || 'a cap';

const pendingReleaseOf = (s: PayoutBatchState, a: ResolveItemAction): PendingRelease | undefined =>
  s.pendingReleases.find((p) => p.uniqueId === a.uniqueId && p.state === a.state);

/**
 * What an accepted resolution does: `apply` it now (it releases nothing, the waiting period since
 * submission is over, or it confirms another operator's request), or `propose` it for a second
 * operator (money released before the period could be money PayPal is still paying).
 */
export type ResolvePlan =
  { kind: 'apply'; confirms: PendingRelease | null } | { kind: 'propose'; until: string | null };

export function resolvePlan(s: PayoutBatchState, a: ResolveItemAction, ctx: BatchContext): ResolvePlan {
  if (ctx.legacy || !RELEASING_STATES.includes(a.state)) return { kind: 'apply', confirms: null };
  const asked = pendingReleaseOf(s, a);
  if (asked && !sameOperator(asked.operator, a.operator)) return { kind: 'apply', confirms: asked };
  const wait = (ctx.deadlines.releaseAfterSeconds ?? DEFAULT_RELEASE_AFTER_SECONDS) * 1000;
  const since = s.submittedAt ? Date.parse(s.submittedAt) : NaN;
  if (!Number.isFinite(since)) return { kind: 'propose', until: null };
  if (Date.parse(ctx.now) - since >= wait) return { kind: 'apply', confirms: null };
  return { kind: 'propose', until: new Date(since + wait).toISOString() };
}

/**
 * Something about the batch waits on a person: a matter in `attention`, an open contradiction, a
 * release asking for its second operator, or a call whose answer was lost and nobody reconciled.
 */
export function batchNeedsPerson(s: PayoutBatchState): boolean {
  return (
    s.attention.length > 0 ||
    s.contradictions.length > 0 ||
    s.pendingReleases.length > 0 ||
    uncertainChunks(s).length > 0
  );
}

/** The batch has nothing left to wait for: its workflow may close when idle (a later IPN restarts it). */
export function batchSettled(s: PayoutBatchState, opts: { legacy?: boolean } = {}): boolean {
  const open = (s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0);
  const person = opts.legacy ? s.attention.length > 0 : batchNeedsPerson(s);
  return FINAL_BATCH_STATES.includes(s.state) && !person && (open === 0 || s.state !== 'completed');
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
  /** Caps the batch is over: it then needs two approvals. */
  capsExceeded?: CapExceeded[];
}): PayoutBatchState {
  const { capsExceeded = [], ...rest } = b;
  return {
    ...rest,
    state: 'created',
    reserved: false,
    approvedBy: null,
    requiredApprovals: capsExceeded.length > 0 ? 2 : 1,
    capsExceeded,
    approvals: [],
    submittedAt: null,
    processedAt: null,
    completedAt: null,
    channel: null,
    send: null,
    counts: { Pending: b.itemCount },
    attention: [],
    contradictions: [],
    clearedContradictions: [],
    pendingReleases: [],
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
  ctx: BatchContext,
): BatchDecision {
  const d = new BatchDecider(clone(state), facts, ctx);
  try {
    d.apply(input);
    return { kind: 'done', state: d.s, effects: d.effects, result: 'action' in input ? d.result : null };
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
      result: 'action' in input ? { ok: false, status: 409, rule: 'internal_error', detail } : null,
    };
  }
}

class BatchDecider {
  readonly effects: BatchEffect[] = [];
  /** An operator action's outcome; set by refuse() or once the action is applied. */
  result: BatchResult = { ok: false, status: 409, rule: 'internal_error', detail: 'no decision' };

  private readonly legacy: boolean;

  constructor(
    readonly s: PayoutBatchState,
    private readonly facts: BatchFacts,
    private readonly ctx: BatchContext,
  ) {
    this.legacy = ctx.legacy === true;
  }

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
    if (!this.legacy) for (const c of applied.contradictions ?? []) this.contradict(c);
    if (s.state === 'created' && !this.legacy) {
      // PayPal has a batch nobody approved: money may be out on one person's word.
      this.contradict({
        code: 'sent_unapproved',
        id: 'sent_unapproved',
        messageId,
        at: this.ctx.now,
        ours: 'created',
        paypal: status ?? 'none',
      });
      s.submittedAt ??= this.ctx.now;
    } else if (s.state === 'created' || s.state === 'approved') {
      // PayPal has the batch although nobody marked it submitted (or approved): money may be out.
      this.attend(`sent_while_${s.state}`);
      this.alert(
        'payout_sent_unapproved',
        messageId,
        `${s.id}: PayPal reports ${status} while the batch is ${s.state}`,
      );
      s.submittedAt ??= this.ctx.now;
    }
    if (!this.legacy && uncertainChunks(s).length > 0) {
      // PayPal reporting items of an unanswered call proves it has the call: it is never sent again.
      const r = this.need(this.facts.reconcile, {
        fact: 'reconcile',
        search: false,
        chunks: uncertainChunks(s).map((c) => this.toReconcile(c)),
      });
      this.applyReconciliation(r, null);
    }
    switch (status) {
      case 'Processed':
        return this.advance('processed', messageId);
      case 'Completed':
        if (sentByUs(s) && (s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0) > 0) {
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
      this.note(`PayPal says ${to} but the batch is ${s.state}: a person must check the money`, messageId);
      if (!this.legacy) return this.contradictBatch(messageId, to);
      this.attend(`paypal_${to}_after_${s.state}`);
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
      if (!this.legacy) return this.contradictBatch(messageId, 'Denied');
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
    const refusal = batchRefusal(s, input, { legacy: this.legacy }) ?? this.refusalByFacts(input);
    if (refusal) return this.refuse(input, refusal);
    const details: Record<string, unknown> = { batchId: s.id };
    switch (input.type) {
      case 'approve':
        if (this.legacy) {
          s.approvedBy = a.operator;
          s.state = 'approved';
          this.note(`approved by ${a.operator}: ${a.reason}`);
          break;
        }
        s.approvals.push({ operator: a.operator, at: this.ctx.now });
        details.approval = `${s.approvals.length}/${s.requiredApprovals}`;
        if (s.approvals.length < s.requiredApprovals) {
          this.note(
            `first approval, by ${a.operator}: ${s.id} is over ${capsText(s)}, ` +
              `a second operator (not ${s.createdBy}, not ${a.operator}) must approve it too: ${a.reason}`,
          );
          break;
        }
        s.approvedBy = a.operator;
        s.state = 'approved';
        this.note(
          `approved by ${a.operator}` +
            (s.approvals.length > 1 ? ` (second approval, after ${s.approvals[0]!.operator})` : '') +
            `: ${a.reason}`,
        );
        break;
      case 'submitted':
        s.submittedAt = input.action.submittedAt ?? this.ctx.now;
        s.state = 'submitted';
        s.channel = 'upload';
        // An API send that never reached PayPal is abandoned for the upload.
        s.send = null;
        s.attention = s.attention.filter((m) => !SEND_MATTER.test(m));
        this.note(`${a.operator} submitted the batch to PayPal at ${s.submittedAt}: ${a.reason}`);
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
        // Nothing of it is at PayPal (else cancel is refused): what its send left asks nobody now.
        if (!this.legacy) s.attention = s.attention.filter((m) => !SEND_MATTER.test(m));
        this.note(`cancelled by ${a.operator}: ${a.reason}; ${r.moved} reservation(s) released`);
        break;
      }
      case 'resolve':
        if (!this.onResolve(input)) return;
        Object.assign(details, { uniqueId: input.action.uniqueId, to: input.action.state });
        break;
      case 'send':
        this.onSend(input.action);
        break;
      case 'cancelUnclaimed': {
        const r = this.need(this.facts.cancelUnclaimed, { fact: 'cancelUnclaimed', uniqueId: input.action.uniqueId });
        details.uniqueId = input.action.uniqueId;
        if (!r.ok) {
          this.note(`${a.operator} asked PayPal to cancel ${input.action.uniqueId}: refused, ${r.reason}`);
          this.audit({
            actor: a.operator,
            action: 'payout_cancelUnclaimed_refused',
            reason: a.reason,
            details: { ...details, refused: r.reason, rule: 'paypal_refused' },
          });
          this.result = { ok: false, status: 409, rule: 'paypal_refused', detail: r.reason };
          return;
        }
        s.counts = r.counts;
        this.note(
          `${a.operator} cancelled unclaimed ${input.action.uniqueId} at PayPal ` +
            `(${r.moved} item(s) moved): ${a.reason}`,
        );
        break;
      }
      case 'reconcile': {
        if (s.send?.channel === 'rest') {
          // A Payouts call is sent again with the same sender_batch_id: PayPal creates nothing twice
          // (it answers that it has that batch, and the send goes on from PayPal's copy).
          for (const c of uncertainChunks(s)) {
            c.state = 'pending';
            this.unattend(`send_unanswered:${c.index}`);
          }
          this.note(`${a.operator} sends the unanswered Payouts call(s) again under their own ids: ${a.reason}`);
          details.chunks = s.send.chunks.map((c) => c.state);
          break;
        }
        const r = this.need(this.facts.reconcile, {
          fact: 'reconcile',
          search: true,
          chunks: uncertainChunks(s).map((c) => this.toReconcile(c)),
        });
        this.note(`${a.operator} reconciles the unanswered call(s) with PayPal: ${a.reason}`);
        this.applyReconciliation(r, a.operator);
        details.chunks = s.send!.chunks.map((c) => c.state);
        break;
      }
      case 'clearContradiction': {
        const c = s.contradictions.find((x) => x.id === input.action.contradictionId)!;
        s.contradictions = s.contradictions.filter((x) => x.id !== c.id);
        pushBounded(s.clearedContradictions, c.id, CLEARED_LIMIT);
        this.note(`${a.operator} cleared the contradiction ${c.id}: ${a.reason}`);
        details.contradiction = c;
        break;
      }
      case 'stopWaiting': {
        // Contradictions, releases waiting for a second operator and unanswered calls are not
        // waiting for PayPal: each closes only by its own decision (legacy: everything closed here).
        const closed = this.legacy ? s.attention : s.attention.filter((m) => !/^send_unanswered:/.test(m));
        this.note(
          `${a.operator} stopped waiting for ` +
            `PayPal${closed.length ? ` and closed ${closed.join(', ')}` : ''}: ${a.reason}`,
        );
        s.stoppedWaiting = true;
        s.attention = s.attention.filter((m) => !closed.includes(m));
        break;
      }
    }
    details.state = s.state;
    this.audit({ actor: a.operator, action: `payout_${input.type}`, reason: a.reason, details });
    this.result = { ok: true, detail: s.history.at(-1)?.what ?? input.type };
  }

  /**
   * What only I/O can tell refuses an action before anything changes: a send without credentials
   * (or for an integration now in another mode), a resolution of an item that is not there or cannot
   * move so. Asked only where the rules since patched('masspay-operator-updates') apply.
   */
  private refusalByFacts(input: BatchOperatorInput): BatchRefusal | null {
    if (this.legacy || !this.ctx.checkBeforeActing) return null;
    if (input.type === 'send') {
      const channel = this.s.send?.channel ?? input.action.channel ?? null;
      const ready = this.need(this.facts.sendReady, { fact: 'sendReady', channel });
      return ready.ok ? null : { status: 422, rule: 'send_not_possible', detail: ready.reason };
    }
    if (input.type === 'cancelUnclaimed') {
      const { uniqueId } = input.action;
      const current = this.need(this.facts.itemState, { fact: 'itemState', uniqueId });
      if (current === null) return { status: 422, rule: 'no_such_item', detail: `no item ${uniqueId} in ${this.s.id}` };
      return current === 'Unclaimed'
        ? null
        : {
            status: 409,
            rule: 'item_state',
            detail: `${uniqueId} is ${current}: only an Unclaimed item can be cancelled`,
          };
    }
    if (input.type === 'resolve') {
      const { uniqueId, state } = input.action;
      const current = this.need(this.facts.itemState, { fact: 'itemState', uniqueId });
      if (current === null) return { status: 422, rule: 'no_such_item', detail: `no item ${uniqueId} in ${this.s.id}` };
      const why = itemRefusal(current, state);
      return why ? { status: 409, rule: 'item_state', detail: `${uniqueId}: ${why}` } : null;
    }
    return null;
  }

  /** A refused action: noted and audited, nothing else changes. */
  private refuse(input: BatchOperatorInput, refusal: BatchRefusal): void {
    const a = input.action;
    this.note(`${a.operator} tried to ${input.type}: refused, ${refusal.detail}`);
    this.audit({
      actor: a.operator,
      action: `payout_${input.type}_refused`,
      reason: a.reason,
      details: {
        refused: refusal.detail,
        rule: refusal.rule,
        ...(input.type === 'resolve' ? { uniqueId: input.action.uniqueId } : {}),
      },
    });
    this.result = { ok: false, ...refusal };
  }

  /** Applies or proposes a resolution (see resolvePlan); false when refused (audited here). */
  private onResolve(input: Extract<BatchOperatorInput, { type: 'resolve' }>): boolean {
    const s = this.s;
    const action = input.action;
    const plan = resolvePlan(s, action, this.ctx);
    if (plan.kind === 'propose') {
      s.pendingReleases = s.pendingReleases.filter((p) => p.uniqueId !== action.uniqueId);
      s.pendingReleases.push({
        uniqueId: action.uniqueId,
        state: action.state as PendingRelease['state'],
        operator: action.operator,
        note: action.reason,
        at: this.ctx.now,
      });
      this.note(
        `${action.operator} asks to resolve ${action.uniqueId} as ${action.state} (its money comes back) ` +
          `${plan.until ? `before the waiting period ends (${plan.until})` : 'early'}: ` +
          `another operator must confirm it: ${action.reason}`,
      );
      this.audit({
        actor: action.operator,
        action: 'payout_resolve_proposed',
        reason: action.reason,
        details: { batchId: s.id, uniqueId: action.uniqueId, to: action.state, until: plan.until },
      });
      this.result = { ok: true, detail: s.history.at(-1)!.what, needsSecondOperator: { until: plan.until } };
      return false;
    }
    const r = this.need(this.facts.applyOne, { fact: 'applyOne', action });
    s.pendingReleases = s.pendingReleases.filter((p) => p.uniqueId !== action.uniqueId);
    if (!r.ok) {
      this.refuse(input, { status: 409, rule: 'item_state', detail: r.reason });
      return false;
    }
    s.counts = r.counts;
    const confirms = plan.confirms ? ` (confirming ${plan.confirms.operator}'s request)` : '';
    this.note(`${action.operator} resolved ${action.uniqueId} as ${action.state}${confirms}: ${action.reason}`);
    if ((s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0) === 0) this.unattend('items_open_after_completed');
    return true;
  }

  private onSend(action: SendAction): void {
    const s = this.s;
    const previous = s.send;
    // Again after a halt: through the channel of the first send (its calls' ids are that channel's).
    const ready = this.facts.sendReady;
    const channel = previous?.channel ?? action.channel ?? (ready?.ok ? ready.channel : undefined) ?? 'api';
    const chunks = previous
      ? previous.chunks.map((c) => (c.state === 'acked' ? c : { ...c, state: 'pending' as const, error: null }))
      : planChunks(s.itemCount, SEND_CHANNEL_MAX_ITEMS[channel]);
    s.send = {
      channel,
      operator: action.operator,
      startedAt: this.ctx.now,
      emailSubject: action.emailSubject ?? previous?.emailSubject ?? `Payment ${s.id}`,
      chunks,
    };
    s.attention = s.attention.filter((m) => !SEND_MATTER.test(m));
    const left = chunks.filter((c) => c.state === 'pending').length;
    this.note(
      `${action.operator} ${previous ? 'sends again' : 'sends'} the batch through PayPal's ` +
        `${channel === 'rest' ? 'Payouts REST' : 'MassPay'} API ` +
        `(${left} call(s) of at most ${SEND_CHANNEL_MAX_ITEMS[channel]} items): ${action.reason}`,
    );
  }

  /** Where a search for an unanswered chunk's items starts: an hour before its call went unanswered. */
  private toReconcile(c: SendChunk): ChunkToReconcile {
    const since = Date.parse(c.uncertainSince ?? this.s.send?.startedAt ?? this.ctx.now) - RECONCILE_MARGIN_MS;
    return { index: c.index, from: c.from, to: c.to, since: new Date(since).toISOString() };
  }

  /**
   * Settles unanswered chunks from what PayPal shows: items reported by IPN, or found by a search,
   * mean PayPal has the call (it takes a call whole): acked, never sent again. A search that found
   * none of its items lets it go again; one that cannot tell leaves it held.
   */
  private applyReconciliation(results: ChunkReconciliation[], operator: string | null): void {
    const s = this.s;
    for (const r of results) {
      const chunk = s.send?.chunks.find((c) => c.index === r.index && c.state === 'uncertain');
      if (!chunk) continue;
      const label = `call ${chunk.index + 1} (items ${chunk.from + 1}-${chunk.to})`;
      const settle = (state: 'acked' | 'not_found', by: 'ipn' | 'search', found: number) => {
        chunk.state = state;
        chunk.reconciled = { at: this.ctx.now, by, operator, items: r.items, found };
        this.unattend(`send_unanswered:${chunk.index}`);
        this.unattend(`reconcile_inconclusive:${chunk.index}`);
      };
      if (r.reported > 0) {
        settle('acked', 'ipn', r.reported);
        this.note(`PayPal's IPNs report ${r.reported} of the ${r.items} item(s) of ${label}: PayPal has it`);
        continue;
      }
      if (r.search === null) continue;
      if ('inconclusive' in r.search) {
        this.attend(`reconcile_inconclusive:${chunk.index}`);
        this.note(`reconciling ${label} could not tell whether PayPal has it: ${r.search.inconclusive}; still held`);
        this.alert('payout_reconcile_inconclusive', null, `${s.id}: ${label}: ${r.search.inconclusive}`);
        continue;
      }
      const found = r.search.found;
      if (found === 0) {
        settle('not_found', 'search', 0);
        this.note(`PayPal's transactions show none of the ${r.items} item(s) of ${label}: it may be sent again`);
        continue;
      }
      settle('acked', 'search', found);
      this.note(`PayPal's transactions show ${found} of the ${r.items} item(s) of ${label}: PayPal has it`);
      if (found < r.items) {
        // PayPal takes a call whole: some items missing means a person must look at them.
        this.attend(`reconcile_partial:${chunk.index}`);
        this.alert('payout_reconcile_partial', null, `${s.id}: ${label}: ${found} of ${r.items} item(s) found`);
      }
    }
  }

  /** A contradiction raised once (never again once cleared): blocking, alerted and audited. */
  private contradict(c: PayoutContradiction): void {
    const s = this.s;
    if (s.clearedContradictions.includes(c.id) || s.contradictions.some((x) => x.id === c.id)) return;
    if (s.contradictions.length >= CONTRADICTIONS_LIMIT) {
      this.attend('contradictions_overflow');
      return;
    }
    s.contradictions.push(c);
    const about = 'uniqueId' in c ? ` item ${c.uniqueId}` : '';
    this.note(`contradiction ${c.id}${about}: held until a person clears it`, c.messageId);
    this.alert('payout_contradiction', c.messageId, `${s.id}: ${c.id}`);
    this.audit({
      actor: 'paypal',
      action: 'payout_contradiction_raised',
      details: { batchId: s.id, contradiction: c },
    });
  }

  private contradictBatch(messageId: string, paypal: string): void {
    const ours = this.s.state;
    const id = `batch_contradicts_final:${ours}:${paypal}`;
    this.contradict({ code: 'batch_contradicts_final', id, messageId, at: this.ctx.now, ours, paypal });
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
        if (this.legacy) {
          this.note(
            `no answer from PayPal for ${label} (${chunk.error}): PayPal may have it; send again ` +
              '(PayPal refuses unique ids it already has, so nothing is paid twice)',
          );
        } else {
          // PayPal documents no idempotency for MassPay (L_UNIQUEIDn is a tracking field): never
          // sent again on a guess. Its items' IPNs, or a search of PayPal's transactions, decide.
          chunk.uncertainSince = this.ctx.now;
          this.note(
            `no answer from PayPal for ${label} (${chunk.error}): PayPal may have it; held, and never sent ` +
              "again until reconciled (its items' IPNs, or reconcile: a search of PayPal's transactions)",
          );
        }
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
    s.channel = s.send?.channel ?? 'api';
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
