const RESEND_FIELD = 'resend=true';

/**
 * PayPal marks every resent IPN with resend=true; we append it to the original bytes so the rest of
 * the body stays byte-exact (and verifiable) — unless the message already carries it.
 */
export function withResendFlag(raw: Buffer): Buffer {
  // latin1 maps each byte to one char, so splitting cannot be confused by multi-byte charsets.
  const fields = raw.toString('latin1').split('&');
  if (fields.includes(RESEND_FIELD)) return raw;
  return Buffer.concat([raw, Buffer.from(`&${RESEND_FIELD}`, 'latin1')]);
}
