import { formatMinor } from '../domain/money';
import type { PayoutItem } from '../domain/masspay';
import { nvpCredentialNames, nvpCredentialsFromEnv, type NvpCredentials } from '../paypal/nvp-client';

/**
 * PayPal's legacy MassPay NVP call for one chunk of a batch: `METHOD=MassPay`, one currency, payees
 * by email, per item `L_EMAILn`, `L_AMTn`, `L_UNIQUEIDn`, `L_NOTEn` (n from 0), at most 250 items.
 * ACK=Success only means accepted: the items' results arrive by IPN, like an uploaded batch's.
 */
export function masspayCall(
  items: Array<Pick<PayoutItem, 'receiverEmail' | 'amountMinor' | 'uniqueId' | 'note'>>,
  currency: string,
  emailSubject: string,
): { method: 'MassPay'; params: Record<string, string> } {
  const params: Record<string, string> = {
    RECEIVERTYPE: 'EmailAddress',
    CURRENCYCODE: currency,
    EMAILSUBJECT: emailSubject,
  };
  items.forEach((item, n) => {
    params[`L_EMAIL${n}`] = item.receiverEmail;
    params[`L_AMT${n}`] = formatMinor(item.amountMinor, currency);
    params[`L_UNIQUEID${n}`] = item.uniqueId;
    if (item.note) params[`L_NOTE${n}`] = item.note;
  });
  return { method: 'MassPay', params };
}

/**
 * Why a batch cannot go out through the integration's NVP credentials now, or the credentials. The
 * admin API answers 422 with the reason; the send activity holds the batch with it.
 */
export function sendCredentials(
  integration: { id: string; mode: 'live' | 'sandbox'; nvpCredentialsEnv?: string | null } | null,
  batch: { id: string; mode: 'live' | 'sandbox' },
  env: NodeJS.ProcessEnv,
): { ok: true; credentials: NvpCredentials } | { ok: false; reason: string } {
  if (!integration) return { ok: false, reason: `the batch's integration is gone` };
  if (integration.mode !== batch.mode) {
    return {
      ok: false,
      reason:
        `${batch.id} reserved ${batch.mode} money but integration ${integration.id} is now ${integration.mode}: ` +
        `its credentials would pay with ${integration.mode} money`,
    };
  }
  const prefix = integration.nvpCredentialsEnv;
  if (!prefix)
    return { ok: false, reason: `integration ${integration.id} names no NVP credentials: set its nvpCredentialsEnv` };
  const credentials = nvpCredentialsFromEnv(prefix, env);
  if (!credentials) {
    return {
      ok: false,
      reason: `no NVP credentials in the environment for ${integration.id} (${nvpCredentialNames(prefix).join(', ')})`,
    };
  }
  return { ok: true, credentials };
}
