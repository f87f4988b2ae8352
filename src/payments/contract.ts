/**
 * How the API, the activities and the workflow meet one payment's lifecycle: its type name, input,
 * signals and query, and how it is started (signalPayment). The names are recorded in running
 * workflows and histories: never rename them.
 * Starters name the workflow by this type (no import of the workflow module, hence no import cycle).
 */
import type { Client, SignalDefinition } from '@temporalio/client';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Config } from '../shared/config';
import { IntegrationIdKey, TxnIdKey } from '../shared/contract';
import type { MessageRef } from '../shared/contract';
import type { AcknowledgeAction, AssignCustomerAction, OperatorAction } from '../shared/operator-actions';
import type { LifecycleEvent, PaymentState } from './state';

export const PAYMENT_LIFECYCLE = 'paymentLifecycle';

export interface PaymentLifecycleInput {
  integrationId: string;
  paymentTxnId: string;
  idleCloseSeconds: number;
  /** Refunds/reversals waiting for a payment we never saw are shown to a person after this. */
  orphanGraceSeconds?: number;
  /** How long PayPal's postback is retried for a message this payment verifies before it is parked. */
  verifyGiveUpSeconds?: number;
  /** Messages the previous run was still verifying when it continued as new: verified again. */
  examiningMessageIds?: string[];
}

export type PaymentLifecycleWorkflow = (input: PaymentLifecycleInput) => Promise<PaymentState>;

export const ipnMessageSignal = defineSignal<[MessageRef]>('ipnMessage');
export const ipnEventSignal = defineSignal<[LifecycleEvent]>('ipnEvent');
export const assignCustomerSignal = defineSignal<[AssignCustomerAction]>('assignCustomer');
export const approveSignal = defineSignal<[OperatorAction]>('approve');
export const rejectSignal = defineSignal<[OperatorAction]>('reject');
export const acknowledgeSignal = defineSignal<[AcknowledgeAction]>('acknowledge');
export const paymentStateQuery = defineQuery<PaymentState>('state');

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
