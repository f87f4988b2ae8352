import type { NvpCall, NvpOutcome } from '../../profiles/nvp-calls';
import type { MoneyMode } from '../ledger';

/** PayPal's API signature credentials for one integration. Never logged, never put in a workflow payload. */
export interface NvpCredentials {
  username: string;
  password: string;
  signature: string;
}

/** NVP methods beside the recurring-profile ones: Mass Pay's and Express Checkout's (top-ups). */
export type NvpOtherMethod =
  | 'MassPay'
  | 'TransactionSearch'
  | 'SetExpressCheckout'
  | 'GetExpressCheckoutDetails'
  | 'DoExpressCheckoutPayment'
  | 'GetTransactionDetails';

const LIVE_NVP_URL = 'https://api-3t.paypal.com/nvp';
const NVP_VERSION = '204.0';

/**
 * Credentials are referenced, not stored: the integration names a prefix (`nvpCredentialsEnv`), and
 * the secrets are `<prefix>_USERNAME`, `<prefix>_PASSWORD` and `<prefix>_SIGNATURE` in the environment.
 */
export function nvpCredentialNames(prefix: string): [string, string, string] {
  return [`${prefix}_USERNAME`, `${prefix}_PASSWORD`, `${prefix}_SIGNATURE`];
}

export function nvpCredentialsFromEnv(prefix: string, env: NodeJS.ProcessEnv): NvpCredentials | null {
  const [u, p, s] = nvpCredentialNames(prefix).map((name) => env[name]);
  return u && p && s ? { username: u, password: p, signature: s } : null;
}

export function nvpUrl(mode: MoneyMode, sandboxUrl: string): string {
  return mode === 'live' ? LIVE_NVP_URL : sandboxUrl;
}

/**
 * One NVP call. PayPal's own refusals (ACK=Failure) are answers; a transport failure or an answer
 * that is no NVP body is thrown, for the caller's retry policy. Errors never carry the credentials.
 */
export async function callNvp(
  url: string,
  creds: NvpCredentials,
  call: Pick<NvpCall, 'params'> & { method: NvpCall['method'] | NvpOtherMethod },
): Promise<NvpOutcome> {
  const body = new URLSearchParams({
    USER: creds.username,
    PWD: creds.password,
    SIGNATURE: creds.signature,
    VERSION: NVP_VERSION,
    METHOD: call.method,
    ...call.params,
  });
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: body.toString(),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  const fields = Object.fromEntries(new URLSearchParams(text));
  const ack = fields.ACK;
  if (res.status !== 200 || !ack) {
    throw new Error(
      `${call.method} to ${url} answered ${res.status} without an ACK: ${JSON.stringify(text.slice(0, 120))}`,
    );
  }
  if (ack === 'Success' || ack === 'SuccessWithWarning') return { ack: 'Success', fields };
  return {
    ack: 'Failure',
    code: fields.L_ERRORCODE0 ?? 'unknown',
    shortMessage: fields.L_SHORTMESSAGE0 ?? '',
    longMessage: fields.L_LONGMESSAGE0 ?? '',
  };
}
