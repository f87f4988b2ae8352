import type { Client, SignalDefinition } from '@temporalio/client';
import type { Config } from '../shared/config';
import { IntegrationIdKey, TxnIdKey } from '../shared/contract';
import { PAYMENT_LIFECYCLE, type PaymentLifecycleWorkflow } from './contract';

type EntitySettings = Pick<
  Config,
  'PAYMENT_IDLE_CLOSE_SECONDS' | 'ORPHAN_ADJUSTMENT_GRACE_SECONDS' | 'IPN_VERIFY_GIVE_UP_SECONDS'
>;

/**
 * Signals one payment's lifecycle (a stored message to verify, or a Mass Pay item's verified event),
 * starting it when it is not running (never started, or closed after being idle). The caller names
 * the workflow (src/shared/ids.ts): intake for a message, paymentWorkflowId for an event.
 */
export async function signalPayment<Payload>(
  client: Client,
  to: { workflowId: string; integrationId: string; paymentTxnId: string; taskQueue: string; config: EntitySettings },
  signal: SignalDefinition<[Payload]>,
  payload: Payload,
): Promise<string> {
  const { workflowId, integrationId, paymentTxnId, config } = to;
  await client.workflow.signalWithStart<PaymentLifecycleWorkflow, [Payload]>(PAYMENT_LIFECYCLE, {
    workflowId,
    taskQueue: to.taskQueue,
    args: [
      {
        integrationId,
        paymentTxnId,
        idleCloseSeconds: config.PAYMENT_IDLE_CLOSE_SECONDS,
        orphanGraceSeconds: config.ORPHAN_ADJUSTMENT_GRACE_SECONDS,
        verifyGiveUpSeconds: config.IPN_VERIFY_GIVE_UP_SECONDS,
      },
    ],
    signal,
    signalArgs: [payload],
    typedSearchAttributes: [
      { key: IntegrationIdKey, value: integrationId },
      { key: TxnIdKey, value: paymentTxnId },
    ],
    staticSummary: `PayPal txn ${paymentTxnId} (${integrationId})`,
  });
  return workflowId;
}
