import {
  type ItemCounts,
  type ItemState,
  type MasspayItemReport,
  type PayoutContradiction,
  type PayoutItem,
  RELEASING_STATES,
} from './state';
import { describeMoney } from '../shared/money';
import { clone } from '../shared/rules-kit';
import type { PostingRequest } from '../shared/ledger';
import { releasePosting } from './postings';

// ---- items --------------------------------------------------------------------------------------

export type ItemChange =
  | { source: 'paypal'; report: MasspayItemReport; messageId: string }
  | { source: 'batch'; to: 'Denied' | 'Cancelled'; messageId: string | null; operator: string | null }
  | { source: 'operator'; to: ItemState; operator: string; note: string };

export interface ItemDecision {
  item: PayoutItem;
  postings: PostingRequest[];
  /** The state moved (false for duplicates and statuses that came too late). */
  moved: boolean;
  /** Why the change was not applied, when it was not. */
  ignored: string | null;
  /** New matters for a person this change raised (also recorded on the item). */
  problems: string[];
  /** New blocking problems: PayPal contradicting what the item holds (also recorded on the item). */
  contradictions: PayoutContradiction[];
}

export const ITEM_HISTORY_LIMIT = 30;

/** How far along an item is: a change to a lower or equal rank is late or a duplicate. */
export const RANK: Record<ItemState, number> = {
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
export const PAID_OUT: readonly ItemState[] = ['Completed'];
export const RELEASED: readonly ItemState[] = ['Returned', 'Failed', 'Blocked', 'Denied', 'Cancelled'];

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
  const postings: PostingRequest[] = [];
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
