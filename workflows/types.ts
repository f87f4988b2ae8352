export type { MessageOutcomeRecord } from '../src/domain/payment-decide';
export type { AssignCustomerAction, MessageOutcome, OperatorAction } from '../src/domain/contracts';

export interface ProcessIpnInput {
  messageId: string;
  verifyGiveUpSeconds: number;
  paymentIdleCloseSeconds: number;
}

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
