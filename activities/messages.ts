import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityDeps } from '.';
import type { IpnSummary } from '../src/domain/ipn-summary';
import type { Integration } from '../src/domain/integration';
import { paymentWorkflowId } from '../src/domain/workflow-ids';
import type { LifecycleEvent } from '../src/domain/payment-state';
import { readIpn } from '../src/ipn/read';
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

export function createMessageActivities({ db, client, logger }: ActivityDeps) {
  const { IpnMessage, Integration: Integrations } = db.models;
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

    async recordMessageOutcome({ messageId, outcome, detail, flags, addFlags }: MessageOutcomeRecord): Promise<void> {
      await IpnMessage.updateOne(
        { _id: messageId },
        { $set: { state: outcome, outcome: detail, ...(flags ? { flags } : {}) }, ...(addFlags ? { $addToSet: { flags: { $each: addFlags } } } : {}) },
      );
    },

    /** Delivers the event to its payment's lifecycle, starting that workflow if it is not running. */
    async routeToPayment({ event, idleCloseSeconds }: { event: LifecycleEvent; idleCloseSeconds: number }): Promise<string> {
      const workflowId = paymentWorkflowId(event.integrationId, event.paymentTxnId);
      await client.workflow.signalWithStart('paymentLifecycle', {
        workflowId,
        taskQueue: Context.current().info.taskQueue,
        args: [{ integrationId: event.integrationId, paymentTxnId: event.paymentTxnId, idleCloseSeconds }],
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
    async raiseAlert({ kind, messageId, detail }: { kind: string; messageId: string; detail: string }): Promise<void> {
      alerts.inc({ kind });
      logger.warn({ alert: kind, messageId, detail }, `alert: ${kind}`);
    },
  };
}
