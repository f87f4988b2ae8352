import type { AlertEffect, AuditEffect } from '../shared/rules-kit';
import type {
  BatchState,
  CancelUnclaimedAction,
  ClearContradictionAction,
  ItemCounts,
  ItemState,
  PayoutAction,
  PayoutBatchState,
  PayoutContradiction,
  ResolveItemAction,
  SendAction,
  SendChannel,
  SendChunk,
  SubmittedAction,
} from './state';
import type { Refusal } from '../shared/operator-actions';

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

export type BatchEffect = AlertEffect | AuditEffect;

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

export const HISTORY_LIMIT = 100;
export const APPLIED_MESSAGES_LIMIT = 200;
export const CONTRADICTIONS_LIMIT = 200;
export const CLEARED_LIMIT = 200;
/** A search of PayPal's transactions starts this long before the call went unanswered (clocks differ). */
export const RECONCILE_MARGIN_MS = 3600_000;
export const NOT_PROCESSED = 'not_processed_in_time';
export const NOT_COMPLETED = 'not_completed_in_time';
export const FINAL_BATCH_STATES: readonly BatchState[] = ['completed', 'denied', 'cancelled'];
export const SENT_STATES: readonly BatchState[] = ['submitted', 'processed', 'completed'];

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
