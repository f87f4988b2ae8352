import { ApplicationFailure, Context } from '@temporalio/activity';
import mongoose from 'mongoose';
import type { ActivityDeps } from '.';
import type { IpnSummary } from '../src/domain/ipn-summary';
import type { Integration } from '../src/domain/integration';
import { paymentWorkflowId } from '../src/domain/workflow-ids';
import { LifecycleEventSchema, type LifecycleEvent } from '../src/domain/payment-state';
import type { Proof } from '../src/domain/payment-decide';
import { readIpn } from '../src/ipn/read';
import { toIntegration } from '../src/integrations/store';
import { ipnEventSignal, paymentLifecycle } from '../workflows/payment-lifecycle';
import { IntegrationIdKey, TxnIdKey } from '../src/domain/contracts';
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
  const { IpnMessage, IpnClaim, Integration: Integrations } = db.models;

  /**
   * The first delivery of a (integration, txn, status) claims it; any later one is its duplicate.
   * One insert by _id, no scan of past messages. Returns the claimant when it is another message.
   * The key is unambiguous: integration ids and checked txn ids never contain ':'.
   */
  const claimDelivery = async (key: string, messageId: string): Promise<string | null> => {
    try {
      await IpnClaim.create({ _id: key, messageId });
      return null;
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    const claim = await IpnClaim.findById(key).lean();
    // Our own claim when an earlier attempt of this activity inserted it.
    return claim && claim.messageId !== messageId ? claim.messageId : null;
  };

  return {
    /** Decodes the stored raw bytes again: the stored bytes are the only truth (ids checked as at intake). */
    async loadMessage(messageId: string): Promise<LoadedMessage> {
      const msg = await IpnMessage.findById(messageId).lean();
      if (!msg) throw ApplicationFailure.nonRetryable(`IPN message ${messageId} not found`, 'MessageNotFound');
      const integrationDoc = await Integrations.findById(msg.integrationId).lean();
      let summary: IpnSummary | null = null;
      let decodeError: string | null = null;
      try {
        summary = readIpn(Buffer.from(msg.raw.buffer)).summary;
      } catch (err) {
        decodeError = (err as Error).message;
      }
      const claimKey = summary?.txnId ? `${msg.integrationId}:${summary.txnId}:${summary.paymentStatus ?? ''}` : null;
      const duplicateOf = claimKey ? await claimDelivery(claimKey, messageId) : null;
      // First activity of its workflow, so nothing recorded an outcome yet: no need to filter on state.
      const set = { state: 'dispatched', ...(duplicateOf ? { duplicateOf } : {}) };
      await IpnMessage.updateOne({ _id: msg._id }, { $set: set });
      return {
        integration: integrationDoc ? toIntegration(integrationDoc) : null,
        summary,
        decodeError,
        duplicateOf,
        receivedAt: msg.receivedAt.toISOString(),
      };
    },

    async recordMessageOutcome(
      record: MessageOutcomeRecord & { routedEvent?: LifecycleEvent; receivedEvents?: LifecycleEvent[] },
    ): Promise<void> {
      const { messageId, outcome, detail, flags, addFlags, routedEvent, receivedEvents } = record;
      const set = {
        state: outcome,
        outcome: detail,
        ...(flags ? { flags } : {}),
        ...(routedEvent ? { routedEvent } : {}),
        ...(receivedEvents ? { receivedEvents } : {}),
      };
      await IpnMessage.updateOne(
        { _id: messageId },
        { $set: set, ...(addFlags ? { $addToSet: { flags: { $each: addFlags } } } : {}) },
      );
    },

    /**
     * Whether a stored message backs this event: the one processIpn recorded after verifying the
     * message, field for field. Anything else (a hand-typed signal) moves no money.
     */
    async proveEvent(event: LifecycleEvent): Promise<Proof> {
      // A malformed id (typed by hand) finds nothing; any other error is the store's, retried by Temporal:
      // a transient failure must never turn a genuine event into an unproven one.
      if (!mongoose.isValidObjectId(event.messageId)) return { ok: false, reason: 'not a stored message id' };
      const msg = await IpnMessage.findById(event.messageId, {
        integrationId: 1,
        routedEvent: 1,
        receivedEvents: 1,
      }).lean<{ integrationId: string; routedEvent?: unknown; receivedEvents?: unknown[] }>();
      if (!msg) return { ok: false, reason: `no stored message ${String(event.messageId).slice(0, 40)}` };
      if (msg.integrationId !== event.integrationId)
        return { ok: false, reason: 'the message belongs to another integration' };
      // One event per message, or (a Mass Pay IPN) one per item paid to us.
      const backed = [msg.routedEvent, ...(msg.receivedEvents ?? [])].filter((e) => e !== undefined && e !== null);
      if (backed.length === 0) return { ok: false, reason: 'the message was never verified and routed' };
      const wanted = canonicalJson(event);
      const matches = backed.some((e) => {
        const stored = LifecycleEventSchema.safeParse(e);
        return stored.success && canonicalJson(stored.data) === wanted;
      });
      return matches ? { ok: true } : { ok: false, reason: 'the event differs from what its verified message says' };
    },

    /** Delivers the event to its payment's lifecycle, starting that workflow if it is not running. */
    async routeToPayment({
      event,
      idleCloseSeconds,
    }: {
      event: LifecycleEvent;
      idleCloseSeconds: number;
    }): Promise<string> {
      const orphanGraceSeconds = config.ORPHAN_ADJUSTMENT_GRACE_SECONDS;
      const workflowId = paymentWorkflowId(event.integrationId, event.paymentTxnId);
      await client.workflow.signalWithStart(paymentLifecycle, {
        workflowId,
        taskQueue: Context.current().info.taskQueue,
        args: [
          {
            integrationId: event.integrationId,
            paymentTxnId: event.paymentTxnId,
            idleCloseSeconds,
            orphanGraceSeconds,
          },
        ],
        signal: ipnEventSignal,
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
    async raiseAlert({
      kind,
      messageId,
      detail,
    }: {
      kind: string;
      messageId: string | null;
      detail: string;
    }): Promise<void> {
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
