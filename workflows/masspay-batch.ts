import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
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
  batchSettled,
  decideBatch,
  nextBatchDeadline,
  nextSendChunk,
  type BatchDeadlines,
  type BatchEffect,
  type BatchFactNeed,
  type BatchFacts,
  type BatchInput,
  type SendChunkOutcome,
} from '../src/domain/masspay-decide';
import {
  PayoutActionSchema,
  ResolveItemActionSchema,
  SendActionSchema,
  SubmittedActionSchema,
  type PayoutAction,
  type PayoutBatchState,
  type ResolveItemAction,
  type SendAction,
  type SubmittedAction,
} from '../src/domain/masspay';
import { describeMoney } from '../src/domain/money';
import { PayoutStateKey, FlagsKey } from '../src/domain/contracts';
import { validatingHandlers, decideWithFacts } from './decide-with-facts';

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

// A call to PayPal's MassPay API (external I/O, up to 250 items): a regular activity. A retry after
// a lost answer is safe (PayPal refuses unique ids it already has); after the last attempt the chunk
// is uncertain and a person decides (see decideBatch).
const SEND_ATTEMPTS = 4;
const paypal = proxyActivities<Activities>({
  startToCloseTimeout: '90s',
  retry: { initialInterval: '1s', backoffCoefficient: 4, maximumInterval: '1m', maximumAttempts: SEND_ATTEMPTS },
});

export interface MasspayBatchInput {
  batchId: string;
  /** A settled batch's workflow closes after this long idle; a late IPN or action restarts it. */
  idleCloseSeconds: number;
  deadlines: BatchDeadlines;
}

const MasspayIpnSchema = z.object({ messageId: z.string().min(1).max(64) });
export const masspayIpnSignal = defineSignal<[{ messageId: string }]>('masspayIpn');
export const approvePayoutSignal = defineSignal<[PayoutAction]>('approvePayout');
export const submittedPayoutSignal = defineSignal<[SubmittedAction]>('payoutSubmitted');
export const cancelPayoutSignal = defineSignal<[PayoutAction]>('cancelPayout');
export const sendPayoutSignal = defineSignal<[SendAction]>('sendPayout');
export const resolvePayoutItemSignal = defineSignal<[ResolveItemAction]>('resolvePayoutItem');
export const stopWaitingPayoutSignal = defineSignal<[PayoutAction]>('stopWaitingPayout');
export const payoutStateQuery = defineQuery<PayoutBatchState>('state');

/**
 * One Mass Pay batch we send, from creation to PayPal's last word: reservations, approval,
 * submission, every IPN about its items, deadlines and operator decisions, one at a time through
 * `decideBatch`. Items live in MongoDB (`<batchId>:<uniqueId>`); this workflow holds the batch alone.
 */
export async function masspayBatch(input: MasspayBatchInput): Promise<PayoutBatchState> {
  const inbox: BatchInput[] = [];
  const accept = validatingHandlers<BatchInput>(inbox);
  const help = 'Input: {"operator": "...", "note": "..."}';
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
    approvePayoutSignal,
    accept('approvePayout', PayoutActionSchema, (action) => ({ type: 'approve', action })),
    {
      description: `Operator (not the creator): approve the batch for upload to PayPal. ${help}`,
    },
  );
  setHandler(
    submittedPayoutSignal,
    accept('payoutSubmitted', SubmittedActionSchema, (action) => ({ type: 'submitted', action })),
    {
      description: `Operator: the batch was uploaded to PayPal (optional "submittedAt", ISO). ${help}`,
    },
  );
  setHandler(
    sendPayoutSignal,
    accept('sendPayout', SendActionSchema, (action) => ({ type: 'send', action })),
    {
      description:
        "Operator: send an approved batch through PayPal's MassPay API (calls of at most 250 items); " +
        `again after a halted send. ${help.slice(0, -1)}, "emailSubject": "..." (optional)}`,
    },
  );
  setHandler(
    cancelPayoutSignal,
    accept('cancelPayout', PayoutActionSchema, (action) => ({ type: 'cancel', action })),
    {
      description: `Operator: cancel a batch not yet submitted; reservations are released. ${help}`,
    },
  );
  setHandler(
    resolvePayoutItemSignal,
    accept('resolvePayoutItem', ResolveItemActionSchema, (action) => ({ type: 'resolve', action })),
    {
      description:
        'Operator: settle one item as PayPal shows it. Input: {"uniqueId", "state": ' +
        '"Completed|Returned|Failed|Reversed|Blocked", "operator", "note"}',
    },
  );
  setHandler(
    stopWaitingPayoutSignal,
    accept('stopWaitingPayout', PayoutActionSchema, (action) => ({ type: 'stopWaiting', action })),
    {
      description: `Operator: stop waiting for PayPal (deadlines) and close what asks for a person. ${help}`,
    },
  );

  let state = await local.loadBatchState(input.batchId);
  if (!state) {
    // Started by hand (or for a batch that was never stored): nothing to run.
    setCurrentDetails(`**no such batch** ${input.batchId}`);
    await condition(allHandlersFinished);
    throw ApplicationFailure.create({ nonRetryable: true, message: `no stored payout batch ${input.batchId}` });
  }
  setHandler(payoutStateQuery, () => state!);
  publish(state);

  for (;;) {
    if (
      !state.reserved &&
      state.state === 'created' &&
      !state.attention.includes('reservation_failed') &&
      !inbox.some((i) => i.type === 'reserve')
    ) {
      inbox.unshift({ type: 'reserve' });
    }
    if (nextSendChunk(state) && !inbox.some((i) => i.type === 'sendChunk')) inbox.push({ type: 'sendChunk' });
    const deadline = nextBatchDeadline(state, input.deadlines);
    const untilDeadline = deadline === null ? null : Math.max(0, deadline - Date.now());
    const idle = batchSettled(state) ? input.idleCloseSeconds * 1000 : null;
    const wait = untilDeadline === null ? idle : idle === null ? untilDeadline : Math.min(idle, untilDeadline);
    const woken =
      wait === null ? (await condition(() => inbox.length > 0), true) : await condition(() => inbox.length > 0, wait);
    if (!woken) {
      if (deadline !== null && Date.now() >= deadline) inbox.push({ type: 'tick' });
      else break;
    }
    while (inbox.length > 0) {
      state = await decide(state, inbox.shift()!, input);
      publish(state);
      await local.saveBatchState(state);
    }
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof masspayBatch>(input);
    }
  }
  await condition(allHandlersFinished);
  return state;
}

async function decide(state: PayoutBatchState, item: BatchInput, input: MasspayBatchInput): Promise<PayoutBatchState> {
  const undecidable: BatchInput = { type: 'malformed', signal: item.type, issues: 'no decision after 50 facts' };
  const done = await decideWithFacts({
    rules: (facts: BatchFacts, stuck) =>
      decideBatch(state, stuck ? undecidable : item, stuck ? {} : facts, {
        now: new Date().toISOString(),
        deadlines: input.deadlines,
      }),
    fetch: (need, facts) => fetchFact(need, facts, state),
    run: (effect) => runEffect(effect, state),
    facts: {},
    maxRounds: 50,
  });
  return done.state;
}

async function runEffect(effect: BatchEffect, s: PayoutBatchState): Promise<void> {
  if (effect.type === 'alert') await local.raiseAlert(effect);
  else await local.audit({ ...effect, integrationId: s.integrationId, txnId: s.id });
}

async function fetchFact(need: BatchFactNeed, facts: BatchFacts, s: PayoutBatchState): Promise<void> {
  switch (need.fact) {
    case 'reserve':
      facts.reserve = await items.reserveItems(s.id);
      return;
    case 'applyMessage': {
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
    case 'applyOne':
      facts.applyOne = await items.applyOneItem({ batchId: s.id, action: need.action });
      return;
    case 'sendChunk':
      facts.sendChunk = await sendChunk(need, s);
      return;
  }
}

/** A message's slices one after the other; the workflow keeps only their sums (counts, not items). */
async function applyInSlices(message: {
  batchId: string;
  integrationId: string;
  messageId: string;
}): Promise<NonNullable<BatchFacts['applyMessage']>> {
  const total = { moved: 0, ignored: 0, problems: [] as string[] };
  for (let slice = 0; ; slice++) {
    const r = await slices.applyMasspaySlice({ ...message, slice });
    if (!r.ok) return r;
    total.moved += r.moved;
    total.ignored += r.ignored;
    total.problems.push(...r.problems.slice(0, MAX_PROBLEMS - total.problems.length));
    if (r.counts) return { ok: true, paymentStatus: r.paymentStatus, counts: r.counts, ...total };
  }
}

async function sendChunk(
  need: Extract<BatchFactNeed, { fact: 'sendChunk' }>,
  s: PayoutBatchState,
): Promise<SendChunkOutcome> {
  try {
    return await paypal.sendPayoutChunk({
      batchId: s.id,
      integrationId: s.integrationId,
      mode: s.mode,
      currency: s.currency,
      channel: need.channel,
      chunk: need.chunk,
      emailSubject: need.emailSubject,
    });
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    // Every attempt failed without an answer: any of them may have reached PayPal.
    const message = (err.cause?.message ?? err.message).slice(0, 200);
    return { outcome: 'unreachable', message, calls: SEND_ATTEMPTS };
  }
}

function publish(s: PayoutBatchState): void {
  upsertSearchAttributes([
    { key: PayoutStateKey, value: s.state },
    { key: FlagsKey, value: s.attention.length ? ['held', ...s.attention] : [] },
  ]);
  const counts = Object.entries(s.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const attention = s.attention.length
    ? `\n\nNEEDS A PERSON: ${s.attention.join(', ')} (signal \`stopWaitingPayout\` once handled).`
    : '';
  setCurrentDetails(
    `**${s.state}** — ${s.itemCount} item(s), ` +
      `${describeMoney(s.totalMinor, s.currency)}${s.reserved ? ' reserved' : ''}; ${counts}${attention}`,
  );
}
