import type { Integration } from '../integrations/schema';
import type { IpnSummary } from '../messages/summary';
import type { CheckFlag } from './event';
import { isSupportedCurrency, parseAmount } from '../shared/money';

export interface CheckResult {
  flags: CheckFlag[];
  grossMinor: number | null;
  feeMinor: number | null;
}

/**
 * PayPal's own list of checks after VERIFIED. A failed check does not drop the message:
 * the payment waits for an operator with the reasons attached.
 */
export function checkPayment(
  s: IpnSummary,
  integration: Integration,
  kind: 'payment' | 'refund' | 'reversal' | 'canceled_reversal' | 'dispute',
): CheckResult {
  const flags: CheckFlag[] = [];
  const receiverOk =
    (s.receiverId !== null && integration.receiverIds.includes(s.receiverId)) ||
    [s.receiverEmail, s.business].some((e) => e !== null && integration.receiverEmails.includes(e)) ||
    // The IPN simulator puts an email into receiver_id.
    (s.receiverId !== null && integration.receiverEmails.includes(s.receiverId.toLowerCase()));
  if (!receiverOk) flags.push('receiver_mismatch');
  if (!s.testIpn && integration.mode === 'sandbox') flags.push('live_message_on_sandbox');

  if (kind === 'dispute') return { flags, grossMinor: null, feeMinor: null };

  // Refunds may have no txn_type; only incoming payments are filtered by type.
  if (kind === 'payment' && (!s.txnType || !integration.allowedTxnTypes.includes(s.txnType)))
    flags.push('txn_type_not_allowed');

  let grossMinor: number | null = null;
  let feeMinor: number | null = null;
  if (!s.currency || !isSupportedCurrency(s.currency)) {
    flags.push('malformed_amount');
  } else {
    if (!integration.allowedCurrencies.includes(s.currency)) flags.push('currency_not_allowed');
    try {
      const signedGross = s.gross === null ? null : parseAmount(s.gross, s.currency);
      grossMinor = signedGross === null ? null : Math.abs(signedGross);
      feeMinor = s.fee === null ? null : Math.abs(parseAmount(s.fee, s.currency));
      if (grossMinor === null || grossMinor === 0) flags.push('malformed_amount');
      // Direction comes from payment_status, but money routed as received must be positive: a
      // negative gross there (an `adjustment` debit, say) is never credited as its absolute value.
      // Adjustments keep Math.abs: PayPal's (and its simulator's) signs on them are not reliable.
      if (kind === 'payment' && signedGross !== null && signedGross < 0) flags.push('negative_amount');
    } catch {
      flags.push('malformed_amount');
      grossMinor = null;
      feeMinor = null;
    }
  }
  return { flags, grossMinor, feeMinor };
}
