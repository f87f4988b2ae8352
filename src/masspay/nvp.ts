import { formatMinor, parseAmount } from '../shared/money';
import type { PayoutItem } from './state';
import type { MoneyMode } from '../shared/ledger';
import { nvpCredentialNames, nvpCredentialsFromEnv, type NvpCredentials } from '../shared/paypal/nvp-client';

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
  integration: { id: string; mode: MoneyMode; nvpCredentialsEnv?: string | null } | null,
  batch: { id: string; mode: MoneyMode },
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

/** PayPal's answer warning that a TransactionSearch returned only its first 100 results. */
export const NVP_SEARCH_TRUNCATED = '11002';

/**
 * PayPal's TransactionSearch for Mass Pay payments to one payee since `since`: how an unanswered
 * MassPay call is reconciled (read-only, so it may be repeated freely). Dates in UTC without
 * fractions, as PayPal takes them. PayPal's reference describes RECEIVER as the receiver's address
 * and EMAIL as the buyer's, which for money we send reads either way: both are asked (`by`), and a
 * payment either shows counts.
 */
export function transactionSearchCall(q: {
  by: 'RECEIVER' | 'EMAIL';
  payee: string;
  currency: string;
  since: string;
}): { method: 'TransactionSearch'; params: Record<string, string> } {
  return {
    method: 'TransactionSearch',
    params: {
      STARTDATE: new Date(q.since).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      [q.by]: q.payee,
      TRANSACTIONCLASS: 'MassPay',
      CURRENCYCODE: q.currency,
    },
  };
}

export interface SearchRow {
  txnId: string | null;
  currency: string | null;
  amount: string | null;
}

/** The result rows of a TransactionSearch answer, and whether PayPal cut them (absence then proves nothing). */
export function searchRows(fields: Record<string, string>): { rows: SearchRow[]; truncated: boolean } {
  const rows: SearchRow[] = [];
  for (let n = 0; fields[`L_TRANSACTIONID${n}`] !== undefined || fields[`L_AMT${n}`] !== undefined; n++) {
    rows.push({
      txnId: fields[`L_TRANSACTIONID${n}`] ?? null,
      currency: fields[`L_CURRENCYCODE${n}`] ?? null,
      amount: fields[`L_AMT${n}`] ?? null,
    });
  }
  return { rows, truncated: fields.L_ERRORCODE0 === NVP_SEARCH_TRUNCATED };
}

/**
 * How many of `amounts` (one per item to this payee, minor units) the rows of searches for this
 * payee show: each row (counted once by transaction id, `L_AMTn` negative for money sent) matches at
 * most one item of the same amount and currency. Lenient on purpose: a row wrongly taken for an item
 * holds that item for a person; an item wrongly taken as absent could be paid twice.
 */
export function matchSearchRows(rows: SearchRow[], q: { currency: string; amounts: number[] }): number {
  const left = [...q.amounts];
  const seen = new Set<string>();
  let found = 0;
  for (const row of rows) {
    if (row.txnId !== null) {
      if (seen.has(row.txnId)) continue;
      seen.add(row.txnId);
    }
    if (row.currency !== q.currency || row.amount === null) continue;
    let amount: number;
    try {
      amount = Math.abs(parseAmount(row.amount, q.currency));
    } catch {
      continue;
    }
    const at = left.indexOf(amount);
    if (at < 0) continue;
    left.splice(at, 1);
    found++;
  }
  return found;
}
