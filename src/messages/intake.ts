import { Types } from 'mongoose';
import type { Models } from '../shared/db/models';
import { classify, paymentTxnOf, type Route } from './classify';
import { readIpnHead } from './read';
import { gatheredInserts } from '../shared/db/gathered';
import { perHandle } from '../shared/db/per-handle';
import { dispatchWorkflowId } from '../shared/ids';
import type { MessageState } from './state';

export interface StoredMessage {
  _id: string;
  integrationId: string;
  txnId: string | null;
  txnType: string | null;
  paymentStatus: string | null;
  state: Extract<MessageState, 'received' | 'ignored'>;
  /** Where it belongs (classify), decided here once and stored with it; null when it does not decode. */
  route: Route | null;
  /** Set when the message goes to its payment's workflow (see paymentTxnOf). */
  paymentTxnId: string | null;
  /** The workflow it is dispatched to, named here once (so dispatch writes nothing before starting it). */
  workflowId: string | null;
}

/**
 * Stores one delivery exactly as received, in a single insert (the durable point: only after it
 * may we answer 200), sent with those of deliveries arriving at the same moment (Gathered). A few
 * decoded fields ride along for search; a body we cannot decode, larger than any PayPal message
 * (fields, Mass Pay items), or whose ids are no PayPal ids, is kept all the same without them,
 * flagged malformed, and its workflow records it so without applying anything.
 *
 * The outbox entry goes in first, under the message's _id chosen here, and the message second:
 * with no multi-document transactions, that order alone guarantees that every stored message
 * waiting for a workflow has an entry, whatever fails or crashes between the two inserts. If the
 * first insert fails nothing is stored (PayPal gets a 503 and resends); if the second fails, the
 * entry points at nothing and the relay drops it once the message can no longer appear.
 */
export async function storeIpn(
  models: Models,
  input: {
    integrationId: string;
    raw: Buffer;
    contentType?: string;
    remoteAddress?: string;
    ipnEnabled: boolean;
    sandboxNotAllowed?: boolean;
  },
): Promise<StoredMessage> {
  let fields: Partial<{
    charset: string;
    txnId: string | null;
    txnType: string | null;
    paymentStatus: string | null;
    parentTxnId: string | null;
    testIpn: boolean;
    resend: boolean;
  }> = {};
  let decodeError: string | undefined;
  let route: Route | null = null;
  try {
    // Bounded and yielding (see readIpnHead): a large body never holds the event loop for long.
    // The only decoding and classification of these bytes in this process.
    const { charset, summary: s } = await readIpnHead(input.raw);
    route = classify(s);
    const { txnId, txnType, paymentStatus, parentTxnId, testIpn, resend } = s;
    fields = { charset, txnId, txnType, paymentStatus, parentTxnId, testIpn, resend };
  } catch (err) {
    decodeError = (err as Error).message;
  }
  // Kept all the same (never lost), but no workflow runs for it.
  const ignoredFor = [
    ...(input.ipnEnabled ? [] : ['integration_disabled']),
    ...(input.sandboxNotAllowed ? ['sandbox_not_allowed'] : []),
  ];
  const state = ignoredFor.length ? 'ignored' : 'received';
  const _id = new Types.ObjectId();
  const routing = {
    _id: String(_id),
    integrationId: input.integrationId,
    txnId: fields.txnId ?? null,
    txnType: fields.txnType ?? null,
    paymentStatus: fields.paymentStatus ?? null,
    paymentTxnId: paymentTxnOf(route),
  };
  const workflowId = state === 'received' ? dispatchWorkflowId(routing) : null;
  // Straight to the driver: PayPal's door skips mongoose's document machinery (casting, validation,
  // hooks). test/intake/fuzz-intake.test.ts checks every document built here against the mongoose schema.
  const doc = {
    _id,
    integrationId: input.integrationId,
    receivedAt: new Date(),
    raw: input.raw,
    ...definedOnly({ contentType: input.contentType, remoteAddress: input.remoteAddress, decodeError, ...fields }),
    ...(route ? { route } : {}),
    ...(workflowId ? { workflowId } : {}),
    state,
    flags: [...(decodeError ? ['malformed'] : []), ...ignoredFor],
  };
  const door = doorOf(models);
  if (state === 'received') await door.outbox.add({ _id });
  await door.messages.add(doc);
  return { ...routing, route, state, workflowId };
}

/**
 * Per database handle: the door's two inserts, each gathered (a burst of deliveries goes in a few
 * commands; see Gathered). Each delivery still has its entry written before its message.
 */
const doorOf = perHandle((models) => ({
  outbox: gatheredInserts('store outbox entry', models.IpnOutbox.collection, 'written'),
  messages: gatheredInserts('store IPN', models.IpnMessage.collection, 'written'),
}));

/** The driver would store an undefined field as null; mongoose leaves it out, and so do we. */
function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
