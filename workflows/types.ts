export type { MessageOutcomeRecord } from '../src/domain/payment-decide';
export type { AssignCustomerAction, OperatorAction } from '../src/domain/operator-actions';

export interface ProcessIpnInput {
  messageId: string;
  verifyGiveUpSeconds: number;
  paymentIdleCloseSeconds: number;
}

export type MessageOutcome =
  | 'malformed'
  | 'unknown_integration'
  | 'invalid'
  | 'sandbox_on_live'
  | 'parked'
  | 'rejected_by_operator'
  | 'masspay_notification'
  | 'recorded_no_money'
  | 'unknown_alerted'
  | 'routed';

export interface PaymentLifecycleInput {
  integrationId: string;
  paymentTxnId: string;
  idleCloseSeconds: number;
  /** Refunds/reversals waiting for a payment we never saw are shown to a person after this. */
  orphanGraceSeconds?: number;
}

