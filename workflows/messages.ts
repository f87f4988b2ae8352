import {
  condition,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { receivedMasspayEvents } from '../src/masspay/received';
import { describeIssues, OperatorActionSchema } from '../src/shared/operator-actions';
import { FlagsKey } from '../src/shared/contract';
import type { MessageOutcome } from '../src/messages/state';
import { examineMessage, type ParkingDecision } from './shared/examine-message';
import { paymentEventOf, routeOf } from '../src/payments/message-event';
import { masspayRouting, messageLocal } from './shared/activity-options';
import {
  messageStateQuery,
  rejectMessageSignal,
  retryVerificationSignal,
  type ProcessIpnInput,
} from '../src/messages/contract';

// Bookkeeping runs as local activities (no server round trip each); only the postback to PayPal,
// which may need hours of retries, is a regular activity.
const { recordMessageOutcome, routeToPayment, routeMasspay, raiseAlert, audit } =
  proxyLocalActivities<Activities>(messageLocal);
const { routeToProfile, profileOwningTxn, routeAdjustmentToProfile } = proxyLocalActivities<Activities>(messageLocal);

// A Mass Pay message's items (up to 5,000: over a megabyte) are read, matched and routed inside one
// activity, after verification; the workflow sees counts. Decoding and matching take a second or two.
const { routeMasspayMessage } = proxyActivities<Activities>(masspayRouting);
/** Before this patch the workflow held the decoded items and routed them itself (histories before it replay so). */
const MASSPAY_ITEMS_IN_ACTIVITY = 'masspay-items-in-activity';

/**
 * One PayPal delivery that concerns no single payment: prove it came from PayPal, check it is ours,
 * and hand it on to what it concerns: a Mass Pay message to its batches (and its items paid to us to
 * their payments), a profile's message to its profile; one without money is recorded. Messages about
 * one payment (refunds and disputes included) go to that payment's entity, which verifies them itself
 * (workflows/payments.ts); runs started before that (see the end) still hand theirs on. No money moves here.
 */
export async function processIpn(input: ProcessIpnInput): Promise<MessageOutcome> {
  let stage = 'loading';
  const flags: string[] = [];
  let operatorAction: ParkingDecision | undefined;
  const malformed: Array<{ signal: string; issues: string }> = [];
  setHandler(messageStateQuery, () => ({ stage, flags }));
  // Signals are input (the Web UI sends whatever is typed): validated here, a bad one recorded and ignored.
  const decision = (kind: 'retry' | 'reject', signal: string) => (payload: unknown) => {
    // Its one message: a messageId, if named, is not needed (the admin API names it for payments).
    const parsed = OperatorActionSchema.safeParse(payload);
    if (parsed.success) operatorAction = { kind, action: parsed.data };
    else malformed.push({ signal, issues: describeIssues(parsed.error) });
  };
  setHandler(retryVerificationSignal, decision('retry', 'retryVerification'), {
    description:
      'Operator: try the PayPal postback again for a parked message. Input: {"operator": "...", "reason": "..."}',
  });
  setHandler(rejectMessageSignal, decision('reject', 'rejectMessage'), {
    description: 'Operator: give up on a parked message. Input: {"operator": "...", "reason": "..."}',
  });

  const finish = async (outcome: MessageOutcome, detail: string): Promise<MessageOutcome> => {
    stage = outcome;
    setCurrentDetails(`**${outcome}**: ${detail}`);
    if (flags.length) upsertSearchAttributes([{ key: FlagsKey, value: [...flags] }]);
    await recordMessageOutcome({ messageId: input.messageId, outcome, detail, flags });
    return outcome;
  };

  stage = 'verifying';
  const examined = await examineMessage(input.messageId, {
    verifyGiveUpSeconds: input.verifyGiveUpSeconds,
    flags,
    onParked: () => {
      stage = 'parked';
      upsertSearchAttributes([{ key: FlagsKey, value: [...flags] }]);
    },
    awaitOperator: async (about) => {
      for (;;) {
        await condition(() => operatorAction !== undefined || malformed.length > 0);
        const bad = malformed.shift();
        if (!bad) break;
        await audit({
          actor: 'unknown',
          action: 'malformed_signal',
          ...about,
          details: { messageId: input.messageId, ...bad },
        });
      }
      const decided = operatorAction!;
      operatorAction = undefined;
      stage = 'verifying';
      return decided;
    },
  });
  if (examined.kind !== 'verified')
    return finish(examined.kind === 'finished' ? examined.outcome : 'unknown_alerted', examined.detail);
  const msg = examined.msg;
  const { summary, integration } = msg;

  const route = routeOf(msg);
  switch (route.kind) {
    case 'masspay': {
      if (patched(MASSPAY_ITEMS_IN_ACTIVITY)) {
        const routed = await routeMasspayMessage({
          messageId: input.messageId,
          paymentIdleCloseSeconds: input.paymentIdleCloseSeconds,
        });
        const receivedDetail = `${routed.received} item(s) paid to us`;
        if (routed.received > 0 && routed.received === routed.items) return finish('masspay_received', receivedDetail);
        if (routed.unmatched > 0 || routed.batchIds.length === 0) {
          flags.push('held');
          const detail =
            `${routed.unmatched} of ${routed.items - routed.received} item(s) ` +
            `match no batch: ${routed.unmatchedSample.join(', ')}`;
          await raiseAlert({ kind: 'masspay_unmatched', messageId: input.messageId, detail });
          return finish('masspay_unmatched', detail.slice(0, 500));
        }
        return finish('masspay_routed', `items of ${routed.batchIds.join(', ')}`.slice(0, 500));
      }
      // Items paid to us are payments received (each to its payment entity); the rest are our payouts.
      const received = receivedMasspayEvents(summary, integration, {
        messageId: input.messageId,
        receivedAt: msg.receivedAt,
      });
      const items = summary.masspayItems.filter((item) => !received.received.includes(item));
      if (received.events.length > 0) {
        const detail = `${received.events.length} item(s) paid to us`;
        await recordMessageOutcome({
          messageId: input.messageId,
          outcome: 'routed',
          detail,
          flags,
          receivedEvents: received.events,
        });
        for (const event of received.events) {
          await routeToPayment({ idleCloseSeconds: input.paymentIdleCloseSeconds, event });
        }
        if (items.length === 0) return finish('masspay_received', detail);
      }
      const routed = await routeMasspay({
        messageId: input.messageId,
        integrationId: integration.id,
        paymentStatus: summary.paymentStatus,
        sandbox: summary.testIpn,
        items,
      });
      if (routed.unmatched.length > 0 || routed.batchIds.length === 0) {
        // Never dropped: a person sees it in GET /admin/held (the matched items were delivered all the same).
        flags.push('held');
        const detail =
          `${routed.unmatched.length} of ${items.length} item(s) ` +
          `match no batch: ${routed.unmatched.slice(0, 5).join(', ')}`;
        await raiseAlert({ kind: 'masspay_unmatched', messageId: input.messageId, detail });
        return finish('masspay_unmatched', detail.slice(0, 500));
      }
      return finish('masspay_routed', `items of ${routed.batchIds.join(', ')}`.slice(0, 500));
    }
    case 'profile': {
      const profileWorkflowId = await routeToProfile({ messageId: input.messageId, profileId: route.profileId, flags });
      const link = `/namespaces/${workflowInfo().namespace}/workflows/${profileWorkflowId}`;
      setCurrentDetails(`**routed** to recurring profile [${profileWorkflowId}](${link})`);
      return 'routed';
    }
    case 'lifecycle':
      return finish('recorded_no_money', route.reason);
    case 'unknown':
      flags.push('alert');
      await raiseAlert({ kind: 'ipn_unknown', messageId: input.messageId, detail: route.reason });
      return finish('unknown_alerted', route.reason);
  }

  // Runs started before payments and their adjustments went to the payment's entity by message id
  // (intake names the payment's workflow for them now): the event goes on as it did then.
  const event = paymentEventOf(input.messageId, msg, route);
  flags.push(...event.flags.filter((f) => !flags.includes(f)));
  // The event is stored with the message: the payment applies only an event a verified message backs.
  const detail = `${route.kind} of ${route.paymentTxnId}`;
  await recordMessageOutcome({ messageId: input.messageId, outcome: 'routed', detail, flags, routedEvent: event });
  // A refund (reversal, dispute) of a recurring profile's cycle payment goes to the profile that credited it.
  const owner =
    route.kind === 'payment'
      ? null
      : await profileOwningTxn({ integrationId: integration.id, txnId: route.paymentTxnId });
  const workflowId = owner
    ? await routeAdjustmentToProfile({ event, profileId: owner })
    : await routeToPayment({ idleCloseSeconds: input.paymentIdleCloseSeconds, event });
  stage = 'routed';
  setCurrentDetails(
    `**routed** to [${workflowId}](/namespaces/${workflowInfo().namespace}/workflows/${workflowId}) as ${route.kind}`,
  );
  if (flags.length) upsertSearchAttributes([{ key: FlagsKey, value: [...flags] }]);
  return 'routed';
}
