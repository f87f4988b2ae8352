import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityDeps } from '.';
import { summarizeIpn, type IpnSummary } from '../src/domain/ipn-summary';
import type { Integration } from '../src/domain/integration';
import { paymentWorkflowId } from '../src/domain/workflow-ids';
import { LifecycleEventSchema, type LifecycleEvent } from '../src/domain/payment-state';
import type { Proof } from '../src/domain/payment-decide';
import { decodeIpn } from '../src/ipn/decode';
import { toIntegration } from '../src/integrations/store';
import { IntegrationIdKey, TxnIdKey } from '../workflows/search-attributes';
import { alerts } from '../src/metrics';
import type { MessageOutcomeRecord } from '../workflows/types';

export interface LoadedMessage {
  integration: Integration | null;
  summary: IpnSummary | null;
  decodeError: string | null;
  duplicateOf: string | null;
  receivedAt: string;
}

export function createMessageActivities({ db, client, config, logger }: ActivityDeps) {
  const { IpnMessage, Integration: Integrations } = db.models;
  return {
    /** Decodes the stored raw bytes again: the stored bytes are the only truth. */
    async loadMessage(messageId: string): Promise<LoadedMessage> {
      const msg = await IpnMessage.findById(messageId).lean();
      if (!msg) throw ApplicationFailure.nonRetryable(`IPN message ${messageId} not found`, 'MessageNotFound');
      const integrationDoc = await Integrations.findById(msg.integrationId).lean();
      let summary: IpnSummary | null = null;
      let decodeError: string | null = null;
      try {
        summary = summarizeIpn(decodeIpn(Buffer.from(msg.raw.buffer)).fields);
      } catch (err) {
        decodeError = (err as Error).message;
      }
      const earlier =
        summary?.txnId
          ? await IpnMessage.findOne({ integrationId: msg.integrationId, txnId: summary.txnId, paymentStatus: summary.paymentStatus ?? null, _id: { $lt: msg._id } }, { _id: 1 }).lean()
          : null;
      if (earlier) await IpnMessage.updateOne({ _id: msg._id }, { $set: { duplicateOf: String(earlier._id) } });
      return {
        integration: integrationDoc ? toIntegration(integrationDoc) : null,
        summary,
        decodeError,
        duplicateOf: earlier ? String(earlier._id) : null,
        receivedAt: msg.receivedAt.toISOString(),
      };
    },

    async recordMessageOutcome(record: MessageOutcomeRecord & { routedEvent?: LifecycleEvent }): Promise<void> {
      const { messageId, outcome, detail, flags, addFlags, routedEvent } = record;
      const set = { state: outcome, outcome: detail, ...(flags ? { flags } : {}), ...(routedEvent ? { routedEvent } : {}) };
      await IpnMessage.updateOne({ _id: messageId }, { $set: set, ...(addFlags ? { $addToSet: { flags: { $each: addFlags } } } : {}) });
    },

    /**
     * Whether a stored message backs this event: the one processIpn recorded after verifying the
     * message, field for field. Anything else (a hand-typed signal) moves no money.
     */
    async proveEvent(event: LifecycleEvent): Promise<Proof> {
      const msg = await IpnMessage.findById(event.messageId, { integrationId: 1, routedEvent: 1 })
        .lean<{ integrationId: string; routedEvent?: unknown }>()
        .catch(() => null);
      if (!msg) return { ok: false, reason: `no stored message ${String(event.messageId).slice(0, 40)}` };
      if (msg.integrationId !== event.integrationId) return { ok: false, reason: 'the message belongs to another integration' };
      if (!msg.routedEvent) return { ok: false, reason: 'the message was never verified and routed' };
      const stored = LifecycleEventSchema.safeParse(msg.routedEvent);
      if (!stored.success || canonicalJson(stored.data) !== canonicalJson(event)) {
        return { ok: false, reason: 'the event differs from what its verified message says' };
      }
      return { ok: true };
    },

    /** Delivers the event to its payment's lifecycle, starting that workflow if it is not running. */
    async routeToPayment({ event, idleCloseSeconds }: { event: LifecycleEvent; idleCloseSeconds: number }): Promise<string> {
      const orphanGraceSeconds = config.ORPHAN_ADJUSTMENT_GRACE_SECONDS;
      const workflowId = paymentWorkflowId(event.integrationId, event.paymentTxnId);
      await client.workflow.signalWithStart('paymentLifecycle', {
        workflowId,
        taskQueue: Context.current().info.taskQueue,
        args: [{ integrationId: event.integrationId, paymentTxnId: event.paymentTxnId, idleCloseSeconds, orphanGraceSeconds }],
        signal: 'ipnEvent',
        signalArgs: [event],
        typedSearchAttributes: [
          { key: IntegrationIdKey, value: event.integrationId },
          { key: TxnIdKey, value: event.paymentTxnId },
        ],
        staticSummary: `PayPal txn ${event.paymentTxnId} (${event.integrationId})`,
      });
      return workflowId;
    },

    /** What a person must look at: a log line at error level and a counter to alert on. */
    async raiseAlert({ kind, messageId, detail }: { kind: string; messageId: string | null; detail: string }): Promise<void> {
      alerts.inc({ kind });
      logger.warn({ alert: kind, messageId, detail }, `alert: ${kind}`);
    },
  };
}

/** JSON with sorted keys: the same event compares equal whatever order its fields were stored in. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}
