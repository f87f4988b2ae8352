import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import { IntegrationIdKey, TxnIdKey, type MessageRef } from '../domain/contracts';
import type { LifecycleEvent } from '../domain/payment-state';
import type { PaymentLifecycleInput } from '../../workflows/types';
import { paymentWorkflowId } from '../domain/workflow-ids';
import { ipnEventSignal, ipnMessageSignal, paymentLifecycle } from '../../workflows/payment-lifecycle';

type EntitySettings = Pick<
  Config,
  'PAYMENT_IDLE_CLOSE_SECONDS' | 'ORPHAN_ADJUSTMENT_GRACE_SECONDS' | 'IPN_VERIFY_GIVE_UP_SECONDS'
>;

/** What a payment's workflow is sent: a stored message to verify, or an event processIpn verified. */
export type PaymentDelivery =
  { signal: typeof ipnMessageSignal; args: [MessageRef] } | { signal: typeof ipnEventSignal; args: [LifecycleEvent] };

/**
 * Signals one payment's lifecycle, starting it when it is not running (never started, or closed
 * after being idle).
 */
export async function signalPayment(
  client: Client,
  to: { integrationId: string; paymentTxnId: string; taskQueue: string; config: EntitySettings },
  delivery: PaymentDelivery,
): Promise<string> {
  const { integrationId, paymentTxnId, config } = to;
  const workflowId = paymentWorkflowId(integrationId, paymentTxnId);
  const options = {
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
    ] as [PaymentLifecycleInput],
    typedSearchAttributes: [
      { key: IntegrationIdKey, value: integrationId },
      { key: TxnIdKey, value: paymentTxnId },
    ],
    staticSummary: `PayPal txn ${paymentTxnId} (${integrationId})`,
  };
  if (delivery.signal === ipnMessageSignal)
    await client.workflow.signalWithStart(paymentLifecycle, {
      ...options,
      signal: ipnMessageSignal,
      signalArgs: delivery.args as [MessageRef],
    });
  else
    await client.workflow.signalWithStart(paymentLifecycle, {
      ...options,
      signal: ipnEventSignal,
      signalArgs: delivery.args as [LifecycleEvent],
    });
  return workflowId;
}
