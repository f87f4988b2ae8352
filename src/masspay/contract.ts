/**
 * How the API, the activities and the workflow meet one Mass Pay batch: its type name, input,
 * signals, update and query. The names are recorded in running workflows and histories: never rename them.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Config } from '../shared/config';
import type { OperatorAnswer, OperatorRequest } from '../shared/operator-actions';
import type { BatchDeadlines, BatchResult } from './rules';
import {
  CancelUnclaimedActionSchema,
  ClearContradictionActionSchema,
  PayoutActionSchema,
  ResolveItemActionSchema,
  SendActionSchema,
  SubmittedActionSchema,
  type CancelUnclaimedAction,
  type ClearContradictionAction,
  type PayoutAction,
  type PayoutBatchState,
  type ResolveItemAction,
  type SendAction,
  type SubmittedAction,
} from './state';

export const MASSPAY_BATCH = 'masspayBatch';

export interface MasspayBatchInput {
  batchId: string;
  /** A settled batch's workflow closes after this long idle; a late IPN or action restarts it. */
  idleCloseSeconds: number;
  deadlines: BatchDeadlines;
  /** Payouts REST: how often PayPal is asked for the batch's items until all are final (absent: 30 min). */
  restPollSeconds?: number;
}

export type MasspayBatchWorkflow = (input: MasspayBatchInput) => Promise<PayoutBatchState>;

export const masspayIpnSignal = defineSignal<[{ messageId: string }]>('masspayIpn');
export const approvePayoutSignal = defineSignal<[PayoutAction]>('approvePayout');
export const submittedPayoutSignal = defineSignal<[SubmittedAction]>('payoutSubmitted');
export const cancelPayoutSignal = defineSignal<[PayoutAction]>('cancelPayout');
export const sendPayoutSignal = defineSignal<[SendAction]>('sendPayout');
export const resolvePayoutItemSignal = defineSignal<[ResolveItemAction]>('resolvePayoutItem');
export const stopWaitingPayoutSignal = defineSignal<[PayoutAction]>('stopWaitingPayout');
export const reconcilePayoutSignal = defineSignal<[PayoutAction]>('reconcilePayout');
export const clearPayoutContradictionSignal = defineSignal<[ClearContradictionAction]>('clearPayoutContradiction');
/**
 * Verified Payouts webhook events wait for this batch (stored by the webhook door): apply them. No
 * payload matters: the events are read from the store, in slices, never from a signal.
 */
export const payoutsWebhookSignal = defineSignal<[{ events?: number }]>('payoutsWebhook');
export const cancelUnclaimedPayoutSignal = defineSignal<[CancelUnclaimedAction]>('cancelUnclaimedPayoutItem');
export const payoutStateQuery = defineQuery<PayoutBatchState>('state');

/** A batch workflow's input, from the configuration (the API, the activities and the webhook door start it). */
export function batchWorkflowInput(
  batchId: string,
  config: Pick<
    Config,
    | 'MASSPAY_PROCESSED_DEADLINE_SECONDS'
    | 'MASSPAY_COMPLETED_DEADLINE_SECONDS'
    | 'MASSPAY_RELEASE_WAIT_SECONDS'
    | 'PAYMENT_IDLE_CLOSE_SECONDS'
    | 'PAYOUTS_POLL_SECONDS'
  >,
) {
  return {
    batchId,
    idleCloseSeconds: config.PAYMENT_IDLE_CLOSE_SECONDS,
    restPollSeconds: config.PAYOUTS_POLL_SECONDS,
    deadlines: {
      processedWithinSeconds: config.MASSPAY_PROCESSED_DEADLINE_SECONDS,
      completedWithinSeconds: config.MASSPAY_COMPLETED_DEADLINE_SECONDS,
      releaseAfterSeconds: config.MASSPAY_RELEASE_WAIT_SECONDS,
    },
  };
}

/**
 * The operator actions, by the admin API's path segment: each one's input type and the signal the
 * Web UI sends it by. Both doors take the same payload and meet the same rules.
 */
export const MASSPAY_OPERATOR_ACTIONS = {
  approve: { type: 'approve', schema: PayoutActionSchema, signal: approvePayoutSignal },
  submitted: { type: 'submitted', schema: SubmittedActionSchema, signal: submittedPayoutSignal },
  send: { type: 'send', schema: SendActionSchema, signal: sendPayoutSignal },
  cancel: { type: 'cancel', schema: PayoutActionSchema, signal: cancelPayoutSignal },
  resolve: { type: 'resolve', schema: ResolveItemActionSchema, signal: resolvePayoutItemSignal },
  'stop-waiting': { type: 'stopWaiting', schema: PayoutActionSchema, signal: stopWaitingPayoutSignal },
  reconcile: { type: 'reconcile', schema: PayoutActionSchema, signal: reconcilePayoutSignal },
  'clear-contradiction': {
    type: 'clearContradiction',
    schema: ClearContradictionActionSchema,
    signal: clearPayoutContradictionSignal,
  },
  'cancel-unclaimed': {
    type: 'cancelUnclaimed',
    schema: CancelUnclaimedActionSchema,
    signal: cancelUnclaimedPayoutSignal,
  },
} as const;
export type MasspayActionPath = keyof typeof MASSPAY_OPERATOR_ACTIONS;

/**
 * The admin API's way in: the action, answered once it is applied (reservations released, items
 * resolved, PayPal searched) with the batch's state, or refused with the rule that refused it.
 */
export const masspayActionUpdate = defineUpdate<
  OperatorAnswer<PayoutBatchState, BatchResult>,
  [OperatorRequest<MasspayActionPath>]
>('operatorAction');
