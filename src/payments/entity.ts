import type { Client, SignalDefinition } from '@temporalio/client';
import type { Config } from '../shared/config';
import { IntegrationIdKey, TxnIdKey } from '../shared/contract';
import { paymentWorkflowId } from '../shared/ids';
import { PAYMENT_LIFECYCLE, type PaymentLifecycleInput, type PaymentLifecycleWorkflow } from './contract';

type EntitySettings = Pick<
  Config,
  'PAYMENT_IDLE_CLOSE_SECONDS' | 'ORPHAN_ADJUSTMENT_GRACE_SECONDS' | 'IPN_VERIFY_GIVE_UP_SECONDS'
>;

/** How one payment's lifecycle is started, wherever it is started from (a message, an operator's decision). */
export function paymentStartOptions(to: {
  integrationId: string;
  paymentTxnId: string;
  taskQueue: string;
  config: EntitySettings;
}) {
  const { integrationId, paymentTxnId, config } = to;
  return {
    workflowId: paymentWorkflowId(integrationId, paymentTxnId),
    taskQueue: to.taskQueue,
    args: [
      {
        integrationId,
        paymentTxnId,
        idleCloseSeconds: config.PAYMENT_IDLE_CLOSE_SECONDS,
        orphanGraceSeconds: config.ORPHAN_ADJUSTMENT_GRACE_SECONDS,
        verifyGiveUpSeconds: config.IPN_VERIFY_GIVE_UP_SECONDS,
      },
    ] as [PaymentLifecycleInput],
    typedSearchAttributes: [
      { key: IntegrationIdKey, value: integrationId },
      { key: TxnIdKey, value: paymentTxnId },
    ],
    staticSummary: `PayPal txn ${paymentTxnId} (${integrationId})`,
  };
}

/**
 * Signals one payment's lifecycle (a stored message to verify, or an event processIpn verified),
 * starting it when it is not running (never started, or closed after being idle).
 */
export async function signalPayment<Payload>(
  client: Client,
  to: { integrationId: string; paymentTxnId: string; taskQueue: string; config: EntitySettings },
  signal: SignalDefinition<[Payload]>,
  payload: Payload,
): Promise<string> {
  const options = paymentStartOptions(to);
  await client.workflow.signalWithStart<PaymentLifecycleWorkflow, [Payload]>(PAYMENT_LIFECYCLE, {
    ...options,
    signal,
    signalArgs: [payload],
  });
  return options.workflowId;
}
