import type { Integration } from '../integrations/schema';
import type { IpnSummary, MasspayItem } from '../messages/summary';
import { isSupportedCurrency, parseAmount } from '../shared/money';
import type { CheckFlag } from '../payments/event';
import type { LifecycleEvent } from '../payments/state';

/**
 * Mass payments we *receive*: an item of a `masspay` IPN whose receiver is one of this integration's
 * addresses is a customer paying us (the payer is `payer_email`). Each such item becomes an event for
 * the payment entity of its `masspay_txn_id_x`, so it is matched, held and credited exactly like any
 * payment: once, when its status is Completed; an Unclaimed item waits; Returned or Reversed after a
 * credit takes it back. Items with no txn id cannot be followed and stay for a person.
 */
export function receivedMasspayEvents(
  s: IpnSummary,
  integration: Pick<Integration, 'id' | 'receiverEmails' | 'allowedCurrencies'>,
  message: { messageId: string; receivedAt: string },
): { events: LifecycleEvent[]; received: MasspayItem[] } {
  const ours = (item: MasspayItem) =>
    item.receiverEmail !== null && integration.receiverEmails.includes(item.receiverEmail.trim().toLowerCase());
  const received = s.masspayItems.filter((item) => ours(item) && item.masspayTxnId !== null);
  const events = received.map((item) => eventOf(item, s, integration, message));
  return { events, received };
}

function eventOf(
  item: MasspayItem,
  s: IpnSummary,
  integration: Pick<Integration, 'id' | 'allowedCurrencies'>,
  message: { messageId: string; receivedAt: string },
): LifecycleEvent {
  const txn = item.masspayTxnId!;
  const flags: CheckFlag[] = [];
  let grossMinor: number | null = null;
  if (!item.currency || !isSupportedCurrency(item.currency)) flags.push('malformed_amount');
  else {
    if (!integration.allowedCurrencies.includes(item.currency)) flags.push('currency_not_allowed');
    try {
      grossMinor = item.gross === null ? null : Math.abs(parseAmount(item.gross, item.currency));
    } catch {
      grossMinor = null;
    }
    if (!grossMinor) flags.push('malformed_amount');
  }
  const status = item.status ?? 'Pending';
  // Returned / Reversed move money back: a reversal of the item's own payment, under its own id.
  const back = status === 'Returned' || status === 'Reversed';
  const paymentStatus = back
    ? 'Reversed'
    : status === 'Unclaimed'
      ? 'Pending'
      : status === 'Blocked'
        ? 'Failed'
        : status;
  return {
    messageId: message.messageId,
    integrationId: integration.id,
    kind: back ? 'reversal' : 'payment',
    txnId: back ? `${txn}-${status}` : txn,
    paymentTxnId: txn,
    paymentStatus,
    pendingReason: status === 'Unclaimed' ? 'unclaimed' : null,
    reasonCode: item.reasonCode,
    txnType: 'masspay',
    currency: item.currency,
    grossMinor,
    // Mass Pay fees are the sender's: the whole gross reaches us.
    feeMinor: null,
    creditMinor: grossMinor,
    payerEmail: s.payerEmail,
    custom: null,
    caseId: null,
    flags,
    receivedAt: message.receivedAt,
    sandbox: s.testIpn,
  };
}
