import type { Models } from '../db/models';
import { summarizeIpn } from '../domain/ipn-summary';
import { decodeIpn } from './decode';

export interface StoredMessage {
  _id: string;
  integrationId: string;
  txnId: string | null;
  txnType: string | null;
  paymentStatus: string | null;
  state: 'received' | 'ignored';
}

/**
 * Stores one delivery exactly as received, in a single insert (the durable point: only after it
 * may we answer 200). A few decoded fields ride along for search; a body we cannot decode is
 * kept all the same, and its workflow flags it.
 */
export async function storeIpn(models: Models, input: { integrationId: string; raw: Buffer; contentType?: string; remoteAddress?: string; ipnEnabled: boolean; sandboxNotAllowed?: boolean }): Promise<StoredMessage> {
  let fields: Partial<{ charset: string; txnId: string | null; txnType: string | null; paymentStatus: string | null; parentTxnId: string | null; testIpn: boolean; resend: boolean }> = {};
  let decodeError: string | undefined;
  try {
    const decoded = decodeIpn(input.raw);
    const s = summarizeIpn(decoded.fields);
    fields = { charset: decoded.charset, txnId: s.txnId, txnType: s.txnType, paymentStatus: s.paymentStatus, parentTxnId: s.parentTxnId, testIpn: s.testIpn, resend: s.resend };
  } catch (err) {
    decodeError = (err as Error).message;
  }
  // Kept all the same (never lost), but no workflow runs for it.
  const ignoredFor = [
    ...(input.ipnEnabled ? [] : ['integration_disabled']),
    ...(input.sandboxNotAllowed ? ['sandbox_not_allowed'] : []),
  ];
  const state = ignoredFor.length ? 'ignored' : 'received';
  const doc = await models.IpnMessage.create({
    integrationId: input.integrationId,
    receivedAt: new Date(),
    raw: input.raw,
    contentType: input.contentType,
    remoteAddress: input.remoteAddress,
    decodeError,
    ...fields,
    state,
    flags: [...(decodeError ? ['malformed'] : []), ...ignoredFor],
  });
  return { _id: String(doc._id), integrationId: input.integrationId, txnId: fields.txnId ?? null, txnType: fields.txnType ?? null, paymentStatus: fields.paymentStatus ?? null, state };
}
