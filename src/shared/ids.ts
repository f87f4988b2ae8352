import { idPartOrHash } from './limits';

/**
 * Every workflow id, document id and ledger idempotency key of payments and profiles, declared here
 * and computed nowhere else (Mass Pay's batch and item keys live with Mass Pay). A message's workflow is named once, at
 * intake (dispatchWorkflowId), stored with it, and read from there by the dispatcher and the workflow.
 */

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

/** `profile:<integration>:<profileId>`, unambiguous for the same reason as payment ids. */
export function profileWorkflowId(integrationId: string, profileId: string): string {
  return `profile:${integrationId}:${profileId}`;
}

/** A Mass Pay batch's workflow: batch ids are ours (letters and digits). The `payout:` prefix is recorded. */
export function payoutWorkflowId(batchId: string): string {
  return `payout:${batchId}`;
}

/** A payment's document (`payments` collection): its state for resuming and flat fields for the admin API. */
export function paymentDocId(integrationId: string, txnId: string): string {
  return `${integrationId}:${txnId}`;
}

/** A recurring profile's document (`recurringprofiles`). */
export function profileDocId(integrationId: string, profileId: string): string {
  return `${integrationId}:${profileId}`;
}

/** A cycle payment's owner (`profiletxns`): refunds and reversals of that txn are routed to its profile. */
export function profileTxnDocId(integrationId: string, txnId: string): string {
  return `${integrationId}:${txnId}`;
}

/**
 * The ledger key crediting a PayPal payment. The same for a payment entity and a recurring profile:
 * whichever credits a txn, a copy that reached the other can never credit it twice. Recorded in the
 * ledger: never change its form.
 */
export function creditKey(integrationId: string, txnId: string): string {
  return `credit:${integrationId}:${txnId}`;
}

/** The ledger key of a refund, reversal or cancellation (its own txn and status), shared the same way. */
export function adjustmentKey(kind: string, integrationId: string, txnId: string, paymentStatus: string): string {
  return `${kind}:${integrationId}:${txnId}:${paymentStatus}`;
}

/** The fields of a stored message that name the workflow it goes to. */
export interface Dispatchable {
  _id: string;
  integrationId: string;
  txnId: string | null;
  txnType: string | null;
  paymentStatus: string | null;
  /** Its payment's txn when it goes to that payment's entity (classify.ts paymentTxnOf). */
  paymentTxnId?: string | null;
}

/** The one workflow a stored message is handed to: its payment's, or its own processIpn. */
export function dispatchWorkflowId(msg: Dispatchable): string {
  return msg.paymentTxnId
    ? paymentWorkflowId(msg.integrationId, msg.paymentTxnId)
    : ipnWorkflowId({ ...msg, messageId: msg._id });
}

/** One top-up's workflow (`topup:<id>`): top-up ids are ours (`tu_` + letters and digits). */
export function topupWorkflowId(topupId: string): string {
  return `topup:${topupId}`;
}
