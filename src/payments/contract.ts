/**
 * How the API, the activities and the workflow meet one payment's lifecycle: its type name, input,
 * signals, update and query. The names are recorded in running workflows and histories: never rename them.
 * Starters name the workflow by this type (no import of the workflow module, hence no import cycle).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
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
}

export type PaymentLifecycleWorkflow = (input: PaymentLifecycleInput) => Promise<PaymentState>;

export const ipnMessageSignal = defineSignal<[MessageRef]>('ipnMessage');
export const ipnEventSignal = defineSignal<[LifecycleEvent]>('ipnEvent');
export const assignCustomerSignal = defineSignal<[AssignCustomerAction]>('assignCustomer');
export const approveSignal = defineSignal<[OperatorAction]>('approve');
export const rejectSignal = defineSignal<[OperatorAction]>('reject');
export const acknowledgeSignal = defineSignal<[AcknowledgeAction]>('acknowledge');
export const paymentStateQuery = defineQuery<PaymentState>('state');

/**
 * The admin API's way in: one operator decision (assign, approve, reject, acknowledge), answered
 * once applied (the ledger posting it leads to included) with the payment's state, or refused with
 * the rule that refused it. The Web UI's signals above take the same payloads and meet the same rules.
 */
export const paymentActionUpdate = defineUpdate<
  OperatorAnswer<PaymentState, PaymentResult>,
  [OperatorRequest<PaymentOperatorActionName>]
>('operatorAction');
