import type { LoadedMessage } from '../../activities/messages';
import type { Integration } from '../integrations/schema';
import { classify, type PaymentRoute, type Route } from '../messages/classify';
import type { OutcomeWrite } from '../messages/outcomes';
import type { IpnSummary } from '../messages/summary';
import { checkPayment } from './checks';
import type { PaymentDecision } from './rules';
import type { LifecycleEvent } from './state';

/** A stored message its workflow loaded and proved (examineMessage): decoded, its integration known. */
export type VerifiedMessage = LoadedMessage & { integration: Integration; summary: IpnSummary };

/**
 * Where the message goes, as intake classified it (stored with it). Classified here only when it was
 * loaded without one: a message stored before intake stored routes, or a history recorded before.
 */
export function routeOf(msg: VerifiedMessage): Route {
  return msg.route ?? classify(msg.summary);
}

/**
 * The event a verified payment or adjustment message means for its payment's lifecycle: amounts
 * parsed with the currency's exponent, and the checks' flags (receiver, currency, type...) for the
 * rules to hold on. Pure.
 */
export function paymentEventOf(messageId: string, msg: VerifiedMessage, route: PaymentRoute): LifecycleEvent {
  const { summary, integration } = msg;
  const checks = checkPayment(summary, integration, route.kind);
  if (!integration.verifyTransaction) checks.flags.push('unverified');
  const creditMinor =
    checks.grossMinor === null
      ? null
      : checks.grossMinor - (integration.feePolicy === 'net' ? (checks.feeMinor ?? 0) : 0);
  return {
    messageId,
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
}

/**
 * The outcome a payment's message gets once the rules took it (`routed` unless they name another),
 * with every flag it collected on the way and the event it proved, recorded on the message.
 */
export function paymentOutcomeOf(
  messageId: string,
  decision: Extract<PaymentDecision, { kind: 'done' }>,
  flags: string[],
  event: LifecycleEvent,
): OutcomeWrite {
  const outcome = decision.outcome ?? {
    messageId,
    outcome: 'routed' as const,
    detail: `payment ${event.paymentTxnId}`,
  };
  const allFlags = [...flags, ...event.flags, ...(outcome.flags ?? []), ...(outcome.addFlags ?? [])];
  return {
    messageId,
    outcome: outcome.outcome,
    detail: outcome.detail,
    flags: [...new Set(allFlags)],
    routedEvent: event,
  };
}
