import { idPartOrHash } from './limits';

/**
 * Workflow ids are `:`-separated because `:` cannot occur in an integration id (IntegrationIdSchema),
 * so the integration ends at the first `:` after the prefix and no two (integration, txn) pairs share
 * an id. Readable on purpose: ops paste a txn id into the Web UI's search and see every delivery of it.
 * The txn id must pass isIdPart (loadMessage flags any other message malformed before it gets here).
 */
export function paymentWorkflowId(integrationId: string, txnId: string): string {
  return `payment:${integrationId}:${txnId}`;
}

/**
 * One workflow per delivery, named after what it carries, so a duplicate delivery shows up in the
 * Web UI as a second `ipn:…:<txn>:<status>:…` run next to the first (and is flagged `duplicate`).
 * The message id, always last, makes it unique. Parts from the body that are no usable id (a
 * message stored before the checks, or flagged malformed) appear only as a short hash.
 */
export function ipnWorkflowId(m: {
  integrationId: string;
  messageId: string;
  txnId?: string | null;
  paymentStatus?: string | null;
  txnType?: string | null;
}): string {
  const parts = [m.txnId ?? m.txnType ?? 'message', m.paymentStatus].filter((p): p is string => !!p);
  const what = parts.map(idPartOrHash).join(':');
  return `ipn:${m.integrationId}:${what}:${m.messageId}`;
}

/** The fields of a stored message that name the workflow it goes to. */
export interface Dispatchable {
  _id: string;
  integrationId: string;
  txnId: string | null;
  txnType: string | null;
  paymentStatus: string | null;
  paymentTxnId?: string | null;
}

/** The one workflow a stored message is handed to: its payment's, or its own processIpn. */
export function dispatchWorkflowId(msg: Dispatchable): string {
  return msg.paymentTxnId
    ? paymentWorkflowId(msg.integrationId, msg.paymentTxnId)
    : ipnWorkflowId({ ...msg, messageId: msg._id });
}
