import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Types } from 'mongoose';
import { z } from 'zod';
import type { Config } from '../shared/config';
import type { Models } from '../shared/db/models';
import type { Logger } from '../shared/logger';
import { isDuplicateKey } from '../shared/ledger';
import { restCredentialsFromEnv } from '../shared/paypal/rest-client';
import { IntegrationIdKey, PayoutBatchIdKey, payoutWorkflowId } from '../shared/contract';
import {
  batchWorkflowInput,
  MASSPAY_BATCH,
  payoutsWebhookSignal,
  type MasspayBatchWorkflow,
} from '../masspay/contract';
import { BATCH_EVENTS, isItemEvent, parseSenderBatchId, restItemReport, RestItemResourceSchema } from '../masspay/rest';
import { paypalNoticeSignal, TopupIdSchema } from '../topups/contract';
import { topupWorkflowId } from '../shared/ids';
import { createCertCache, SIGNATURE_HEADERS, verifyWebhookSignature, type SignatureRefusal } from './signature';

/** What became of a webhook that is not applied: typed, stored on its message, shown to a person. */
export type WebhookOutcome =
  | { code: 'signature'; refusal: SignatureRefusal }
  | { code: 'malformed'; issue: string }
  | { code: 'unknown_batch'; senderBatchId: string }
  | { code: 'not_ours'; eventType: string }
  | { code: 'duplicate'; eventId: string }
  /** A capture event whose custom_id names no top-up of this integration (a checkout not made here). */
  | { code: 'unknown_topup'; customId: string };

/** Orders v2 capture events: they go to the top-up named by the capture's custom_id (src/topups). */
const CAPTURE_EVENTS = ['PAYMENT.CAPTURE.COMPLETED', 'PAYMENT.CAPTURE.PENDING', 'PAYMENT.CAPTURE.DENIED'];

const EnvelopeSchema = z.object({
  id: z.string().min(1).max(100),
  event_type: z.string().min(1).max(100),
  resource: z.record(z.string(), z.unknown()),
});

/** Stored messages older than this and still `received` are processed by the relay (the answer's work was cut). */
const RELAY_GRACE_MS = 5_000;
/** The relay looks this far back by _id (an ObjectId carries its time): bounded, by _id. */
const RELAY_WINDOW_MS = 3 * 24 * 3600_000;
/** One signal per batch per this long, however many events arrive: the workflow reads them from the store. */
const POKE_EVERY_MS = 500;

/**
 * Payouts webhooks after the door stored them: verify the signature over the raw bytes, read the
 * envelope, store each verified event for its batch (by _id, once per event id), and tell the batch
 * workflow. A refused or unreadable webhook is flagged on its stored message and never applied.
 */
export class WebhookIntake {
  private readonly certs = createCertCache();
  private readonly pokes = new Map<string, NodeJS.Timeout>();
  private relay: NodeJS.Timeout | undefined;
  private cursor: Types.ObjectId | undefined;

  constructor(private readonly deps: { models: Models; client: Client; config: Config; logger: Logger }) {}

  /** The raw POST, stored before anything is judged: the durable point of the door. */
  async store(integrationId: string, raw: Buffer, headers: Record<string, string | undefined>): Promise<string> {
    const kept = Object.fromEntries(
      [...SIGNATURE_HEADERS, 'content-type']
        .filter((h) => headers[h])
        .map((h) => [h, String(headers[h]).slice(0, 2000)]),
    );
    const doc = await this.deps.models.WebhookMessage.create({
      integrationId,
      receivedAt: new Date(),
      raw,
      headers: kept,
      state: 'received',
    });
    return String(doc._id);
  }

  async process(messageId: string): Promise<void> {
    const { models } = this.deps;
    const message = await models.WebhookMessage.findById(messageId).lean();
    if (!message || message.state !== 'received') return;
    const settle = (state: 'applied' | 'ignored' | 'refused', extra: Record<string, unknown> = {}) =>
      models.WebhookMessage.updateOne({ _id: message._id, state: 'received' }, { $set: { state, ...extra } });
    const integration = await models.Integration.findById(message.integrationId, {
      mode: 1,
      payoutsRestEnv: 1,
    }).lean();
    if (!integration)
      return void (await settle('refused', { outcome: { code: 'malformed', issue: 'no integration' } }));
    const creds = integration.payoutsRestEnv ? restCredentialsFromEnv(integration.payoutsRestEnv, process.env) : null;
    const raw = Buffer.from(message.raw.buffer);
    const verdict = await verifyWebhookSignature({
      rawBody: raw,
      headers: message.headers as Record<string, string | undefined>,
      webhookId: creds?.webhookId,
      mode: integration.mode as 'live' | 'sandbox',
      production: this.deps.config.NODE_ENV === 'production',
      sandboxRestUrl: this.deps.config.PAYPAL_SANDBOX_REST_URL,
      certs: this.certs,
    });
    if (!verdict.ok) {
      this.deps.logger.warn({ messageId, refusal: verdict.refusal.code }, 'webhook signature refused; not applied');
      return void (await settle('refused', { outcome: { code: 'signature', refusal: verdict.refusal } }));
    }
    let envelope: z.infer<typeof EnvelopeSchema>;
    try {
      envelope = EnvelopeSchema.parse(JSON.parse(raw.toString('utf8')));
    } catch (err) {
      const issue = (err as Error).message.slice(0, 200);
      return void (await settle('refused', { outcome: { code: 'malformed', issue } }));
    }
    const meta = { eventId: envelope.id, eventType: envelope.event_type };
    if (CAPTURE_EVENTS.includes(envelope.event_type)) {
      const outcome = await this.captureEvent(message.integrationId, envelope.resource);
      return void (await settle(outcome ? 'ignored' : 'applied', { ...meta, ...(outcome ? { outcome } : {}) }));
    }
    const routed = this.route(envelope);
    if ('outcome' in routed) return void (await settle('ignored', { ...meta, outcome: routed.outcome }));
    const batch = await models.PayoutBatch.findById(routed.batchId, { integrationId: 1 }).lean();
    if (!batch || batch.integrationId !== message.integrationId) {
      const outcome: WebhookOutcome = { code: 'unknown_batch', senderBatchId: routed.senderBatchId };
      return void (await settle('ignored', { ...meta, outcome }));
    }
    try {
      await models.PayoutEvent.create({
        _id: `${routed.batchId}:${envelope.id}`,
        batchId: routed.batchId,
        eventType: envelope.event_type,
        messageId,
        report: routed.report,
        batchStatus: routed.batchStatus,
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const outcome: WebhookOutcome = { code: 'duplicate', eventId: envelope.id };
      return void (await settle('ignored', { ...meta, outcome }));
    }
    await settle('applied', meta);
    this.poke(routed.batchId, message.integrationId);
  }

  private route(envelope: z.infer<typeof EnvelopeSchema>) {
    const type = envelope.event_type;
    if (isItemEvent(type)) {
      const item = RestItemResourceSchema.safeParse(envelope.resource);
      if (!item.success) return { outcome: { code: 'malformed', issue: item.error.message.slice(0, 200) } as const };
      const sender = item.data.sender_batch_id ?? '';
      const parsed = parseSenderBatchId(sender);
      if (!parsed) return { outcome: { code: 'unknown_batch', senderBatchId: sender.slice(0, 100) } as const };
      return { ...parsed, senderBatchId: sender, report: restItemReport(item.data, type), batchStatus: null };
    }
    if (BATCH_EVENTS.includes(type)) {
      const header = z
        .object({ batch_status: z.string().max(32), sender_batch_header: z.object({ sender_batch_id: z.string() }) })
        .safeParse((envelope.resource as { batch_header?: unknown }).batch_header);
      if (!header.success)
        return { outcome: { code: 'malformed', issue: 'batch event without a batch header' } as const };
      const sender = header.data.sender_batch_header.sender_batch_id;
      const parsed = parseSenderBatchId(sender);
      if (!parsed) return { outcome: { code: 'unknown_batch', senderBatchId: sender.slice(0, 100) } as const };
      return { ...parsed, senderBatchId: sender, report: null, batchStatus: header.data.batch_status };
    }
    return { outcome: { code: 'not_ours', eventType: type.slice(0, 100) } as const };
  }

  /**
   * A capture changed at PayPal: its top-up is told, and asks PayPal itself (the event only says
   * where to look: a forged or replayed one moves nothing). Its capture id is the payment entity's
   * key too: whichever of this, the IPN and the return page gets there first credits it, once.
   */
  private async captureEvent(integrationId: string, resource: Record<string, unknown>): Promise<WebhookOutcome | null> {
    const customId = typeof resource.custom_id === 'string' ? resource.custom_id : '';
    const id = TopupIdSchema.safeParse(customId);
    const topup = id.success
      ? await this.deps.models.Topup.findById(id.data, { integrationId: 1, phase: 1 }).lean()
      : null;
    if (!topup || topup.integrationId !== integrationId)
      return { code: 'unknown_topup', customId: customId.slice(0, 64) };
    // Credited already (the return got there first): nothing to learn, no workflow task spent on it.
    if (topup.phase === 'credited') return null;
    try {
      await this.deps.client.workflow
        .getHandle(topupWorkflowId(topup._id))
        .signal(paypalNoticeSignal, { source: 'webhook' });
    } catch (err) {
      // A finished top-up has nothing left to learn: credited, or ended where no money can move.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    return null;
  }

  /** At most one signal per batch per POKE_EVERY_MS: 15,000 item events are a few dozen signals. */
  private poke(batchId: string, integrationId: string): void {
    if (this.pokes.has(batchId)) return;
    const timer = setTimeout(() => {
      this.pokes.delete(batchId);
      this.signal(batchId, integrationId).catch((err: unknown) =>
        // The batch's poll applies the waiting events all the same.
        this.deps.logger.warn({ batchId, err: (err as Error).message }, 'could not signal the batch; its poll will'),
      );
    }, POKE_EVERY_MS);
    this.pokes.set(batchId, timer);
  }

  private async signal(batchId: string, integrationId: string): Promise<void> {
    const { client, config } = this.deps;
    await client.workflow.signalWithStart<MasspayBatchWorkflow, [{ events?: number }]>(MASSPAY_BATCH, {
      workflowId: payoutWorkflowId(batchId),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [batchWorkflowInput(batchId, config)],
      signal: payoutsWebhookSignal,
      signalArgs: [{}],
      typedSearchAttributes: [
        { key: PayoutBatchIdKey, value: batchId },
        { key: IntegrationIdKey, value: integrationId },
      ],
    });
  }

  /** Picks up stored messages whose processing the request path never finished (a crash after the answer). */
  start(intervalMs = 5_000): void {
    this.relay ??= setInterval(() => {
      this.relayOnce().catch((err: unknown) =>
        this.deps.logger.warn({ err: (err as Error).message }, 'webhook relay failed; next round retries'),
      );
    }, intervalMs);
    this.relay.unref();
  }

  /**
   * One pass over what arrived since the last pass, by _id (an ObjectId carries its time): the cursor
   * stops at the first message that could not be processed, so it is tried again next pass, and a
   * pass never rereads the history behind it.
   */
  async relayOnce(): Promise<number> {
    const until = Types.ObjectId.createFromTime(Math.floor((Date.now() - RELAY_GRACE_MS) / 1000));
    this.cursor ??= Types.ObjectId.createFromTime(Math.floor((Date.now() - RELAY_WINDOW_MS) / 1000));
    const seen = await this.deps.models.WebhookMessage.find({ _id: { $gt: this.cursor, $lt: until } }, { state: 1 })
      .sort({ _id: 1 })
      .limit(500)
      .lean();
    let processed = 0;
    for (const m of seen) {
      if (m.state === 'received') {
        try {
          await this.process(String(m._id));
          processed++;
        } catch (err) {
          this.deps.logger.warn(
            { messageId: String(m._id), err: (err as Error).message },
            'webhook relay: retry later',
          );
          return processed;
        }
      }
      this.cursor = m._id as Types.ObjectId;
    }
    return processed;
  }

  async stop(): Promise<void> {
    if (this.relay) clearInterval(this.relay);
    this.relay = undefined;
    for (const t of this.pokes.values()) clearTimeout(t);
    this.pokes.clear();
  }
}
