import {
  ActivityFailure,
  condition,
  defineQuery,
  defineSignal,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { classify } from '../src/domain/classify';
import { receivedMasspayEvents } from '../src/domain/masspay-received';
import { checkPayment } from '../src/domain/checks';
import { describeIssues, OperatorActionSchema } from '../src/domain/operator-actions';
import type { LifecycleEvent } from '../src/domain/payment-state';
import { FlagsKey } from '../src/domain/contracts';
import type { MessageOutcome, OperatorAction, ProcessIpnInput } from './types';

// Bookkeeping runs as local activities (no server round trip each); only the postback to PayPal,
// which may need hours of retries, is a regular activity.
const { loadMessage, recordMessageOutcome, routeToPayment, routeMasspay, raiseAlert, audit } =
  proxyLocalActivities<Activities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '200ms', maximumInterval: '30s' },
  });
const { routeToProfile, profileOwningTxn, routeAdjustmentToProfile } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '200ms', maximumInterval: '30s' },
});

export const retryVerificationSignal = defineSignal<[OperatorAction]>('retryVerification');
export const rejectMessageSignal = defineSignal<[OperatorAction]>('rejectMessage');
export const messageStateQuery = defineQuery<{ stage: string; flags: string[] }>('state');

/**
 * One PayPal delivery: prove it came from PayPal, check it is ours, and hand it to the
 * lifecycle of the payment it concerns. Nothing here moves money.
 */
export async function processIpn(input: ProcessIpnInput): Promise<MessageOutcome> {
  let stage = 'loading';
  const flags: string[] = [];
  let operatorAction: { kind: 'retry' | 'reject'; action: OperatorAction } | undefined;
  const malformed: Array<{ signal: string; issues: string }> = [];
  setHandler(messageStateQuery, () => ({ stage, flags }));
  // Signals are input (the Web UI sends whatever is typed): validated here, a bad one recorded and ignored.
  const decision = (kind: 'retry' | 'reject', signal: string) => (payload: unknown) => {
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

  const msg = await loadMessage(input.messageId);
  if (msg.duplicateOf) flags.push('duplicate');
  if (!msg.integration) return finish('unknown_integration', 'the integration was deleted after the message arrived');
  if (!msg.summary) {
    flags.push('malformed');
    return finish('malformed', msg.decodeError ?? 'could not decode');
  }
  const summary = msg.summary;
  const integration = msg.integration;

  stage = 'verifying';
  if (integration.verifyTransaction) {
    for (;;) {
      const verdict = await verifyOrPark(input);
      if (verdict === 'VERIFIED') break;
      if (verdict === 'INVALID') {
        flags.push('invalid');
        await raiseAlert({
          kind: 'ipn_invalid',
          messageId: input.messageId,
          detail: 'PayPal answered INVALID to the postback: possible spoof',
        });
        return finish('invalid', 'PayPal answered INVALID: not credited');
      }
      stage = 'parked';
      flags.push('parked');
      setCurrentDetails(
        '**parked**: PayPal did not answer the postback in time. Signal `retryVerification` or `rejectMessage`.',
      );
      upsertSearchAttributes([{ key: FlagsKey, value: [...flags] }]);
      await recordMessageOutcome({
        messageId: input.messageId,
        outcome: 'parked',
        detail: 'verification gave up; waiting for an operator',
        flags,
      });
      for (;;) {
        await condition(() => operatorAction !== undefined || malformed.length > 0);
        const bad = malformed.shift();
        if (!bad) break;
        await audit({
          actor: 'unknown',
          action: 'malformed_signal',
          integrationId: integration.id,
          txnId: summary.txnId ?? undefined,
          details: { messageId: input.messageId, ...bad },
        });
      }
      const decided = operatorAction!;
      operatorAction = undefined;
      await audit({
        actor: decided.action.operator,
        action: decided.kind === 'retry' ? 'retry_verification' : 'reject_message',
        reason: decided.action.reason,
        integrationId: integration.id,
        txnId: summary.txnId ?? undefined,
        details: { messageId: input.messageId },
      });
      flags.splice(flags.indexOf('parked'), 1);
      if (decided.kind === 'reject')
        return finish('rejected_by_operator', `${decided.action.operator}: ${decided.action.reason}`);
      stage = 'verifying';
    }
  } else {
    flags.push('unverified');
  }

  if (summary.testIpn && integration.mode === 'live') {
    flags.push('sandbox_on_live');
    return finish('sandbox_on_live', 'test_ipn=1 on a live integration never moves money');
  }

  const route = classify(summary);
  switch (route.kind) {
    case 'masspay': {
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

  const checks = checkPayment(summary, integration, route.kind);
  if (!integration.verifyTransaction) checks.flags.push('unverified');
  flags.push(...checks.flags.filter((f) => !flags.includes(f)));
  const creditMinor =
    checks.grossMinor === null
      ? null
      : checks.grossMinor - (integration.feePolicy === 'net' ? (checks.feeMinor ?? 0) : 0);
  const event: LifecycleEvent = {
    messageId: input.messageId,
    integrationId: integration.id,
    kind: route.kind,
    txnId: summary.txnId!,
    paymentTxnId: route.paymentTxnId,
    paymentStatus: summary.paymentStatus ?? 'new_case',
    pendingReason: summary.pendingReason,
    reasonCode: summary.reasonCode,
    txnType: summary.txnType,
    currency: summary.currency,
    grossMinor: checks.grossMinor,
    feeMinor: checks.feeMinor,
    creditMinor,
    payerEmail: summary.payerEmail,
    custom: summary.custom,
    caseId: summary.caseId,
    flags: checks.flags,
    receivedAt: msg.receivedAt,
    sandbox: summary.testIpn,
  };
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

/** VERIFIED or INVALID, or 'gave_up' once the retry budget (bounded in time) is spent. */
async function verifyOrPark(input: ProcessIpnInput): Promise<'VERIFIED' | 'INVALID' | 'gave_up'> {
  const { verifyWithPayPal } = proxyActivities<Activities>({
    startToCloseTimeout: '45s',
    scheduleToCloseTimeout: `${input.verifyGiveUpSeconds}s`,
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '10m' },
  });
  try {
    return await verifyWithPayPal({ messageId: input.messageId });
  } catch (err) {
    if (err instanceof ActivityFailure) return 'gave_up';
    throw err;
  }
}
