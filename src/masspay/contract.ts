/**
 * How the API, the activities and the workflow meet one Mass Pay batch: its type name, input,
 * signals and query. The names are recorded in running workflows and histories: never rename them.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { BatchDeadlines } from './rules';
import type {
  ClearContradictionAction,
  PayoutAction,
  PayoutBatchState,
  ResolveItemAction,
  SendAction,
  SubmittedAction,
} from './state';

export const MASSPAY_BATCH = 'masspayBatch';

export interface MasspayBatchInput {
  batchId: string;
  /** A settled batch's workflow closes after this long idle; a late IPN or action restarts it. */
  idleCloseSeconds: number;
  deadlines: BatchDeadlines;
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
export const payoutStateQuery = defineQuery<PayoutBatchState>('state');
