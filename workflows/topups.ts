import {
  allHandlersFinished,
  CancelledFailure,
  condition,
  continueAsNew,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  TemporalFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { checkoutLocal, quickLocal } from './shared/activity-options';
import { describeIssues } from '../src/shared/operator-actions';
import { describeMoney } from '../src/shared/money';
import { decideTopup, nextWakeMs, type TopupEffect, type TopupInput } from '../src/topups/rules';
import type { TopupState } from '../src/topups/state';
import {
  BuyerStepSchema,
  buyerCancelledUpdate,
  buyerReturnedUpdate,
  PayPalNoticeSchema,
  paypalNoticeSignal,
  topupStateQuery,
  type TopupWorkflowInput,
} from '../src/topups/contract';

// Bookkeeping in the database: local activities, retried until the database answers.
const db = proxyLocalActivities<Activities>(quickLocal);
/** How long a finished top-up stays open for late notices and reloads. */
const LINGER_MS = 60_000;
// PayPal: a few quick tries (a lost capture answer is asked again with the same request id); past
// them the top-up waits for its next poll rather than failing. Local activities too: a return is
// captured and credited in the workflow task that took it, without a server round trip per call.
const paypal = proxyLocalActivities<Activities>(checkoutLocal);

/**
 * One customer top-up through PayPal Checkout: created → approved by the buyer → captured →
 * credited once (or cancelled, expired, failed, held for a person). Handlers only validate and
 * enqueue; one loop runs each input through the pure rules (src/topups/rules.ts) and their effects.
 * The buyer's return and cancel are updates answered once applied, so the return page shows the
 * outcome; PayPal's webhooks and IPNs only make it ask PayPal again.
 */
export async function topup(input: TopupWorkflowInput): Promise<TopupState> {
  const inbox: Array<{ input: TopupInput; ticket?: number }> = [];
  let issued = 0;
  let answered = 0;
  let closing = false;

  let state = await db.loadTopupState(input.topupId);
  setHandler(topupStateQuery, () => state);
  setHandler(
    paypalNoticeSignal,
    (payload: unknown) => {
      const parsed = PayPalNoticeSchema.safeParse(payload);
      inbox.push({
        input: parsed.success
          ? { type: 'notice', source: parsed.data.source }
          : { type: 'malformed', signal: 'paypalNotice', issues: describeIssues(parsed.error) },
      });
    },
    { description: 'PayPal may have changed this top-up (a webhook or an IPN arrived): PayPal is asked.' },
  );
  for (const [update, type] of [
    [buyerReturnedUpdate, 'returned'],
    [buyerCancelledUpdate, 'cancelled'],
  ] as const) {
    setHandler(
      update,
      async () => {
        if (closing) return state;
        const ticket = ++issued;
        inbox.push({ input: { type }, ticket });
        await condition(() => answered >= ticket || closing);
        return state;
      },
      {
        // A payload that is not `{}` is refused before it enters the history.
        validator: (payload: unknown) => void BuyerStepSchema.parse(payload ?? {}),
        description: `The buyer ${type === 'returned' ? 'came back from' : 'cancelled at'} PayPal.`,
      },
    );
  }

  const apply = async (item: TopupInput): Promise<void> => {
    const decision = decideTopup(state, item, new Date().toISOString());
    state = decision.state;
    for (const effect of decision.effects) await run(effect);
  };
  // Saved once an input and everything it led to are applied (before an update is answered), and only
  // when it changed: a late notice about a credited top-up writes nothing. The history is the record;
  // the saved copy is what the pages, the admin API and the webhook door read.
  let saved = JSON.stringify(state);
  const save = async (): Promise<void> => {
    const now = JSON.stringify(state);
    if (now === saved) return;
    show(state);
    await db.saveTopupState(state);
    saved = now;
  };

  const run = async (effect: TopupEffect): Promise<void> => {
    switch (effect.type) {
      case 'alert':
        await db.raiseAlert({ kind: effect.kind, messageId: null, detail: effect.detail });
        return;
      case 'capture':
      case 'read': {
        const view = await paypalAnswer(() =>
          effect.type === 'capture' ? paypal.captureTopup(refOf(state)) : paypal.readTopup(refOf(state)),
        );
        // No answer after the quick tries: the next poll asks again (a capture with the same request id).
        if (view) await apply({ type: 'paypal', via: effect.type, view });
        return;
      }
      case 'credit':
        try {
          const posted = await db.postToLedger(effect.posting);
          await apply({ type: 'posted', entryId: posted.entryId });
        } catch (err) {
          if (!(err instanceof TemporalFailure) || err instanceof CancelledFailure) throw err;
          await apply({ type: 'refused', detail: err.cause?.message ?? err.message });
        }
        return;
    }
  };

  let lingerUntil: number | null = null;
  for (;;) {
    const pollMs = nextWakeMs(state, Date.now(), input.pollSeconds * 1000);
    // Finished: open a while longer for the notices and reloads that follow a capture (answered from
    // the state as it is), so they seldom race the workflow's completion.
    if (pollMs === null) lingerUntil ??= Date.now() + LINGER_MS;
    const waitMs = pollMs ?? Math.max(1, lingerUntil! - Date.now());
    const woken = await condition(() => inbox.length > 0, waitMs);
    if (!woken) {
      if (pollMs === null) break;
      inbox.push({ input: { type: 'tick' } });
    }
    while (inbox.length > 0) {
      const item = inbox.shift()!;
      await apply(item.input);
      await save();
      if (item.ticket !== undefined) answered = Math.max(answered, item.ticket);
    }
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof topup>(input);
    }
  }
  closing = true;
  await condition(allHandlersFinished);
  return state;
}

async function paypalAnswer<T>(call: () => Promise<T>): Promise<T | null> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof TemporalFailure) || err instanceof CancelledFailure) throw err;
    return null;
  }
}

/** What a PayPal call needs of the state: ids and amounts only. */
function refOf(s: TopupState) {
  const { id, integrationId, api, paypalRef, amountMinor, currency } = s;
  return { id, integrationId, api, paypalRef, amountMinor, currency };
}

function show(s: TopupState): void {
  const money = describeMoney(s.amountMinor, s.currency);
  const why = s.reason ? ` (${s.reason})` : '';
  const capture = s.capture ? `, capture ${s.capture.id} ${s.capture.status}` : '';
  setCurrentDetails(`**${s.phase}**${why}: ${money} for ${s.customerId} via ${s.api}${capture}`);
}
