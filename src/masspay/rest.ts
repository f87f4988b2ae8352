import { z } from 'zod';
import { formatMinor, parseAmount } from '../shared/money';
import type { ItemState, MasspayItemReport } from './state';

/**
 * Payouts REST in our terms: the ids we send, and what PayPal's item statuses and webhook events
 * mean for our items. Pure: the send and apply activities, the webhook door and tests share it.
 */

/**
 * Derived from our batch and call, never random: a call sent again (a lost answer, a 5xx, a worker
 * that died) carries the same id, and PayPal refuses to create a second batch for it.
 */
export function senderBatchId(batchId: string, callIndex: number): string {
  return `${batchId}:${callIndex}`;
}

export function parseSenderBatchId(value: string): { batchId: string; callIndex: number } | null {
  const m = /^([A-Za-z0-9_-]{1,64}):(\d{1,5})$/.exec(value);
  return m ? { batchId: m[1]!, callIndex: Number(m[2]) } : null;
}

export interface RestPayoutItem {
  uniqueId: string;
  receiverEmail: string;
  amountMinor: number;
  note: string | null;
}

/** One `POST /v1/payments/payouts` body: amounts as strings in the currency's exponent. */
export function payoutsBody(args: {
  senderBatchId: string;
  currency: string;
  emailSubject: string;
  items: RestPayoutItem[];
}): Record<string, unknown> {
  return {
    sender_batch_header: {
      sender_batch_id: args.senderBatchId,
      email_subject: args.emailSubject,
      recipient_type: 'EMAIL',
    },
    items: args.items.map((i) => ({
      recipient_type: 'EMAIL',
      receiver: i.receiverEmail,
      amount: { currency: args.currency, value: formatMinor(i.amountMinor, args.currency) },
      sender_item_id: i.uniqueId,
      ...(i.note ? { note: i.note } : {}),
    })),
  };
}

/**
 * PayPal's item status (GET's `transaction_status`) as our item state. ONHOLD is not final (PayPal
 * is reviewing it): still Pending for us. REFUNDED and REVERSED bring the money back after a payout
 * completed: Reversed. A status we do not know is kept as said, so the item rules flag it.
 */
const ITEM_STATUS: Record<string, ItemState> = {
  PENDING: 'Pending',
  ONHOLD: 'Pending',
  SUCCESS: 'Completed',
  UNCLAIMED: 'Unclaimed',
  RETURNED: 'Returned',
  FAILED: 'Failed',
  BLOCKED: 'Blocked',
  REFUNDED: 'Reversed',
  REVERSED: 'Reversed',
  DENIED: 'Failed',
  CANCELED: 'Returned',
};

/** Webhook event types for items, by the status they carry (the resource's own status agrees). */
const ITEM_EVENT: Record<string, string> = {
  'PAYMENT.PAYOUTS-ITEM.SUCCEEDED': 'SUCCESS',
  'PAYMENT.PAYOUTS-ITEM.UNCLAIMED': 'UNCLAIMED',
  'PAYMENT.PAYOUTS-ITEM.RETURNED': 'RETURNED',
  'PAYMENT.PAYOUTS-ITEM.FAILED': 'FAILED',
  'PAYMENT.PAYOUTS-ITEM.BLOCKED': 'BLOCKED',
  'PAYMENT.PAYOUTS-ITEM.REFUNDED': 'REFUNDED',
  'PAYMENT.PAYOUTS-ITEM.REVERSED': 'REVERSED',
  'PAYMENT.PAYOUTS-ITEM.HELD': 'ONHOLD',
  // A cancelled unclaimed item: PayPal returns its money to us.
  'PAYMENT.PAYOUTS-ITEM.CANCELED': 'RETURNED',
  'PAYMENT.PAYOUTS-ITEM.DENIED': 'DENIED',
};
export const BATCH_EVENTS = [
  'PAYMENT.PAYOUTSBATCH.PROCESSING',
  'PAYMENT.PAYOUTSBATCH.SUCCESS',
  'PAYMENT.PAYOUTSBATCH.DENIED',
];

export const isItemEvent = (eventType: string): boolean => eventType in ITEM_EVENT;

/** PayPal's item as GET item, GET batch's items and item webhooks show it (only what we read). */
export const RestItemResourceSchema = z.object({
  payout_item_id: z.string().max(64),
  transaction_id: z.string().max(64).nullish(),
  transaction_status: z.string().max(32).nullish(),
  payout_batch_id: z.string().max(64).nullish(),
  sender_batch_id: z.string().max(300).nullish(),
  payout_item_fee: z.object({ currency: z.string().max(3), value: z.string().max(32) }).nullish(),
  payout_item: z.object({
    amount: z.object({ currency: z.string().max(3), value: z.string().max(32) }),
    receiver: z.string().max(200).nullish(),
    sender_item_id: z.string().max(63),
  }),
  errors: z
    .object({ name: z.string().max(64) })
    .passthrough()
    .nullish(),
});
export type RestItemResource = z.infer<typeof RestItemResourceSchema>;

/** An item as PayPal shows it, as the report our item rules apply (the same as a Mass Pay IPN's). */
export function restItemReport(item: RestItemResource, eventType?: string): MasspayItemReport {
  const paypalStatus = (eventType && ITEM_EVENT[eventType]) || item.transaction_status || '';
  const amount = item.payout_item.amount;
  const fee = item.payout_item_fee;
  return {
    uniqueId: item.payout_item.sender_item_id,
    status: ITEM_STATUS[paypalStatus] ?? paypalStatus,
    masspayTxnId: item.transaction_id || null,
    grossMinor: parseAmount(amount.value, amount.currency),
    feeMinor: fee ? parseAmount(fee.value, fee.currency) : null,
    currency: amount.currency,
    reasonCode: item.errors?.name ?? null,
  };
}

/** PayPal's batch status, as the batch status a Mass Pay IPN would carry (what the batch rules read). */
export function restBatchStatus(batchStatus: string, openItems: number): 'Processed' | 'Completed' | 'Denied' | null {
  if (batchStatus === 'DENIED') return 'Denied';
  if (batchStatus === 'SUCCESS') return openItems === 0 ? 'Completed' : 'Processed';
  if (batchStatus === 'PROCESSING') return 'Processed';
  return null;
}
