import {
  allHandlersFinished,
  CancelledFailure,
  condition,
  continueAsNew,
  patched,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  TemporalFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { Activities } from '../activities';
import type { LoadedMessage } from '../activities/messages';
import { describeMoney } from '../src/shared/money';
import type { z } from 'zod';
import {
  describeIssues,
  PAYMENT_OPERATOR_ACTIONS,
  type OperatorAnswer,
  type PaymentOperatorActionName,
} from '../src/shared/operator-actions';
import {
  decidePayment,
  LIVE_ON_SANDBOX_RULE,
  nextWake,
  type FactNeed,
  type PaymentEffect,
  type PaymentDecision,
  type PaymentFacts,
  type PaymentInput,
  type PaymentResult,
} from '../src/payments/rules';
import {
  initialPaymentState,
  LifecycleEventSchema,
  upgradePaymentState,
  type PaymentState,
} from '../src/payments/state';
import { validatingHandlers, decideWithFacts, postingFact } from './shared/decide-with-facts';
import { oneAtATime, underLock } from './shared/one-at-a-time';
import { quickLocal } from './shared/activity-options';
import { alarm } from './shared/alarm';
import { FEWER_STEPS } from './shared/patches';
import { operatorDoors, parseAction } from './shared/operator-doors';
import { CustomerIdKey, FlagsKey, MessageRefSchema, PaymentStatusKey } from '../src/shared/contract';
import type { PaymentRoute } from '../src/messages/classify';
import type { MatchBy } from '../src/integrations/schema';
import type { OutcomeWrite } from '../src/messages/outcomes';
import { examineMessage, type Examination, type ParkingDecision } from './shared/examine-message';
import { paymentEventOf, paymentOutcomeOf, routeOf, type VerifiedMessage } from '../src/payments/message-event';
import { planFirstTake, type FirstTake } from '../src/payments/first-take';
import {
  acknowledgeSignal,
  approveSignal,
  assignCustomerSignal,
  ipnEventSignal,
  ipnMessageSignal,
  paymentActionUpdate,
  paymentStateQuery,
  rejectSignal,
  type PaymentLifecycleInput,
} from '../src/payments/contract';
import { ParkingActionSchema, rejectMessageSignal, retryVerificationSignal } from '../src/messages/contract';

// Every step here is short database bookkeeping: local activities run inside the workflow task,
// without a server round trip each (measured: see docs/performance.md). Retries are unbounded:
// a database that is down delays a payment, it never fails one.
// One at a time (see one-at-a-time.ts): messages are verified beside the queue. Per execution: the
// SDK evaluates this module for each workflow execution.
const localActivityLock = oneAtATime();
const act = underLock(proxyLocalActivities<Activities>(quickLocal), localActivityLock);

/** For workflows started before the settings were passed in (their input lacks them). */
const DEFAULT_ORPHAN_GRACE_SECONDS = 3 * 24 * 3600;
const DEFAULT_VERIFY_GIVE_UP_SECONDS = 24 * 3600;

/**
 * Messages are verified beside the queue, several at once, and only a verified one enters it: a
 * forged message naming this payment (INVALID, or a postback PayPal leaves unanswered for up to a
 * day) never holds up its genuine messages or an operator's decision. Before this patch the loop
 * verified each message in turn (histories from then replay so).
 */
const VERIFY_BESIDE_QUEUE = 'verify-messages-beside-the-queue';
/** Messages verified at once; more wait for a free place (they hold up other verifications only). */
const MAX_EXAMINING = 50;
/** An acknowledge closes one named matter, or the notices; before it, everything at once. */
const NAMED_MATTERS_PATCH = 'payment-named-matters';
/**
 * One door per payment: refunds, reversals, canceled reversals and disputes come as stored messages
 * (`ipnMessage`) too, verified here like the payment's own. Before this patch they came as events
 * processIpn had verified (`ipnEvent`, still taken), and an adjustment message here was misrouted.
 */
const ONE_DOOR_PATCH = 'adjustments-through-the-payment-door';

type PaymentAnswer = OperatorAnswer<PaymentState, PaymentResult>;
type Decided = Extract<PaymentDecision, { kind: 'done' }>;
type PaymentDecisionInput = Extract<PaymentInput, { action: unknown }>;

/**
 * What reaches the loop: the rules' inputs, stored messages this workflow verifies itself, the
 * outcome of a verification run beside the queue, and a failure of one (rethrown by the loop).
 */
type EntityInput =
  | PaymentInput
  | { type: 'message'; messageId: string }
  | { type: 'examined'; messageId: string; examined: Examination; flags: string[] }
  | { type: 'failed'; error: unknown };

/**
 * The life of one PayPal transaction: every IPN about it and every operator decision, one at a
 * time, through the rules in `decidePayment`. This loop only validates what arrives, gathers the
 * facts the rules ask for, saves the state and runs the effects. Money moves only through
 * idempotent ledger postings keyed by PayPal transaction, so replays, retries and resends never
 * move it twice.
 */
export async function paymentLifecycle(input: PaymentLifecycleInput): Promise<PaymentState> {
  const inbox: EntityInput[] = [];
  // Handlers only validate and enqueue: whatever a person types into the Web UI is input, and a
  // payload that fails its schema is recorded and ignored, never allowed to fail a workflow task.
  const accept = validatingHandlers<EntityInput>(inbox);
  const operatorFields = '"operator": "...", "reason": "..."}';
  const operatorHelp = `Input: {${operatorFields}`;
  setHandler(
    ipnMessageSignal,
    accept('ipnMessage', MessageRefSchema, ({ messageId }) => ({ type: 'message', messageId })),
    {
      description:
        'A stored IPN about this transaction, its own or one adjusting it (refund, reversal, dispute), ' +
        'sent by the dispatcher: verified with PayPal here.',
    },
  );
  // A message whose postback PayPal never answered waits here for a person; decisions arriving
  // when none waits are recorded and ignored like any malformed input.
  let parked = false;
  // Beside the queue several may be parked at once: a decision naming one goes to it.
  const parkedBeside = new Set<string>();
  const desk: ParkingDecision[] = [];
  // Messages being verified beside the queue (until their outcome is applied), and those waiting for a place.
  const examining = new Set<string>();
  // Those of them whose postback went to its durable retries.
  const slow = new Set<string>();
  const waiting: string[] = [];
  for (const [signal, kind] of [
    [retryVerificationSignal, 'retry'],
    [rejectMessageSignal, 'reject'],
  ] as const) {
    setHandler(
      signal,
      (payload: unknown) => {
        const parsed = ParkingActionSchema.safeParse(payload);
        const named = parsed.success ? parsed.data.messageId : undefined;
        const waits = parked || (named === undefined ? parkedBeside.size > 0 : parkedBeside.has(named));
        if (parsed.success && waits) {
          const { operator, reason } = parsed.data;
          desk.push({ kind, action: { operator, reason }, ...(named === undefined ? {} : { messageId: named }) });
        } else
          inbox.push({
            type: 'malformed',
            signal: signal.name,
            issues: !parsed.success
              ? describeIssues(parsed.error)
              : named === undefined
                ? 'no message of this payment is parked'
                : `message ${named} of this payment is not parked`,
          });
      },
      { description: `Operator: ${kind} the verification of a parked message. ${operatorHelp}` },
    );
  }
  setHandler(
    ipnEventSignal,
    accept('ipnEvent', LifecycleEventSchema, (event) => ({ type: 'ipn', event })),
    {
      description:
        'A verified event for this transaction: a Mass Pay item paid to us (checked against its stored message).',
    },
  );
  // Operator decisions: an update from the admin API, a signal from the Web UI; one parse, one queue.
  const doors = operatorDoors<EntityInput, PaymentAnswer>({
    inbox,
    parse: (action, body) => {
      const schema = Object.hasOwn(PAYMENT_OPERATOR_ACTIONS, action)
        ? PAYMENT_OPERATOR_ACTIONS[action as PaymentOperatorActionName]
        : undefined;
      if (!schema) return { ok: false, issues: `unknown action ${String(action).slice(0, 40)}` };
      return parseAction(schema as z.ZodType<PaymentDecisionInput['action']>, body, (decided) => {
        return { type: action, action: decided } as PaymentDecisionInput;
      });
    },
    malformed: (signal, issues) => ({ type: 'malformed', signal, issues }),
    // Money decisions from the Web UI carry a proof (acknowledging a matter moves no money).
    proofNeeded: (action) => (action === 'assign' ? 'operator' : action === 'acknowledge' ? null : 'approver'),
  });
  for (const [action, signal, help] of [
    [
      'assign',
      assignCustomerSignal,
      'credit this payment to a customer. Input: {"customerId": "...", ' + operatorFields,
    ],
    [
      'approve',
      approveSignal,
      `approve what is held (failed checks, an over-limit refund) so money moves. ${operatorHelp}`,
    ],
    ['reject', rejectSignal, `reject what is held; no money moves. ${operatorHelp}`],
    [
      'acknowledge',
      acknowledgeSignal,
      'acknowledge one matter of `attention` by name (moves no money). Input: {"matter": "<exact entry>", ' +
        operatorFields,
    ],
  ] as const) {
    setHandler(signal, doors.signal(action, signal.name), { description: `Operator: ${help}` });
  }
  setHandler(paymentActionUpdate, doors.update, {
    validator: doors.validator,
    description: 'The admin API: one operator decision, answered with the applied state or the refusal.',
  });

  /** Started with it (every new execution), or else running code that has it (see FEWER_STEPS). */
  const fewerSteps = () => input.fewerSteps === true || patched(FEWER_STEPS);
  stepsOfThisExecution = fewerSteps;
  const ids = { integrationId: input.integrationId, txnId: input.paymentTxnId };
  // Started by its first message (signalWithStart: its signal is in the inbox by now), a payment
  // loads its state and that message in one step (see PaymentLifecycleInput.fewerActivations).
  const first = input.fewerActivations === true && inbox[0]?.type === 'message' ? inbox[0] : undefined;
  if (first) inbox.shift();
  const orphanGraceSeconds = input.orphanGraceSeconds ?? DEFAULT_ORPHAN_GRACE_SECONDS;
  const loadFirst = { ...ids, messageId: first?.messageId ?? '', forWorkflow: workflowInfo().workflowId };
  const both: { state: PaymentState | null; message: LoadedMessage | null; taken?: FirstTake } | undefined = !first
    ? undefined
    : input.takesFirstMessage === true
      ? await act.takeFirstMessage({ ...loadFirst, orphanGraceSeconds })
      : await act.loadPaymentWithMessage(loadFirst);
  const loaded = both ? both.state : await act.loadPaymentState(ids);
  let state = loaded ? upgradePaymentState(loaded) : initialPaymentState(input.integrationId, input.paymentTxnId);
  setHandler(paymentStateQuery, () => state);
  // Verifications the previous run had not finished (see continueAsNew below) start again.
  for (const messageId of input.examiningMessageIds ?? []) inbox.push({ type: 'message', messageId });
  /** `processing` while a message is verified or applied (the backlog metric), `parked` while one waits. */
  const busy = () => {
    // With fewer steps, only a verification that outlasts its first try shows: a quick one never
    // outlives the workflow task whose commands would show it.
    const processing = fewerSteps() ? slow.size > 0 : examining.size > 0;
    return [...(processing ? ['processing'] : []), ...(parkedBeside.size > 0 ? ['parked'] : [])];
  };

  /**
   * One input through the rules; the state is shown and saved before any outcome is recorded:
   * `outcomeOf` names the message outcome the decision leads to, written right after the state;
   * `saved` runs once the state is saved (before the outcome's own step in histories from before).
   */
  const apply = async (
    item: PaymentInput,
    opts: {
      known?: PaymentFacts;
      hints?: MatchHints;
      outcomeOf?: (d: Decided) => OutcomeWrite | undefined;
      saved?: (d: Decided) => void;
    } = {},
  ) => {
    // With fewer activations, a posting saves the state and outcome the rules decide once it is made.
    const withPosting: SaveWithPosting | undefined =
      input.fewerActivations === true && opts.outcomeOf ? { outcomeOf: opts.outcomeOf } : undefined;
    const decision = await decide(state, item, orphanGraceSeconds, opts.known, opts.hints, withPosting);
    state = decision.state;
    publish(state, busy());
    const outcome = opts.outcomeOf?.(decision);
    if (outcome && fewerSteps()) {
      // Saved already unless the decision differs from what the posting saved (it never should: pure rules).
      const saved = withPosting?.saved;
      if (saved?.state !== JSON.stringify(state) || saved.outcome !== JSON.stringify(outcome))
        await act.savePaymentState(state, outcome);
      opts.saved?.(decision);
    } else {
      await act.savePaymentState(state);
      opts.saved?.(decision);
      if (outcome) await act.recordMessageOutcome(outcome);
    }
    return decision;
  };

  /**
   * A stored message, proven and checked here (examineMessage), then through the rules as a
   * verified event. Its outcome and the event are recorded on the message in one write.
   */
  const takeMessage = async (messageId: string): Promise<void> => {
    if (state.history.some((h) => h.messageId === messageId)) return; // dispatched twice (the relay)
    // Counted as in-flight backlog on /metrics until its outcome is recorded (see ipn/backlog.ts).
    showFlags(state, ['processing']);
    try {
      await examineAndApply(messageId);
    } finally {
      publish(state);
    }
  };

  const examineAndApply = async (messageId: string): Promise<void> => {
    const flags: string[] = [];
    const examined = await examineMessage(messageId, {
      fewerSteps,
      forWorkflow: workflowInfo().workflowId,
      verifyGiveUpSeconds: input.verifyGiveUpSeconds ?? DEFAULT_VERIFY_GIVE_UP_SECONDS,
      flags,
      localActivityLock,
      onParked: () => {
        parked = true;
        showFlags(state, ['processing', 'parked']);
        showNow();
      },
      awaitOperator: async () => {
        await condition(() => desk.length > 0);
        parked = false;
        return desk.shift()!;
      },
    });
    await applyExamined(messageId, examined, flags);
  };

  /**
   * Verification beside the queue: runs on its own (the loop goes on with other inputs) and hands
   * its outcome to the loop, which applies outcomes one at a time, in the order they arrive.
   */
  const startExamining = (messageId: string, preloaded?: LoadedMessage | null): void => {
    if (examining.has(messageId) || waiting.includes(messageId)) return; // dispatched twice (the relay)
    if (state.history.some((h) => h.messageId === messageId)) return;
    if (examining.size >= MAX_EXAMINING) {
      waiting.push(messageId);
      return;
    }
    examining.add(messageId);
    showFlags(state, busy());
    const flags: string[] = [];
    examineMessage(messageId, {
      fewerSteps,
      forWorkflow: workflowInfo().workflowId,
      verifyGiveUpSeconds: input.verifyGiveUpSeconds ?? DEFAULT_VERIFY_GIVE_UP_SECONDS,
      flags,
      localActivityLock,
      ...(preloaded === undefined ? {} : { preloaded }),
      onParked: () => {
        parkedBeside.add(messageId);
        showFlags(state, busy());
        showNow();
      },
      onSlow: () => {
        slow.add(messageId);
        showFlags(state, busy());
        showNow();
      },
      awaitOperator: async () => {
        // The oldest decision naming this message, or naming none.
        const mine = () => desk.findIndex((d) => d.messageId === undefined || d.messageId === messageId);
        await condition(() => mine() !== -1);
        parkedBeside.delete(messageId);
        return desk.splice(mine(), 1)[0]!;
      },
    }).then(
      (examined) => inbox.push({ type: 'examined', messageId, examined, flags }),
      (error: unknown) => {
        // An activity refused for good (a message id that names nothing): recorded and ignored like
        // any malformed signal. Anything else is the loop's to throw, as when it verified in turn.
        if (error instanceof TemporalFailure && !(error instanceof CancelledFailure)) {
          const detail = `message ${messageId}: ${error.message}`.slice(0, 300);
          inbox.push({ type: 'examined', messageId, examined: { kind: 'refused', detail }, flags });
        } else inbox.push({ type: 'failed', error });
      },
    );
  };

  /** An examined message: recorded when it was refused or finished, else applied as a verified event. */
  const applyExamined = async (messageId: string, examined: Examination, flags: string[]): Promise<void> => {
    if (examined.kind === 'refused') {
      // Not ours to take (an id typed into the Web UI): recorded and ignored like any malformed signal.
      await apply({ type: 'malformed', signal: 'ipnMessage', issues: examined.detail });
      return;
    }
    if (examined.kind === 'finished') {
      await act.recordMessageOutcome({ messageId, outcome: examined.outcome, detail: examined.detail, flags });
      return;
    }
    const route = routeOf(examined.msg);
    const ours =
      'paymentTxnId' in route &&
      route.paymentTxnId === input.paymentTxnId &&
      examined.msg.integration.id === input.integrationId;
    if (!ours || (route.kind !== 'payment' && !patched(ONE_DOOR_PATCH))) {
      // Intake named this workflow from the same route: reaching here is a bug, shown to a person.
      const detail = `dispatched to ${input.paymentTxnId} but routes as ${route.kind}`;
      await act.raiseAlert({ kind: 'ipn_misrouted', messageId, detail });
      await act.recordMessageOutcome({ messageId, outcome: 'unknown_alerted', detail, flags: [...flags, 'alert'] });
      return;
    }
    if (route.kind !== 'payment' && (await forwardedToProfile(messageId, examined.msg, route, flags))) return;
    const event = paymentEventOf(messageId, examined.msg, route);
    await apply(
      { type: 'ipn', event },
      {
        // Proven here: this workflow loaded and verified the message the event comes from.
        known: { proof: { ok: true } },
        // The integration as loaded with the message, and the payer matched then: not read again.
        hints: { matchBy: examined.msg.integration.matchBy, payerMatch: examined.msg.payerMatch },
        outcomeOf: (decision) => paymentOutcomeOf(messageId, decision, flags, event),
      },
    );
  };

  /**
   * An adjustment of a recurring profile's cycle payment belongs to the profile that credited it (as
   * when processIpn routed it): recorded on the message as the profile's to apply (the profile proves
   * the event against it, proveProfileEvent) and sent there. This payment's state stays untouched.
   */
  const forwardedToProfile = async (
    messageId: string,
    msg: VerifiedMessage,
    route: PaymentRoute,
    flags: string[],
  ): Promise<boolean> => {
    const owner = await act.profileOwningTxn({ integrationId: input.integrationId, txnId: input.paymentTxnId });
    if (!owner) return false;
    const event = paymentEventOf(messageId, msg, route);
    await act.recordMessageOutcome({
      messageId,
      outcome: 'routed',
      detail: `${route.kind} of ${route.paymentTxnId}: recurring profile ${owner}`,
      flags: [...new Set([...flags, ...event.flags])],
      routedEvent: event,
    });
    await act.routeAdjustmentToProfile({ event, profileId: owner });
    return true;
  };

  /**
   * The first message as its first step took it, when the same pure plan made here, from what that step
   * loaded and at its clock, is exactly what it posted and saved: applied at once, before any other input
   * that came with it (an operator's decision), nothing left to do. Otherwise the message takes this
   * workflow's own steps (its posting is idempotent) and a person is told: pure rules decide alike
   * wherever they run, so a difference is a bug. (planFirstTake is workflow code as much as the rules:
   * a change to it goes behind patched().)
   */
  const adoptedFirstTake = (messageId: string, taken: FirstTake, loadedMessage: LoadedMessage): boolean => {
    const plan = planFirstTake({
      messageId,
      msg: loadedMessage,
      saved: loaded,
      integrationId: input.integrationId,
      paymentTxnId: input.paymentTxnId,
      orphanGraceSeconds,
      decidedAt: taken.decidedAt,
    });
    const same =
      plan?.posting.idempotencyKey === taken.idempotencyKey &&
      JSON.stringify(plan.state) === JSON.stringify(taken.state) &&
      JSON.stringify(plan.outcome) === JSON.stringify(taken.outcome);
    if (!same) return false;
    state = plan.state;
    publish(state, busy());
    return true;
  };

  if (first && both) {
    const { taken, message } = both;
    if (!taken || !message || !adoptedFirstTake(first.messageId, taken, message)) {
      if (taken)
        await act.raiseAlert({
          kind: 'payment_first_take_differs',
          messageId: first.messageId,
          detail: `${input.paymentTxnId}: the first step posted ${taken.idempotencyKey}; this payment plans otherwise`,
        });
      startExamining(first.messageId, message);
    }
  }
  const waitForInput = alarm();
  for (;;) {
    const wake = nextWake(state, Date.now(), input.idleCloseSeconds * 1000, orphanGraceSeconds);
    const hasInput = () => inbox.length > 0;
    showNow();
    // A message being examined keeps the payment open however long it takes, and its outcome comes
    // as input: an idle timer then could only lead to waiting for that input (see below).
    const idleWhileExamining = input.fewerActivations === true && wake.then === 'close' && examining.size > 0;
    const woken =
      wake.afterMs === null || idleWhileExamining
        ? (await condition(hasInput), true)
        : input.waitsOnAlarm === true
          ? await waitForInput(hasInput, wake.afterMs)
          : await condition(hasInput, wake.afterMs);
    if (!woken) {
      // Idle, and nothing waits for a person or a deadline; a message still being verified keeps it open.
      // An operator decision that came in as the idle wait ended is still answered (its update waits).
      if (wake.then === 'close' && examining.size === 0 && inbox.length === 0) break;
      if (wake.then === 'close') await condition(() => hasInput() || examining.size === 0);
      else inbox.push({ type: 'tick' });
    }
    while (inbox.length > 0) {
      const item = inbox.shift()!;
      if (item.type === 'message') {
        if (fewerSteps() || patched(VERIFY_BESIDE_QUEUE)) startExamining(item.messageId);
        else await takeMessage(item.messageId);
        continue;
      }
      if (item.type === 'failed') throw item.error;
      if (item.type === 'examined') {
        try {
          await applyExamined(item.messageId, item.examined, item.flags);
        } finally {
          examining.delete(item.messageId);
          slow.delete(item.messageId);
          const next = waiting.shift();
          if (next !== undefined) startExamining(next);
          publish(state, busy());
        }
        continue;
      }
      // A Mass Pay IPN carries many items, each a payment of its own: its outcome is processIpn's to record.
      const oneOfMany = item.type === 'ipn' && item.event.txnType === 'masspay';
      await apply(item, {
        outcomeOf: (d) => (oneOfMany ? undefined : (d.outcome ?? undefined)),
        // Saved: the update waiting for this decision (if any) is answered with the payment as it now is.
        saved: (decision) => {
          const saved = state;
          doors.answer(item, () => ({
            result: decision.result ?? { ok: false, status: 409, rule: 'internal_error', detail: 'no result' },
            state: saved,
            inFlight: [],
          }));
        },
      });
    }
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      // Verifications under way start again in the next run (the postback is safe to repeat).
      const examiningMessageIds = [...examining, ...waiting];
      await continueAsNew<typeof paymentLifecycle>({
        ...input,
        ...(examiningMessageIds.length > 0 ? { examiningMessageIds } : {}),
      });
    }
  }
  await condition(allHandlersFinished);
  return state;
}

/**
 * A decision whose posting saves what follows it (postAndSavePayment): the outcome its message gets,
 * and, once the posting is made, the state and outcome it saved (as JSON, to compare).
 */
type SaveWithPosting = {
  outcomeOf: (d: Decided) => OutcomeWrite | undefined;
  saved?: { state: string; outcome: string };
};

/** What a posting saves with it: the state and outcome the rules decide once it is made. */
type PlannedSave = { state: PaymentState; outcome: OutcomeWrite };

/** One input through the payment rules (see decideWithFacts for how facts and effects run). */
function decide(
  state: PaymentState,
  item: PaymentInput,
  orphanGraceSeconds: number,
  known: PaymentFacts = {},
  hints: MatchHints = {},
  withPosting?: SaveWithPosting,
): Promise<Decided> {
  const undecidable: PaymentInput = { type: 'malformed', signal: item.type, issues: 'no decision after 500 facts' };
  // Asked only where it can matter (an approve), so histories without approves carry no marker.
  const refuseLiveOnSandbox = item.type === 'approve' ? patched(LIVE_ON_SANDBOX_RULE) : true;
  const namedMatters = item.type === 'acknowledge' ? patched(NAMED_MATTERS_PATCH) : true;
  // One clock for every round when a posting saves the decision: the rounds then decide alike.
  const decidedAt = withPosting ? new Date().toISOString() : undefined;
  const rules = (facts: PaymentFacts, stuck: boolean) =>
    decidePayment(state, stuck ? undecidable : item, stuck ? {} : facts, {
      now: decidedAt ?? new Date().toISOString(),
      orphanGraceSeconds,
      refuseLiveOnSandbox,
      namedMatters,
    });
  /**
   * The decision once this posting is made, when it is final and runs no effect the posting would
   * then precede (audits, alerts): saved by the posting itself. Otherwise the steps stay apart.
   */
  const planSave = (facts: PaymentFacts, key: string): PlannedSave | undefined => {
    if (!withPosting) return undefined;
    const before = rules(facts, false);
    const after = rules({ ...facts, postings: { ...facts.postings, [key]: { ok: true } } }, false);
    if (after.kind !== 'done' || after.effects.length !== before.effects.length) return undefined;
    const outcome = withPosting.outcomeOf(after);
    return outcome && { state: after.state, outcome };
  };
  const saved = (planned: PlannedSave) => {
    if (withPosting)
      withPosting.saved = { state: JSON.stringify(planned.state), outcome: JSON.stringify(planned.outcome) };
  };
  return decideWithFacts({
    rules,
    fetch: (need: FactNeed, facts: PaymentFacts) => fetchFact(need, facts, hints, { planSave, saved }),
    run: (effect) => runEffect(effect, state),
    facts: { ...known },
  });
}

async function runEffect(effect: PaymentEffect, s: PaymentState): Promise<void> {
  if (effect.type === 'alert') await act.raiseAlert(effect);
  else await act.audit({ ...effect, integrationId: s.integrationId, txnId: s.txnId });
}

/** What the message's load already knows about matching its payer (see loadMessage's `postback`). */
type MatchHints = { matchBy?: MatchBy; payerMatch?: LoadedMessage['payerMatch'] };

async function fetchFact(
  need: FactNeed,
  facts: PaymentFacts,
  hints: MatchHints = {},
  save?: { planSave: (facts: PaymentFacts, key: string) => PlannedSave | undefined; saved: (p: PlannedSave) => void },
): Promise<void> {
  switch (need.fact) {
    case 'proof':
      facts.proof = await act.proveEvent(need.event);
      return;
    case 'customerExists':
      facts.customerExists = await act.customerExists(need.customerId);
      return;
    case 'customerMatch':
      {
        // Matched with the load, for this very payer: no second lookup.
        const known = hints.payerMatch;
        if (known && known.custom === need.custom && known.payerEmail === need.payerEmail) {
          facts.customerMatch = known.customerId;
          return;
        }
      }
      facts.customerMatch = await act.matchCustomer({ ...need, ...(hints.matchBy ? { matchBy: hints.matchBy } : {}) });
      return;
    case 'posting': {
      const key = need.posting.idempotencyKey;
      const planned = save?.planSave(facts, key);
      const posted = await postingFact(() =>
        planned ? act.postAndSavePayment({ posting: need.posting, ...planned }) : act.postToLedger(need.posting),
      );
      if (planned && posted.ok) save!.saved(planned);
      facts.postings = { ...facts.postings, [key]: posted };
      return;
    }
  }
}

function showFlags(s: PaymentState, extra: string[]): void {
  upsertLater([{ key: FlagsKey, value: [...new Set([...flagsOf(s), ...extra])] }]);
}

/**
 * Search attributes are upserted once per wait, not at every step: each upsert is a history event and
 * a visibility write on the server, and a message's one workflow task used to upsert 7 times, every
 * value but the last unseen (a task's commands land together). So the values wait here (per
 * execution: see localActivityLock) and `showNow` upserts those that differ from what the execution
 * shows (its start's, carried over by continue-as-new, or upserted since), wherever the workflow
 * waits for longer than a step: for input (the loop), for an operator (a parked message).
 */
const toShow = new Map<string, SearchAttributeUpdatePair>();
/** Whether this execution takes fewer steps (set once it has read its input; per execution). */
let stepsOfThisExecution = () => patched(FEWER_STEPS);

function upsertLater(updates: Array<SearchAttributeUpdatePair>): void {
  if (!stepsOfThisExecution()) {
    upsertSearchAttributes(updates);
    return;
  }
  for (const u of updates) toShow.set(u.key.name, u);
}

function showNow(): void {
  const current = workflowInfo().typedSearchAttributes;
  // An empty list shows as no value: IpnFlags = "held" finds neither.
  const shownAs = (v: unknown) => JSON.stringify(v ?? []);
  const changed = [...toShow.values()].filter((u) => shownAs(current.get(u.key)) !== shownAs(u.value));
  toShow.clear();
  if (changed.length > 0) upsertSearchAttributes(changed);
}

/** What the Web UI's IpnFlags search shows for this payment. */
function flagsOf(s: PaymentState): string[] {
  return [...new Set([...(s.hold ? ['held', s.hold.reason] : []), ...s.attention, ...(s.payment?.flags ?? [])])];
}

/** Shows the state to ops: search attributes (with `extra` flags) and the Web UI's current details. */
function publish(s: PaymentState, extra: string[] = []): void {
  const flags = [...new Set([...flagsOf(s), ...extra])];
  upsertLater([
    { key: PaymentStatusKey, value: s.paymentStatus ?? s.phase },
    { key: FlagsKey, value: flags },
    ...(s.customerId ? [{ key: CustomerIdKey, value: s.customerId }] : []),
  ]);
  const money = s.currency
    ? ` credited ${describeMoney(s.creditedMinor, s.currency)}, debited ${describeMoney(s.debitedMinor, s.currency)}`
    : '';
  const hold = s.hold ? `\n\nHELD: **${s.hold.reason}**. Signal \`assignCustomer\`, \`approve\` or \`reject\`.` : '';
  const attention = s.attention.length ? `\n\nTo acknowledge: ${s.attention.join(', ')} (signal \`acknowledge\`).` : '';
  setCurrentDetails(
    `**${s.phase}** (${s.paymentStatus ?? 'no status yet'}), customer ` +
      `${s.customerId ?? 'unknown'};${money}${hold}${attention}`,
  );
}
