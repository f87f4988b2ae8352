import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Types } from 'mongoose';
import { z } from 'zod';
import type { Config } from '../shared/config';
import type { Models } from '../shared/db/models';
import type { Logger } from '../shared/logger';
import type { MoneyMode } from '../shared/ledger';
import { duplicateKeyIndexes, isDuplicateKey } from '../shared/db/duplicate-keys';
import { restCredentialsFromEnv } from '../shared/paypal/rest-client';
import { IntegrationIdKey, PayoutBatchIdKey, payoutWorkflowId } from '../shared/contract';
import {
  batchWorkflowInput,
  MASSPAY_BATCH,
  payoutsWebhookSignal,
  type MasspayBatchWorkflow,
} from '../masspay/contract';
import { BATCH_EVENTS, isItemEvent, parseSenderBatchId, restItemReport, RestItemResourceSchema } from '../masspay/rest';
import {
  createCertCache,
  SIGNATURE_HEADERS,
  verifyWebhookSignature,
  type CertCache,
  type SignatureRefusal,
} from './signature';
import { duplicateOf, GroupWriter, type Judged, type Stored } from './group-writer';
import { paypalNoticeSignal, TopupIdSchema } from '../topups/contract';
import { topupWorkflowId } from '../shared/ids';
import { IntegrationCache } from '../integrations/cache';

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

export type { Stored } from './group-writer';
/** What the offline judge says of a certificate it has not fetched yet: judged after storing instead. */
const NOT_CACHED = 'certificate not fetched yet';

/** Stored messages older than this and still `received` are processed by the relay (the answer's work was cut). */
const RELAY_GRACE_MS = 5_000;
/** How far back `received` messages stored without an outbox entry (an older version) are looked for. */
const RELAY_WINDOW_MS = 3 * 24 * 3600_000;
/** An outbox entry whose message is still not stored this long after: that store failed for good. */
const ORPHAN_ENTRY_MS = 60_000;
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
  /** An integration's mode and REST app, read as the IPN door reads it (a save applies within seconds). */
  private readonly integrations: IntegrationCache;
  private readonly batches = new Map<string, string>();
  private readonly writer: GroupWriter;

  constructor(private readonly deps: { models: Models; client: Client; config: Config; logger: Logger }) {
    this.writer = new GroupWriter(deps.models);
    this.integrations = new IntegrationCache(deps.models);
  }

  /**
   * The door: resolves once the POST (raw bytes and transmission headers) is stored, then the door
   * answers 200. What can be judged from memory (the integration and its certificate already known:
   * every webhook after the first) is judged first and stored with its verdict, many POSTs in one
   * write (see GroupWriter); anything else (a certificate still to fetch) is stored as `received`
   * and judged after the answer. Judging changes nothing by itself: nothing is applied or dropped
   * before it is stored, and a store that fails answers 503 (PayPal sends it again).
   */
  async receive(integrationId: string, raw: Buffer, headers: Record<string, string | undefined>): Promise<void> {
    const kept = Object.fromEntries(
      [...SIGNATURE_HEADERS, 'content-type']
        .filter((h) => headers[h])
        .map((h) => [h, String(headers[h]).slice(0, 2000)]),
    );
    const message: Stored = { _id: new Types.ObjectId(), integrationId, raw, headers: kept, state: 'received' };
    const judged = await this.judge(message, { offline: true });
    if (!judged) {
      // Its outbox entry first: a message stored `received` always has one for the relay to find.
      await this.deps.models.WebhookOutbox.collection.insertOne({ _id: message._id });
      await this.deps.models.WebhookMessage.collection.insertOne({ ...message, receivedAt: new Date() });
      setImmediate(() =>
        this.process(message).catch((err: unknown) => {
          const messageId = String(message._id);
          this.deps.logger.warn({ err: (err as Error).message, messageId }, 'webhook processing failed; relay retries');
        }),
      );
      return;
    }
    const written = await this.writer.write({ message, judged });
    if (written.state === 'applied' && judged.batchId) this.poke(judged.batchId, integrationId);
    if (written.state === 'applied' && judged.topupId) this.noticeTopup(judged.topupId);
  }

  /** Judges one stored `received` message (the relay's path, and the door's when it could not judge first). */
  async process(stored: Stored | string): Promise<void> {
    const { models } = this.deps;
    const message = typeof stored === 'string' ? await models.WebhookMessage.findById(stored).lean<Stored>() : stored;
    if (!message) return;
    if (message.state !== 'received') return void (await models.WebhookOutbox.deleteOne({ _id: message._id }));
    let judged = (await this.judge(message, { offline: false }))!;
    if (judged.event) {
      try {
        await models.PayoutEvent.create(judged.event);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        judged = duplicateOf(judged);
      }
    }
    await models.WebhookMessage.updateOne(
      { _id: message._id, state: 'received' },
      { $set: { state: judged.state, ...judged.extra } },
    );
    await models.WebhookOutbox.deleteOne({ _id: message._id });
    if (judged.state === 'applied' && judged.batchId) this.poke(judged.batchId, message.integrationId);
    if (judged.state === 'applied' && judged.topupId) this.noticeTopup(judged.topupId);
  }

  /**
   * What a message is: refused (signature, shape), ignored (not ours, unknown batch) or an event to
   * apply, without writing anything. `offline`: null instead of fetching a certificate.
   */
  private async judge(message: Stored, opts: { offline: boolean }): Promise<Judged | null> {
    const refused = (extra: Record<string, unknown>): Judged => ({ state: 'refused', extra });
    const integration = await this.integrations.get(message.integrationId);
    if (!integration) return refused({ outcome: { code: 'malformed', issue: 'no integration' } });
    const creds = integration.payoutsRestEnv ? restCredentialsFromEnv(integration.payoutsRestEnv, process.env) : null;
    const raw = Buffer.isBuffer(message.raw) ? message.raw : Buffer.from(message.raw.buffer);
    const certs: CertCache = opts.offline
      ? { get: (url) => (this.certs.cached?.(url) ? this.certs.get(url) : Promise.reject(new Error(NOT_CACHED))) }
      : this.certs;
    const verdict = await verifyWebhookSignature({
      rawBody: raw,
      headers: message.headers as Record<string, string | undefined>,
      webhookId: creds?.webhookId,
      mode: integration.mode as MoneyMode,
      production: this.deps.config.NODE_ENV === 'production',
      sandboxRestUrl: this.deps.config.PAYPAL_SANDBOX_REST_URL,
      certs,
    });
    if (!verdict.ok) {
      const { refusal } = verdict;
      if (opts.offline && refusal.code === 'cert_unavailable' && refusal.error === NOT_CACHED) return null;
      const messageId = String(message._id);
      this.deps.logger.warn({ messageId, refusal: refusal.code }, 'webhook signature refused; not applied');
      return refused({ outcome: { code: 'signature', refusal } });
    }
    let envelope: z.infer<typeof EnvelopeSchema>;
    try {
      envelope = EnvelopeSchema.parse(JSON.parse(raw.toString('utf8')));
    } catch (err) {
      return refused({ outcome: { code: 'malformed', issue: (err as Error).message.slice(0, 200) } });
    }
    const meta = { eventId: envelope.id, eventType: envelope.event_type };
    if (CAPTURE_EVENTS.includes(envelope.event_type)) {
      const capture = await this.captureTopup(message.integrationId, envelope.resource);
      if ('outcome' in capture) return { state: 'ignored', extra: { ...meta, outcome: capture.outcome } };
      return { state: 'applied', extra: meta, topupId: capture.topupId };
    }
    const routed = this.route(envelope);
    if ('outcome' in routed) return { state: 'ignored', extra: { ...meta, outcome: routed.outcome } };
    if ((await this.batchIntegration(routed.batchId)) !== message.integrationId) {
      const outcome: WebhookOutcome = { code: 'unknown_batch', senderBatchId: routed.senderBatchId };
      return { state: 'ignored', extra: { ...meta, outcome } };
    }
    return {
      state: 'applied',
      extra: meta,
      batchId: routed.batchId,
      event: {
        _id: `${routed.batchId}:${envelope.id}`,
        batchId: routed.batchId,
        eventType: envelope.event_type,
        messageId: String(message._id),
        report: routed.report,
        batchStatus: routed.batchStatus,
      },
    };
  }

  /** Which integration a batch belongs to: fixed at its creation, so remembered (bounded). */
  private async batchIntegration(batchId: string): Promise<string | null> {
    const known = this.batches.get(batchId);
    if (known) return known;
    const batch = await this.deps.models.PayoutBatch.findById(batchId, { integrationId: 1 }).lean();
    if (!batch) return null;
    if (this.batches.size > 10_000) this.batches.clear();
    this.batches.set(batchId, batch.integrationId);
    return batch.integrationId;
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
   * A capture changed at PayPal: the top-up its custom_id names (judged here, without writing), told
   * once the webhook is stored (noticeTopup). It then asks PayPal itself: the event only says where to
   * look, so a forged or replayed one moves nothing. Its capture id is the payment entity's key too:
   * whichever of this, the IPN and the return page gets there first credits it, once.
   */
  private async captureTopup(
    integrationId: string,
    resource: Record<string, unknown>,
  ): Promise<{ outcome: WebhookOutcome } | { topupId?: string }> {
    const customId = typeof resource.custom_id === 'string' ? resource.custom_id : '';
    const id = TopupIdSchema.safeParse(customId);
    const topup = id.success
      ? await this.deps.models.Topup.findById(id.data, { integrationId: 1, phase: 1 }).lean()
      : null;
    if (!topup || topup.integrationId !== integrationId)
      return { outcome: { code: 'unknown_topup', customId: customId.slice(0, 64) } };
    // Credited already (the return got there first): nothing to learn, no workflow task spent on it.
    return topup.phase === 'credited' ? {} : { topupId: topup._id };
  }

  /** Tells a stored capture webhook's top-up; its own poll is the backstop when this fails. */
  private noticeTopup(topupId: string): void {
    this.deps.client.workflow
      .getHandle(topupWorkflowId(topupId))
      .signal(paypalNoticeSignal, { source: 'webhook' })
      .catch((err: unknown) => {
        // A finished top-up has nothing left to learn: credited, or ended where no money can move.
        if (err instanceof WorkflowNotFoundError) return;
        this.deps.logger.warn({ topupId, err: (err as Error).message }, 'could not tell the top-up; its poll will');
      });
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
    if (this.relay) return;
    this.relay = setInterval(() => {
      this.relayOnce().catch((err: unknown) =>
        this.deps.logger.warn({ err: (err as Error).message }, 'webhook relay failed; next round retries'),
      );
    }, intervalMs);
    this.relay.unref();
    this.adoptUnqueued().catch((err: unknown) =>
      this.deps.logger.warn({ err: (err as Error).message }, 'webhook relay: could not look for older messages'),
    );
  }

  /**
   * One pass over the outbox, oldest first: entries older than the grace period (the door's own
   * processing had its chance) are judged now. An entry whose message is not stored after
   * ORPHAN_ENTRY_MS is dropped (that POST was not answered 200: PayPal sends it again); the pass
   * stops at the first message that could not be processed, tried again next pass.
   */
  async relayOnce(): Promise<number> {
    const { models, logger } = this.deps;
    const until = Types.ObjectId.createFromTime(Math.floor((Date.now() - RELAY_GRACE_MS) / 1000));
    const due = await models.WebhookOutbox.find({ _id: { $lt: until } })
      .sort({ _id: 1 })
      .limit(500)
      .lean();
    let processed = 0;
    for (const { _id } of due) {
      const message = await models.WebhookMessage.findById(_id).lean<Stored>();
      if (!message) {
        if (Date.now() - _id.getTimestamp().getTime() < ORPHAN_ENTRY_MS) continue;
        await models.WebhookOutbox.deleteOne({ _id });
        logger.warn({ messageId: String(_id) }, 'dropped a webhook outbox entry whose message was never stored');
        continue;
      }
      try {
        await this.process(message);
        processed++;
      } catch (err) {
        logger.warn({ messageId: String(_id), err: (err as Error).message }, 'webhook relay: retry later');
        return processed;
      }
    }
    return processed;
  }

  /**
   * Messages an older version stored `received` without an outbox entry (it scanned the messages
   * instead): given one, once per process start, over the window that version looked at.
   */
  async adoptUnqueued(): Promise<void> {
    const { models } = this.deps;
    const since = Types.ObjectId.createFromTime(Math.floor((Date.now() - RELAY_WINDOW_MS) / 1000));
    const stuck = await models.WebhookMessage.find({ _id: { $gt: since }, state: 'received' }, { _id: 1 }).lean();
    if (stuck.length === 0) return;
    await models.WebhookOutbox.insertMany(
      stuck.map((m) => ({ _id: m._id })),
      { ordered: false, lean: true },
    ).catch((err: unknown) => {
      if (!duplicateKeyIndexes(err)) throw err;
    });
  }

  async stop(): Promise<void> {
    if (this.relay) clearInterval(this.relay);
    this.relay = undefined;
    for (const t of this.pokes.values()) clearTimeout(t);
    this.pokes.clear();
  }
}
