import type { PayoutItem } from './state';
import type { PostingRequest } from '../shared/ledger';

export function reservationPosting(item: PayoutItem): PostingRequest {
  return {
    customerId: item.customerId,
    currency: item.currency,
    mode: item.mode,
    amountMinor: -item.amountMinor,
    idempotencyKey: `payout_reserve:${item.batchId}:${item.uniqueId}`,
    reason: 'payout_reserve',
    integrationId: item.integrationId,
    note: `reserved for Mass Pay batch ${item.batchId} item ${item.uniqueId}`,
    // Money we pay out must be there: two batches created at once must not both take the same balance.
    mustStayCovered: true,
  };
}

export function releasePosting(
  item: PayoutItem,
  why: string,
  by: { messageId?: string; operator?: string },
): PostingRequest {
  return {
    customerId: item.customerId,
    currency: item.currency,
    mode: item.mode,
    amountMinor: item.amountMinor,
    idempotencyKey: `payout_release:${item.batchId}:${item.uniqueId}`,
    reason: 'payout_release',
    integrationId: item.integrationId,
    ...(item.masspayTxnId ? { txnId: item.masspayTxnId } : {}),
    ...(by.messageId ? { messageId: by.messageId } : {}),
    ...(by.operator ? { operator: by.operator } : {}),
    note: `released: ${why} (batch ${item.batchId} item ${item.uniqueId})`,
  };
}
