/**
 * How the API, the activities and the workflow meet one payment's lifecycle: its type name, input,
 * signals, update and query, and how it is started (paymentStartOptions, signalPayment). The names
 * are recorded in running workflows and histories: never rename them.
 * Starters name the workflow by this type (no import of the workflow module, hence no import cycle).
 */
import type { Client, SignalDefinition } from '@temporalio/client';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Config } from '../shared/config';
import { IntegrationIdKey, TxnIdKey } from '../shared/contract';
import { paymentWorkflowId } from '../shared/ids';
import type { MessageRef } from '../shared/contract';
import type {
  AcknowledgeAction,
  AssignCustomerAction,
  OperatorAction,
  OperatorAnswer,
  OperatorRequest,
  PaymentOperatorActionName,
} from '../shared/operator-actions';
import type { PaymentResult } from './rules';
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
  /**
   * Set by every starter since fewer steps per message (workflows/shared/patches.ts): such an
   * execution takes them without asking `patched()`, which would cost it a marker and a search
   * attribute upsert. One started before (without it) asks, so its history replays as recorded.
   */
  fewerSteps?: true;
  /**
   * Set by every starter since a payment takes fewer workflow activations per message: its state
   * loads with its first message (loadPaymentWithMessage), a posting saves the state it leads to
   * (postAndSavePayment), and no idle timer runs while a message is being examined. An execution
   * started before takes its steps as recorded.
   */
  fewerActivations?: true;
  /**
   * Set by every starter since a payment's first message is taken in the step that loads it
   * (takeFirstMessage, src/payments/first-take.ts): one local activity, not two, for a plain payment.
   * An execution started before loads and posts in separate steps, as recorded.
   */
  takesFirstMessage?: true;
  /**
   * Set by every starter since the payment waits for input on timers it never cancels
   * (workflows/shared/alarm.ts): about 1 ms less of the workflow thread per wait. An execution
   * started before waits with a cancellable timer, as recorded.
   */
  waitsOnAlarm?: true;
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
 * How one payment's lifecycle is started, wherever it is started from (a message, an operator's
 * decision). The workflow id is the caller's when it has one (intake names a message's workflow,
 * src/shared/ids.ts), else the payment's.
 */
export function paymentStartOptions(to: {
  workflowId?: string;
  integrationId: string;
  paymentTxnId: string;
  taskQueue: string;
  config: EntitySettings;
}) {
  const { integrationId, paymentTxnId, config } = to;
  return {
    workflowId: to.workflowId ?? paymentWorkflowId(integrationId, paymentTxnId),
    taskQueue: to.taskQueue,
    args: [
      {
        integrationId,
        paymentTxnId,
        idleCloseSeconds: config.PAYMENT_IDLE_CLOSE_SECONDS,
        orphanGraceSeconds: config.ORPHAN_ADJUSTMENT_GRACE_SECONDS,
        verifyGiveUpSeconds: config.IPN_VERIFY_GIVE_UP_SECONDS,
        fewerSteps: true,
        fewerActivations: true,
        takesFirstMessage: true,
        waitsOnAlarm: true,
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
 * Signals one payment's lifecycle (a stored message to verify, or a Mass Pay item's verified event),
 * starting it when it is not running (never started, or closed after being idle).
 */
export async function signalPayment<Payload>(
  client: Client,
  to: { workflowId: string; integrationId: string; paymentTxnId: string; taskQueue: string; config: EntitySettings },
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

/**
 * The admin API's way in: one operator decision (assign, approve, reject, acknowledge), answered
 * once applied (the ledger posting it leads to included) with the payment's state, or refused with
 * the rule that refused it. The Web UI's signals above take the same payloads and meet the same rules.
 */
export const paymentActionUpdate = defineUpdate<
  OperatorAnswer<PaymentState, PaymentResult>,
  [OperatorRequest<PaymentOperatorActionName>]
>('operatorAction');
