import { randomBytes } from 'node:crypto';
import { formatMinor, parseAmount } from '../../../src/shared/money';
import type { SimRestApp } from './oauth';
import { webhookEvent, type WebhookEvent } from './webhooks';

export const PAYOUTS_MAX_ITEMS = 15_000;

/** PayPal's item statuses (GET item's `transaction_status`). */
export type SimItemStatus =
  'PENDING' | 'SUCCESS' | 'UNCLAIMED' | 'RETURNED' | 'ONHOLD' | 'FAILED' | 'BLOCKED' | 'REFUNDED' | 'REVERSED';

/** What processing does to items for one receiver; default SUCCESS. `error` names PayPal's item error. */
export interface SimItemOutcome {
  status: Exclude<SimItemStatus, 'PENDING'>;
  error?: string;
}

export interface SimPayoutItem {
  payoutItemId: string;
  transactionId?: string;
  status: SimItemStatus;
  receiver: string;
  currency: string;
  value: string;
  senderItemId: string;
  note?: string;
  error?: string;
  timeProcessed?: string;
}

export interface SimPayoutBatch {
  payoutBatchId: string;
  senderBatchId: string;
  clientId: string;
  status: 'PENDING' | 'PROCESSING' | 'SUCCESS' | 'DENIED' | 'CANCELED';
  createdAt: string;
  requestId?: string;
  items: SimPayoutItem[];
}

/** A PayPal REST error answer: its status and the JSON body PayPal sends. */
export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.message ?? body.name));
  }
}

function debugId(): string {
  return randomBytes(6).toString('hex');
}

function validationError(details: { field: string; issue: string }[]): RestError {
  return new RestError(400, {
    name: 'VALIDATION_ERROR',
    message: 'Invalid request - see details',
    debug_id: debugId(),
    information_link: 'https://developer.paypal.com/docs/api/payments.payouts-batch/#errors',
    details,
  });
}

const CreateShape = {
  senderBatchId: (body: Record<string, unknown>) =>
    (body.sender_batch_header as Record<string, unknown> | undefined)?.sender_batch_id,
};

/** PayPal's Payouts: batches, items, processing, cancel of unclaimed items, and the events each change sends. */
export class SimPayouts {
  readonly batches = new Map<string, SimPayoutBatch>();
  private readonly bySender = new Map<string, string>();
  private readonly itemIndex = new Map<string, { batch: SimPayoutBatch; item: SimPayoutItem }>();
  private readonly outcomes = new Map<string, SimItemOutcome>();

  /** How processing settles items sent to `receiver` (tests script a payee's fate). */
  setOutcome(receiver: string, outcome: SimItemOutcome): void {
    this.outcomes.set(receiver.toLowerCase(), outcome);
  }

  create(app: SimRestApp, body: Record<string, unknown>, requestId: string | undefined): SimPayoutBatch {
    const senderBatchId = CreateShape.senderBatchId(body);
    if (typeof senderBatchId !== 'string' || senderBatchId.length === 0 || senderBatchId.length > 256) {
      throw validationError([{ field: 'sender_batch_header.sender_batch_id', issue: 'required, at most 256 chars' }]);
    }
    const existing = this.bySender.get(`${app.clientId}:${senderBatchId}`);
    if (existing) {
      throw new RestError(400, {
        name: 'USER_BUSINESS_ERROR',
        message: 'User business error.',
        debug_id: debugId(),
        details: [
          { field: 'SENDER_BATCH_ID', location: 'body', issue: 'Batch with given sender_batch_id already exists' },
        ],
        links: [{ href: `/v1/payments/payouts/${existing}`, rel: 'self', method: 'GET' }],
      });
    }
    const items = body.items;
    if (!Array.isArray(items) || items.length === 0) throw validationError([{ field: 'items', issue: 'required' }]);
    if (items.length > PAYOUTS_MAX_ITEMS) {
      throw validationError([{ field: 'items', issue: `Maximum of ${PAYOUTS_MAX_ITEMS} items allowed` }]);
    }
    const problems = items.flatMap((raw: unknown, i) => itemProblems(raw, i));
    if (problems.length > 0) throw validationError(problems);
    const batch: SimPayoutBatch = {
      payoutBatchId: randomBytes(7).toString('hex').toUpperCase().slice(0, 13),
      senderBatchId,
      clientId: app.clientId,
      status: 'PENDING',
      createdAt: new Date().toISOString(),
      requestId,
      items: items.map((raw: Record<string, unknown>) => {
        const amount = raw.amount as { value: string; currency: string };
        return {
          payoutItemId: randomBytes(7).toString('hex').toUpperCase().slice(0, 13),
          status: 'PENDING' as const,
          receiver: String(raw.receiver),
          currency: amount.currency,
          value: amount.value,
          senderItemId: String(raw.sender_item_id),
          note: typeof raw.note === 'string' ? raw.note : undefined,
        };
      }),
    };
    this.batches.set(batch.payoutBatchId, batch);
    this.bySender.set(`${app.clientId}:${senderBatchId}`, batch.payoutBatchId);
    for (const item of batch.items) this.itemIndex.set(item.payoutItemId, { batch, item });
    return batch;
  }

  batch(app: SimRestApp, payoutBatchId: string): SimPayoutBatch {
    const batch = this.batches.get(payoutBatchId);
    if (!batch || batch.clientId !== app.clientId) throw notFound(`batch ${payoutBatchId}`);
    return batch;
  }

  item(app: SimRestApp, payoutItemId: string): { batch: SimPayoutBatch; item: SimPayoutItem } {
    const found = this.itemIndex.get(payoutItemId);
    if (!found || found.batch.clientId !== app.clientId) throw notFound(`item ${payoutItemId}`);
    return found;
  }

  /** PayPal processes a batch: every pending item reaches its scripted outcome. Returns the events it sends. */
  process(payoutBatchId: string): WebhookEvent[] {
    const batch = this.batches.get(payoutBatchId);
    if (!batch) throw new Error(`no simulated payout batch ${payoutBatchId}`);
    const events: WebhookEvent[] = [];
    if (batch.status === 'PENDING') {
      batch.status = 'PROCESSING';
      events.push(batchEvent('PAYMENT.PAYOUTSBATCH.PROCESSING', batch));
    }
    for (const item of batch.items) {
      if (item.status !== 'PENDING') continue;
      const outcome = this.outcomes.get(item.receiver.toLowerCase()) ?? { status: 'SUCCESS' };
      this.settle(item, outcome.status, outcome.error);
      events.push(itemEvent(item.status, batch, item));
    }
    batch.status = 'SUCCESS';
    events.push(batchEvent('PAYMENT.PAYOUTSBATCH.SUCCESS', batch));
    return events;
  }

  /** An item changes later at PayPal (an unclaimed item returned after 30 days, a refund, a reversal). */
  change(payoutItemId: string, status: Exclude<SimItemStatus, 'PENDING'>): WebhookEvent {
    const found = this.itemIndex.get(payoutItemId);
    if (!found) throw new Error(`no simulated payout item ${payoutItemId}`);
    this.settle(found.item, status);
    return itemEvent(status, found.batch, found.item);
  }

  /** PayPal's cancel: only an UNCLAIMED item, which then is RETURNED. */
  cancel(app: SimRestApp, payoutItemId: string): { batch: SimPayoutBatch; item: SimPayoutItem; event: WebhookEvent } {
    const { batch, item } = this.item(app, payoutItemId);
    if (item.status === 'RETURNED') {
      throw new RestError(400, {
        name: 'ITEM_ALREADY_CANCELLED',
        message: 'Item already cancelled.',
        debug_id: debugId(),
      });
    }
    if (item.status !== 'UNCLAIMED') {
      throw new RestError(400, {
        name: 'ITEM_INCORRECT_STATUS',
        message: 'Item cannot be cancelled: it is not unclaimed.',
        debug_id: debugId(),
      });
    }
    this.settle(item, 'RETURNED');
    return { batch, item, event: itemEvent('CANCELED', batch, item) };
  }

  private settle(item: SimPayoutItem, status: SimItemStatus, error?: string): void {
    item.status = status;
    item.error = error;
    item.timeProcessed = new Date().toISOString();
    if (status === 'SUCCESS' || status === 'UNCLAIMED' || status === 'ONHOLD') {
      item.transactionId ??= randomBytes(9).toString('hex').toUpperCase().slice(0, 17);
    }
  }
}

function notFound(what: string): RestError {
  return new RestError(404, { name: 'INVALID_RESOURCE_ID', message: `Requested resource ID was not found (${what}).` });
}

function itemProblems(raw: unknown, i: number): { field: string; issue: string }[] {
  const item = (raw ?? {}) as Record<string, unknown>;
  const out: { field: string; issue: string }[] = [];
  const receiver = item.receiver;
  if (typeof receiver !== 'string' || receiver.length > 127 || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(receiver)) {
    out.push({ field: `items[${i}].receiver`, issue: 'Receiver is invalid or does not match with type' });
  }
  const senderItemId = item.sender_item_id;
  if (typeof senderItemId !== 'string' || senderItemId.length === 0 || senderItemId.length > 63) {
    out.push({ field: `items[${i}].sender_item_id`, issue: 'sender_item_id is required, at most 63 chars' });
  }
  const amount = (item.amount ?? {}) as Record<string, unknown>;
  const currency = amount.currency;
  const value = amount.value;
  const minor = typeof currency === 'string' && typeof value === 'string' ? parseAmount(value, currency) : null;
  if (minor === null || minor <= 0 || formatMinor(minor, currency as string) !== value) {
    out.push({ field: `items[${i}].amount`, issue: 'Currency or amount is invalid for this currency' });
  }
  return out;
}

function batchHeader(batch: SimPayoutBatch): Record<string, unknown> {
  return {
    payout_batch_id: batch.payoutBatchId,
    batch_status: batch.status,
    time_created: batch.createdAt,
    sender_batch_header: { sender_batch_id: batch.senderBatchId },
  };
}

export function itemResource(batch: SimPayoutBatch, item: SimPayoutItem): Record<string, unknown> {
  return {
    payout_item_id: item.payoutItemId,
    transaction_id: item.transactionId,
    transaction_status: item.status,
    payout_batch_id: batch.payoutBatchId,
    sender_batch_id: batch.senderBatchId,
    payout_item_fee: { currency: item.currency, value: '0.00' },
    payout_item: {
      recipient_type: 'EMAIL',
      amount: { currency: item.currency, value: item.value },
      receiver: item.receiver,
      note: item.note,
      sender_item_id: item.senderItemId,
    },
    time_processed: item.timeProcessed,
    ...(item.error ? { errors: { name: item.error, message: `${item.error} (simulated)` } } : {}),
  };
}

/** GET batch, one page. */
export function batchPage(batch: SimPayoutBatch, page: number, pageSize: number): Record<string, unknown> {
  const items = batch.items.slice((page - 1) * pageSize, page * pageSize);
  const totalPages = Math.max(1, Math.ceil(batch.items.length / pageSize));
  return {
    batch_header: batchHeader(batch),
    items: items.map((item) => itemResource(batch, item)),
    total_items: batch.items.length,
    total_page: totalPages,
    links:
      page < totalPages
        ? [{ href: `/v1/payments/payouts/${batch.payoutBatchId}?page=${page + 1}&page_size=${pageSize}`, rel: 'next' }]
        : [],
  };
}

export function createdAnswer(batch: SimPayoutBatch): Record<string, unknown> {
  return {
    batch_header: { ...batchHeader(batch), sender_batch_header: { sender_batch_id: batch.senderBatchId } },
    links: [{ href: `/v1/payments/payouts/${batch.payoutBatchId}`, rel: 'self', method: 'GET' }],
  };
}

const ITEM_EVENT: Record<string, string> = {
  SUCCESS: 'PAYMENT.PAYOUTS-ITEM.SUCCEEDED',
  UNCLAIMED: 'PAYMENT.PAYOUTS-ITEM.UNCLAIMED',
  RETURNED: 'PAYMENT.PAYOUTS-ITEM.RETURNED',
  ONHOLD: 'PAYMENT.PAYOUTS-ITEM.HELD',
  FAILED: 'PAYMENT.PAYOUTS-ITEM.FAILED',
  BLOCKED: 'PAYMENT.PAYOUTS-ITEM.BLOCKED',
  REFUNDED: 'PAYMENT.PAYOUTS-ITEM.REFUNDED',
  REVERSED: 'PAYMENT.PAYOUTS-ITEM.REVERSED',
  CANCELED: 'PAYMENT.PAYOUTS-ITEM.CANCELED',
  DENIED: 'PAYMENT.PAYOUTS-ITEM.DENIED',
};

function itemEvent(kind: string, batch: SimPayoutBatch, item: SimPayoutItem): WebhookEvent {
  return webhookEvent(ITEM_EVENT[kind] ?? `PAYMENT.PAYOUTS-ITEM.${kind}`, 'payouts_item', itemResource(batch, item));
}

function batchEvent(type: string, batch: SimPayoutBatch): WebhookEvent {
  return webhookEvent(type, 'payouts', { batch_header: batchHeader(batch) });
}
