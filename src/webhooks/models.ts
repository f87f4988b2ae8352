import { Schema, type Connection } from 'mongoose';

/**
 * Every webhook POST as it arrived, stored before we answer: the raw bytes (the signature covers
 * them), PayPal's transmission headers, and what became of it. `_id` is an ObjectId: a forger's
 * copy of a real event id cannot take the real event's place.
 */
const webhookMessageSchema = new Schema(
  {
    integrationId: { type: String, required: true },
    receivedAt: { type: Date, required: true },
    raw: { type: Buffer, required: true },
    headers: { type: Schema.Types.Mixed, required: true },
    /** received → applied | ignored | refused (signature, shape): flagged, never applied. */
    state: { type: String, required: true },
    eventId: String,
    eventType: String,
    /** Why it was refused or ignored (typed: `{ code, … }`). */
    outcome: Schema.Types.Mixed,
  },
  { versionKey: false },
);

/**
 * Verified events waiting for their batch workflow: `_id` is `<batchId>:<eventId>`, so a batch's
 * waiting events are one bounded _id range and a repeated event is one document. Applied events
 * are deleted (their raw message stays in webhook_messages).
 */
const payoutEventSchema = new Schema(
  {
    _id: { type: String, required: true },
    batchId: { type: String, required: true },
    eventType: { type: String, required: true },
    messageId: { type: String, required: true },
    /** An item event's report (MasspayItemReport); null for a batch event. */
    report: Schema.Types.Mixed,
    /** A batch event's status (SUCCESS, DENIED, …); null for an item event. */
    batchStatus: String,
  },
  { versionKey: false },
);

/**
 * Stored webhooks whose judging the door left for after its answer (`received`: a certificate to
 * fetch), one entry each by the message's `_id`, deleted once judged. The relay reads this small
 * collection, not webhook_messages: FerretDB pushes no `_id` range down, so a range over every
 * stored webhook would read them all, every pass.
 */
const webhookOutboxSchema = new Schema({ _id: { type: Schema.Types.ObjectId, required: true } }, { versionKey: false });

export function bindWebhookModels(conn: Connection) {
  return {
    WebhookMessage: conn.model('WebhookMessage', webhookMessageSchema, 'webhook_messages'),
    WebhookOutbox: conn.model('WebhookOutbox', webhookOutboxSchema, 'webhook_outbox'),
    PayoutEvent: conn.model('PayoutEvent', payoutEventSchema, 'payout_webhook_events'),
  };
}
