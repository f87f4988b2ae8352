import {
  type CapExceeded,
  type PayoutBatchState,
  type PendingRelease,
  RELEASING_STATES,
  type ResolveItemAction,
  type SendChunk,
  type SendState,
} from './state';
import { describeMoney } from '../shared/money';
import { sameOperator } from '../shared/operator-actions';
import { pushBounded } from '../shared/rules-kit';
import { matter, parseMatter } from '../shared/matters';
import type { MoneyMode } from '../shared/ledger';
import {
  type BatchContext,
  type BatchRefusal,
  type BatchRefusalRule,
  type BatchDeadlines,
  type BatchOperatorInput,
  DEFAULT_RELEASE_AFTER_SECONDS,
  FINAL_BATCH_STATES,
  HISTORY_LIMIT,
  NOT_COMPLETED,
  NOT_PROCESSED,
  SENT_STATES,
} from './batch-model';

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
export const sendHalted = (send: SendState) =>
  send.chunks.some((c) => c.state === 'refused' || c.state === 'uncertain' || c.state === 'not_found');
/** PayPal has, or may have, some of the batch's items through our API calls. */
export const sendReachedPayPal = (send: SendState | null) =>
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
export function sentByUs(s: PayoutBatchState): boolean {
  return s.channel === 'api' || s.channel === 'rest';
}

/** An API send PayPal has nothing of (each call refused or reconciled as not found), no IPN: it may be cancelled. */
export function apiSendLeftNothing(s: PayoutBatchState): boolean {
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

/**
 * What a send through PayPal's MassPay API left for a person, per chunk (`<kind>:<chunk>`): cleared
 * together when the batch goes out another way (the upload file) or is cancelled.
 */
export const SEND_MATTER_KINDS = [
  'send_unanswered',
  'send_refused',
  'send_not_possible',
  'duplicate_unique_ids',
  'reconcile_inconclusive',
  'reconcile_partial',
] as const;
export type SendMatterKind = (typeof SEND_MATTER_KINDS)[number];

/** A send matter's name, as listed in `attention` (and typed back by an operator). */
export function sendMatter(kind: SendMatterKind, chunkIndex?: number, detail?: string): string {
  const ref = chunkIndex === undefined ? undefined : detail === undefined ? `${chunkIndex}` : `${chunkIndex}:${detail}`;
  return matter(kind, ref);
}

/** Whether a matter in `attention` is one of a send's, and which. */
export function sendMatterKind(name: string): SendMatterKind | null {
  const { kind } = parseMatter(name);
  return (SEND_MATTER_KINDS as readonly string[]).includes(kind) ? (kind as SendMatterKind) : null;
}

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

export const capsText = (s: PayoutBatchState) =>
  s.capsExceeded
    .map((c) => `its ${c.cap.replace('_', '-')} cap (${describeMoney(c.capMinor, c.currency)})`)
    .join(' and ') || 'a cap';

export const pendingReleaseOf = (s: PayoutBatchState, a: ResolveItemAction): PendingRelease | undefined =>
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
  mode: MoneyMode;
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

export function pushHistory(s: PayoutBatchState, entry: PayoutBatchState['history'][number]): void {
  pushBounded(s.history, entry, HISTORY_LIMIT);
}
