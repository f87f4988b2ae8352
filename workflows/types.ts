import type { LifecycleEvent } from '../src/domain/payment-state';

/** An operator's decision, as sent from the Web UI or the admin API. */
export interface OperatorAction {
  operator: string;
  reason: string;
}

export interface AssignCustomerAction extends OperatorAction {
  customerId: string;
}

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
}

/** Events and operator actions a payment's lifecycle handles, strictly one after another. */
export type InboxItem =
  | { type: 'ipn'; event: LifecycleEvent }
  | { type: 'assign'; action: AssignCustomerAction }
  | { type: 'approve'; action: OperatorAction }
  | { type: 'reject'; action: OperatorAction };


/** What a workflow records on a stored message: `flags` replaces its flags, `addFlags` adds to them. */
export interface MessageOutcomeRecord {
  messageId: string;
  outcome: string;
  detail: string;
  flags?: string[];
  addFlags?: string[];
}
