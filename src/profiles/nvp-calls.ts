/**
 * The PayPal NVP calls a recurring profile makes (its details, its status, billing what is
 * outstanding) and PayPal's answers, as the rules see them. Pure (bundled into workflows).
 */

export interface NvpCall {
  method: 'BillOutstandingAmount' | 'ManageRecurringPaymentsProfileStatus' | 'GetRecurringPaymentsProfileDetails';
  params: Record<string, string>;
}
/**
 * PayPal's answer (ACK and its first error), or why there was none: `Unreachable` when the call
 * certainly did not reach PayPal (no credentials, connection refused) or gave up retrying a call
 * that is safe to repeat; `Unknown` when a call that moves money may have reached PayPal and its
 * answer was lost (an error status, a reset, a timeout): PayPal may have acted on it.
 */
export type NvpOutcome =
  | { ack: 'Success'; fields: Record<string, string> }
  | { ack: 'Failure'; code: string; shortMessage: string; longMessage: string }
  | { ack: 'Unreachable'; message: string }
  | { ack: 'Unknown'; message: string };

/** The failure type of an NVP call that certainly never reached PayPal: safe to make again. */
export const NVP_NOT_SENT = 'NvpNotSent';

/**
 * The fields of PayPal's answers the rules read. GetRecurringPaymentsProfileDetails also answers
 * with the subscriber's name, shipping address and card details: those never leave the activity
 * (nor reach a workflow history, an audit entry or the admin API).
 */
export const NVP_ANSWER_FIELDS = [
  'ACK',
  'CORRELATIONID',
  'TIMESTAMP',
  'PROFILEID',
  'STATUS',
  'CURRENCYCODE',
  'AMT',
  'OUTSTANDINGBALANCE',
  'NEXTBILLINGDATE',
  'FAILEDPAYMENTCOUNT',
] as const;

/** An answer reduced to the fields the rules read. */
export function keepUsedFields(answer: NvpOutcome): NvpOutcome {
  if (answer.ack !== 'Success') return answer;
  const fields: Record<string, string> = {};
  for (const k of NVP_ANSWER_FIELDS) if (Object.hasOwn(answer.fields, k)) fields[k] = answer.fields[k]!;
  return { ack: 'Success', fields };
}

/** What an audit entry keeps of a call and its answer: the ids and PayPal's verdict, no personal data. */
export function auditedCall(call: NvpCall, answer: NvpOutcome): Record<string, unknown> {
  const params: Record<string, string> = {};
  for (const k of ['PROFILEID', 'ACTION', 'AMT']) if (call.params[k] !== undefined) params[k] = call.params[k]!;
  const paypal =
    answer.ack === 'Success'
      ? { ack: answer.ack, ...(answer.fields.CORRELATIONID ? { correlationId: answer.fields.CORRELATIONID } : {}) }
      : answer;
  return { call: { method: call.method, params }, paypal };
}
