import { defineSearchAttributeKey } from '@temporalio/common';
import { z } from 'zod';

/**
 * What the service promises to the world outside one module — the Web UI, the admin API, stored
 * documents — declared once. Workflows, activities and routes import from here.
 */

export { paymentWorkflowId, ipnWorkflowId, payoutWorkflowId } from './ids';
export {
  AssignCustomerActionSchema,
  OperatorActionSchema,
  PAYMENT_OPERATOR_ACTIONS,
  type AssignCustomerAction,
  type OperatorAction,
  type PaymentOperatorActionName,
} from './operator-actions';

/** What one IPN is about, for the payment it belongs to. */
export const EventKindSchema = z.enum(['payment', 'refund', 'reversal', 'canceled_reversal', 'dispute']);
export type EventKind = z.infer<typeof EventKindSchema>;

/** A stored message handed to its payment's workflow, which verifies and checks it itself. */
export const MessageRefSchema = z.object({ messageId: z.string().regex(/^[0-9a-f]{24}$/, 'a stored message id') });
export type MessageRef = z.infer<typeof MessageRefSchema>;

/**
 * Custom search attributes ops use to find a payment in the Web UI
 * (e.g. `PaypalTxnId = "6G996328CK404320L"` or `IpnFlags = "held"`).
 * The dev server registers them at start; production clusters need
 * `temporal operator search-attribute create` with the same names and types.
 */
export const SEARCH_ATTRIBUTES = {
  IpnIntegrationId: 'Keyword',
  PaypalTxnId: 'Keyword',
  CustomerId: 'Keyword',
  PaymentStatus: 'Keyword',
  IpnFlags: 'KeywordList',
  PayoutBatchId: 'Keyword',
  PayoutState: 'Keyword',
} as const;

export const IntegrationIdKey = defineSearchAttributeKey('IpnIntegrationId', 'KEYWORD');
export const TxnIdKey = defineSearchAttributeKey('PaypalTxnId', 'KEYWORD');
export const CustomerIdKey = defineSearchAttributeKey('CustomerId', 'KEYWORD');
export const PaymentStatusKey = defineSearchAttributeKey('PaymentStatus', 'KEYWORD');
export const FlagsKey = defineSearchAttributeKey('IpnFlags', 'KEYWORD_LIST');
export const PayoutBatchIdKey = defineSearchAttributeKey('PayoutBatchId', 'KEYWORD');
export const PayoutStateKey = defineSearchAttributeKey('PayoutState', 'KEYWORD');
