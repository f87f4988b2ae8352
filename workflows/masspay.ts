import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import {
  batchNeedsPerson,
  batchSettled,
  decideBatch,
  nextBatchDeadline,
  nextSendChunk,
  uncertainChunks,
  type BatchEffect,
  type BatchFactNeed,
  type BatchFacts,
  type BatchInput,
  type BatchOperatorInput,
  type BatchResult,
  type ChunkReconciliation,
  type SendChunkOutcome,
} from '../src/masspay/rules';
import { PayoutBatchStateSchema, type PayoutBatchState, type PayoutContradiction } from '../src/masspay/state';
import { describeMoney } from '../src/shared/money';
import { PayoutStateKey, FlagsKey } from '../src/shared/contract';
import { validatingHandlers, decideWithFacts } from './shared/decide-with-facts';
import {
  MASSPAY_OPERATOR_ACTIONS,
  masspayActionUpdate,
  masspayIpnSignal,
  payoutsWebhookSignal,
  payoutStateQuery,
  type MasspayActionPath,
  type MasspayBatchInput,
} from '../src/masspay/contract';
import type { InFlight, OperatorAnswer } from '../src/shared/operator-actions';
import { operatorDoors, parseAction } from './shared/operator-doors';

type MasspayAnswer = OperatorAnswer<PayoutBatchState, BatchResult>;

// Bookkeeping on the batch document: local activities (no server round trip each).
const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '200ms', maximumInterval: '30s' },
});
// Work on every item of a batch (up to 5,000 ledger postings) takes minutes, not milliseconds:
// regular activities, heartbeating per page, retried without limit (a database that is down
// delays a batch, it never fails one).
const items = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
});

// A slice of a Mass Pay message (at most SLICE_ITEMS items, a second or two): its own activity, so
// no single activity nears its timeout however large the message, and a finished slice is never redone.
const slices = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
});
const MAX_PROBLEMS = 50;

/**
 * The rules of issue 13 (names compared as identities, caps, contradictions that only their own
 * decision clears, releases after a waiting period or by two operators, one MassPay attempt and
 * reconciliation). Histories from before replay through the `legacy` branches.
 */
const GUARDED = 'masspay-guarded-payouts';
/**
 * Operator actions answered by an update: a send without credentials and a resolution of an item
 * that cannot move so are refused before anything changes (the admin API checked both before; a Web
 * UI signal then held the send as send_not_possible). Histories from before replay without the checks.
 */
const OPERATOR_UPDATES = 'masspay-operator-updates';

/** Continue-as-new waits for what arrived while the run's handlers finished (see the loop). */
const CONTINUE_KEEPS_INBOX = 'masspay-continue-keeps-inbox';

/** What the Web UI shows of each action's signal. */
const SIGNAL_HELP: Record<MasspayActionPath, string> = {
  approve:
    'approve the batch (not its creator); a batch over a cap needs a second, distinct approver. ' +
    'Input: {"operator": "...", "reason": "..."}',
  submitted:
    'the batch was uploaded to PayPal. Input: {"operator": "...", "reason": "...", "submittedAt": "<ISO, optional>"}',
  send:
    "send an approved batch through PayPal's MassPay API (not its creator; calls of at most 250 items, each " +
    'made once); again after a halted send. Input: {"operator": "...", "reason": "...", "emailSubject": "..."}',
  cancel: 'cancel a batch not yet submitted; reservations are released. Input: {"operator": "...", "reason": "..."}',
  resolve:
    'settle one item as PayPal shows it; a release (Returned, Failed, Reversed, Blocked) within the waiting ' +
    'period after submission is a request another operator confirms the same way. ' +
    'Input: {"uniqueId", "state": "Completed|Returned|Failed|Reversed|Blocked", "operator", "reason"}',
  'stop-waiting':
    'stop waiting for PayPal (deadlines) and close what asks for a person, except contradictions, releases ' +
    'awaiting a second operator and unanswered calls. Input: {"operator": "...", "reason": "..."}',
  reconcile:
    "settle the calls to PayPal whose answer was lost (their items' IPNs, else PayPal's TransactionSearch); " +
    'a call is sent again only if none of its items is found. Input: {"operator": "...", "reason": "..."}',
  'clear-contradiction':
    'close one contradiction once the money is checked. Input: {"contradictionId", "operator", "reason"}',
  'cancel-unclaimed':
    'ask PayPal to cancel one UNCLAIMED item of a batch sent through Payouts REST; its money comes back once ' +
    'PayPal agrees. Input: {"uniqueId", "operator", "reason"}',
};

// Before GUARDED: a call to PayPal's MassPay API retried after a lost answer, its safety resting on
// PayPal refusing unique ids it already has (8331), which PayPal does not document.
const SEND_ATTEMPTS = 4;
const paypalRetried = proxyActivities<Activities>({
  startToCloseTimeout: '90s',
  retry: { initialInterval: '1s', backoffCoefficient: 4, maximumInterval: '1m', maximumAttempts: SEND_ATTEMPTS },
});
// A call to PayPal's MassPay API moves money and PayPal documents no idempotency for it: one
// attempt. A lost answer makes the chunk uncertain; it is reconciled before anything is sent again.
const paypalOnce = proxyActivities<Activities>({
  startToCloseTimeout: '90s',
  retry: { maximumAttempts: 1 },
});
// Reconciliation reads (the batch's items, PayPal's TransactionSearch): safe to retry, a few times;
// after that the chunk stays held and a person asks again.
const RECONCILE_ATTEMPTS = 5;
const reads = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: RECONCILE_ATTEMPTS },
});
const MAX_CONTRADICTIONS = 200;
// A Payouts REST call carries its own idempotency (the sender_batch_id): tried again after a worker
// died mid-call, PayPal answers that it has the batch and nothing is paid twice.
const restSend = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 5 },
});
/** PayPal's word on a Payouts batch is applied under these message ids (webhooks waiting, or a poll). */
const REST_HOOKS = 'rest:hooks:';
const REST_POLL = 'rest:poll:';
const DEFAULT_REST_POLL_SECONDS = 30 * 60;

const MasspayIpnSchema = z.object({ messageId: z.string().min(1).max(64) });

/**
 * One Mass Pay batch we send, from creation to PayPal's last word: reservations, approval,
 * submission, every IPN about its items, deadlines and operator decisions, one at a time through
 * `decideBatch`. Items live in MongoDB (`<batchId>:<uniqueId>`); this workflow holds the batch alone.
 */
export async function masspayBatch(input: MasspayBatchInput): Promise<PayoutBatchState> {
  const inbox: BatchInput[] = [];
  const accept = validatingHandlers<BatchInput>(inbox);
  setHandler(
    masspayIpnSignal,
    accept('masspayIpn', MasspayIpnSchema, (v) => ({ type: 'masspay', messageId: v.messageId })),
    {
      description:
        'A verified Mass Pay IPN reporting items of this batch ' +
        '(sent by processIpn; checked against the stored message).',
    },
  );
  setHandler(
    payoutsWebhookSignal,
    (raw: unknown) => {
      // The payload says nothing we act on (the events are read from the store): any shape is fine.
      void raw;
      if (!inbox.some((i) => i.type === 'masspay' && i.messageId.startsWith(REST_HOOKS))) {
        inbox.push({ type: 'masspay', messageId: `${REST_HOOKS}${new Date().toISOString()}` });
      }
    },
    { description: 'Payouts webhooks for this batch are stored and verified: apply them (sent by the webhook door).' },
  );
  const doors = operatorDoors<BatchInput, MasspayAnswer>({
    inbox,
    parse: (action, body) => {
      const spec = Object.hasOwn(MASSPAY_OPERATOR_ACTIONS, action)
        ? MASSPAY_OPERATOR_ACTIONS[action as MasspayActionPath]
        : undefined;
      if (!spec) return { ok: false, issues: `unknown action ${String(action).slice(0, 40)}` };
      return parseAction(spec.schema as z.ZodType<BatchOperatorInput['action']>, body, (action) => {
        return { type: spec.type, action } as BatchOperatorInput;
      });
    },
    malformed: (signal, issues) => ({ type: 'malformed', signal, issues }),
    // Every batch decision from the Web UI carries a proof, but asking PayPal what it has (reconcile).
    proofNeeded: (action) => (action === 'reconcile' ? null : 'approver'),
  });
  for (const [path, spec] of Object.entries(MASSPAY_OPERATOR_ACTIONS)) {
    setHandler(spec.signal, doors.signal(path, spec.signal.name), {
      description: `Operator: ${SIGNAL_HELP[path as MasspayActionPath]}`,
    });
  }
  setHandler(masspayActionUpdate, doors.update, {
    validator: doors.validator,
    description: 'The admin API: one operator action, answered with the applied state or the refusal.',
  });

  const loaded = await local.loadBatchState(input.batchId);
  // A result recorded before fields were added lacks them: the schema's defaults fill them here too.
  let state = loaded && PayoutBatchStateSchema.parse(loaded);
  if (!state) {
    // Started by hand (or for a batch that was never stored): nothing to run.
    setCurrentDetails(`**no such batch** ${input.batchId}`);
    await condition(allHandlersFinished);
    throw ApplicationFailure.create({ nonRetryable: true, message: `no stored payout batch ${input.batchId}` });
  }
  setHandler(payoutStateQuery, () => state!);
  publish(state);
  // When PayPal was last asked about a Payouts batch (a new run asks after one interval).
  let lastPoll = Date.now();

  for (;;) {
    const legacy = !patched(GUARDED);
    if (
      !state.reserved &&
      state.state === 'created' &&
      !state.attention.includes('reservation_failed') &&
      !inbox.some((i) => i.type === 'reserve')
    ) {
      inbox.unshift({ type: 'reserve' });
    }
    if (nextSendChunk(state) && !inbox.some((i) => i.type === 'sendChunk')) inbox.push({ type: 'sendChunk' });
    const pollAt = restPollDue(state, lastPoll, input);
    const batchDeadline = nextBatchDeadline(state, input.deadlines);
    const deadline =
      pollAt === null ? batchDeadline : batchDeadline === null ? pollAt : Math.min(pollAt, batchDeadline);
    const untilDeadline = deadline === null ? null : Math.max(0, deadline - Date.now());
    const idle = batchSettled(state, { legacy }) ? input.idleCloseSeconds * 1000 : null;
    const wait = untilDeadline === null ? idle : idle === null ? untilDeadline : Math.min(idle, untilDeadline);
    const woken =
      wait === null ? (await condition(() => inbox.length > 0), true) : await condition(() => inbox.length > 0, wait);
    if (!woken) {
      if (pollAt !== null && Date.now() >= pollAt) {
        lastPoll = Date.now();
        inbox.push({ type: 'masspay', messageId: `${REST_POLL}${new Date().toISOString()}` });
      } else if (deadline !== null && Date.now() >= deadline) inbox.push({ type: 'tick' });
      // An action that came in as the idle wait ended is still answered (an update waits for it).
      else if (inbox.length === 0) break;
    }
    while (inbox.length > 0) {
      const item = inbox.shift()!;
      const done = await decide(state, item, input);
      state = done.state;
      publish(state);
      await local.saveBatchState(state);
      const saved = state;
      doors.answer(item, () => ({
        result: done.result ?? { ok: false, status: 409, rule: 'internal_error', detail: 'no result' },
        state: saved,
        inFlight: inFlightOf(saved),
      }));
    }
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      // A signal that came in while the handlers finished (an IPN, webhooks waiting) would end with
      // this run: it is decided first, and the next turn continues as new. Runs from before never
      // had one waiting there, so they replay as they ran.
      if (inbox.length > 0 && patched(CONTINUE_KEEPS_INBOX)) continue;
      await continueAsNew<typeof masspayBatch>(input);
    }
  }
  await condition(allHandlersFinished);
  return state;
}

/** What a decision left running after its answer: a send's calls to PayPal still to make. */
function inFlightOf(s: PayoutBatchState): InFlight[] {
  if (!nextSendChunk(s)) return [];
  const pending = s.send!.chunks.filter((c) => c.state === 'pending').length;
  const detail =
    `${pending} call(s) to PayPal's MassPay API still to make, one after the other: ` +
    'GET the batch for each outcome';
  return [{ kind: 'paypal_calls', pending, detail }];
}

async function decide(state: PayoutBatchState, item: BatchInput, input: MasspayBatchInput) {
  const undecidable: BatchInput = { type: 'malformed', signal: item.type, issues: 'no decision after 50 facts' };
  const legacy = !patched(GUARDED);
  // Asked only where it matters (a send, a resolution), so other histories carry no marker.
  const checkBeforeActing = item.type === 'send' || item.type === 'resolve' ? patched(OPERATOR_UPDATES) : true;
  return decideWithFacts({
    rules: (facts: BatchFacts, stuck) =>
      decideBatch(state, stuck ? undecidable : item, stuck ? {} : facts, {
        now: new Date().toISOString(),
        deadlines: input.deadlines,
        legacy,
        checkBeforeActing,
      }),
    fetch: (need, facts) => fetchFact(need, facts, state, legacy),
    run: (effect) => runEffect(effect, state),
    facts: {},
    maxRounds: 50,
  });
}

async function runEffect(effect: BatchEffect, s: PayoutBatchState): Promise<void> {
  if (effect.type === 'alert') await local.raiseAlert(effect);
  else await local.audit({ ...effect, integrationId: s.integrationId, txnId: s.id });
}

async function fetchFact(need: BatchFactNeed, facts: BatchFacts, s: PayoutBatchState, legacy: boolean): Promise<void> {
  switch (need.fact) {
    case 'reserve':
      facts.reserve = await items.reserveItems(s.id);
      return;
    case 'applyMessage': {
      if (need.messageId.startsWith(REST_HOOKS) || need.messageId.startsWith(REST_POLL)) {
        facts.applyMessage = await items.applyRestUpdates({
          batchId: s.id,
          integrationId: s.integrationId,
          mode: s.mode,
          messageId: need.messageId,
          poll: need.messageId.startsWith(REST_POLL),
        });
        return;
      }
      const message = { batchId: s.id, integrationId: s.integrationId, messageId: need.messageId };
      // Batches that applied a message in one activity before slices replay as they ran.
      facts.applyMessage = patched('masspay-message-slices')
        ? await applyInSlices(message)
        : await items.applyMasspayMessage(message);
      return;
    }
    case 'applyAll':
      facts.applyAll = await items.applyAllItems({
        batchId: s.id,
        to: need.to,
        messageId: need.messageId,
        operator: need.operator,
      });
      return;
    case 'cancelUnclaimed':
      facts.cancelUnclaimed = await items.cancelUnclaimedItem({
        batchId: s.id,
        integrationId: s.integrationId,
        mode: s.mode,
        uniqueId: need.uniqueId,
        messageId: `rest:cancel:${need.uniqueId}:${new Date().toISOString()}`,
      });
      return;
    case 'applyOne':
      facts.applyOne = await items.applyOneItem({ batchId: s.id, action: need.action });
      return;
    case 'sendChunk':
      facts.sendChunk = await sendChunk(need, s, legacy);
      return;
    case 'reconcile':
      facts.reconcile = await reconcile(need, s);
      return;
    case 'sendReady':
      facts.sendReady = await local.payoutSendReadiness({
        batchId: s.id,
        integrationId: s.integrationId,
        mode: s.mode,
        channel: need.channel,
      });
      return;
    case 'itemState':
      facts.itemState = await local.payoutItemState({ batchId: s.id, uniqueId: need.uniqueId });
      return;
  }
}

/** What PayPal shows of unanswered chunks; PayPal or the database out of reach: each chunk inconclusive. */
async function reconcile(
  need: Extract<BatchFactNeed, { fact: 'reconcile' }>,
  s: PayoutBatchState,
): Promise<ChunkReconciliation[]> {
  try {
    return await reads.reconcilePayoutChunks({
      batchId: s.id,
      integrationId: s.integrationId,
      mode: s.mode,
      currency: s.currency,
      search: need.search,
      chunks: need.chunks,
    });
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const message = `reconciliation failed: ${(err.cause?.message ?? err.message).slice(0, 200)}`;
    return need.chunks.map((c) => ({
      index: c.index,
      items: c.to - c.from,
      reported: 0,
      search: need.search ? { inconclusive: message } : null,
    }));
  }
}

/** A message's slices one after the other; the workflow keeps only their sums (counts, not items). */
async function applyInSlices(message: {
  batchId: string;
  integrationId: string;
  messageId: string;
}): Promise<NonNullable<BatchFacts['applyMessage']>> {
  const total = { moved: 0, ignored: 0, problems: [] as string[], contradictions: [] as PayoutContradiction[] };
  for (let slice = 0; ; slice++) {
    const r = await slices.applyMasspaySlice({ ...message, slice });
    if (!r.ok) return r;
    total.moved += r.moved;
    total.ignored += r.ignored;
    total.problems.push(...r.problems.slice(0, MAX_PROBLEMS - total.problems.length));
    // Results recorded before contradictions carry none.
    const found = r.contradictions ?? [];
    total.contradictions.push(...found.slice(0, MAX_CONTRADICTIONS - total.contradictions.length));
    if (r.counts) return { ok: true, paymentStatus: r.paymentStatus, counts: r.counts, ...total };
  }
}

async function sendChunk(
  need: Extract<BatchFactNeed, { fact: 'sendChunk' }>,
  s: PayoutBatchState,
  legacy: boolean,
): Promise<SendChunkOutcome> {
  const call = { batchId: s.id, integrationId: s.integrationId, mode: s.mode, currency: s.currency };
  const { chunk, emailSubject } = need;
  try {
    // Payouts REST retries under its own sender_batch_id; a MassPay call is made once (legacy: retried).
    return need.channel === 'rest'
      ? await restSend.sendRestPayout({ ...call, chunk, emailSubject })
      : await (legacy ? paypalRetried : paypalOnce).sendPayoutChunk({
          ...call,
          channel: need.channel,
          chunk,
          emailSubject,
        });
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    // No answer (the worker died mid-call, a timeout): the attempt may have reached PayPal.
    const message = (err.cause?.message ?? err.message).slice(0, 200);
    return { outcome: 'unreachable', message, calls: need.channel === 'api' && legacy ? SEND_ATTEMPTS : 1 };
  }
}

/**
 * When to ask PayPal about a batch sent through Payouts REST: while its items are not all final, one
 * interval after the last ask. Webhooks usually come first; this is what completes a batch without them.
 */
function restPollDue(s: PayoutBatchState, lastPoll: number, input: MasspayBatchInput): number | null {
  if (s.channel !== 'rest' || !(s.state === 'submitted' || s.state === 'processed')) return null;
  return lastPoll + (input.restPollSeconds ?? DEFAULT_REST_POLL_SECONDS) * 1000;
}

function publish(s: PayoutBatchState): void {
  const matters = [
    ...s.attention,
    ...s.contradictions.map((c) => `contradiction:${c.code}`),
    ...(s.pendingReleases.length ? ['release_awaits_second_operator'] : []),
    ...(uncertainChunks(s).length ? ['call_unanswered'] : []),
  ];
  upsertSearchAttributes([
    { key: PayoutStateKey, value: s.state },
    { key: FlagsKey, value: batchNeedsPerson(s) ? ['held', ...new Set(matters)] : [] },
  ]);
  const counts = Object.entries(s.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const attention = batchNeedsPerson(s)
    ? `\n\nNEEDS A PERSON: ${[...new Set(matters)].join(', ')} (contradictions: \`clearPayoutContradiction\`; ` +
      'unanswered calls: `reconcilePayout`; others: `stopWaitingPayout` once handled).'
    : '';
  setCurrentDetails(
    `**${s.state}** — ${s.itemCount} item(s), ` +
      `${describeMoney(s.totalMinor, s.currency)}${s.reserved ? ' reserved' : ''}; ${counts}${attention}`,
  );
}
