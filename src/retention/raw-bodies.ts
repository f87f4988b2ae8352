import crypto from 'node:crypto';
import { Types } from 'mongoose';
import type { Models } from '../shared/db/models';
import type { MessageState } from '../messages/state';

/**
 * Outcomes after which a message's raw bytes have done their work: verified (or refused for good)
 * and applied, with nothing left for a person to read them for. An allow-list, so a state added
 * later (a new kind of hold) keeps its bytes until someone lists it here. Payments waiting for
 * more (`applied:pending`, `applied:awaiting_payment`), held ones (`applied:held`), parked and
 * in-flight messages, and recurring-profile and Mass Pay messages (whose recorded outcome does not
 * say whether their entity holds on them) are kept.
 */
export const SETTLED_STATES = [
  'applied:credited',
  'applied:rejected',
  'applied:not_paid',
  'duplicate',
  'ignored',
  'invalid',
  'malformed',
  'unknown_integration',
  'rejected_by_operator',
  'sandbox_on_live',
  'unproven',
  'refused_foreign',
] as const satisfies readonly MessageState[];
const settled = new Set<string>(SETTLED_STATES);

export interface SweepResult {
  scanned: number;
  dropped: number;
  /** Settled messages from before `outcomeAt` existed, stamped now: their retention starts today. */
  stamped: number;
  /** Where the next sweep resumes, or null when every message received before the cutoff was seen. */
  next: string | null;
}

type Seen = {
  _id: Types.ObjectId;
  integrationId: string;
  state: string;
  flags?: string[];
  txnId?: string | null;
  parentTxnId?: string | null;
  receivedAt: Date;
  outcomeAt?: Date | null;
  rawDroppedAt?: Date | null;
};

/**
 * One bounded step of the raw-body retention: walks messages received before the cutoff in `_id`
 * order from `after`, at most `maxDocs` of them (without their bytes), and empties the raw bytes of
 * those settled longer ago than the retention. What stays: every parsed field (txn id, state, flags,
 * the verified event that proves a posting), the duplicate claims (a collection of their own), and
 * the bytes' length and SHA-256, so a copy kept elsewhere can still be matched to the message.
 * A message whose payment waits for a person keeps its bytes, whatever its own outcome says.
 */
export async function dropSettledRawBodies(
  models: Models,
  opts: { after: string | null; now: Date; retentionDays: number; maxDocs?: number },
): Promise<SweepResult> {
  const { IpnMessage, Payment } = models;
  const maxDocs = opts.maxDocs ?? 5_000;
  const cutoff = new Date(opts.now.getTime() - opts.retentionDays * 86_400_000);
  // Settled before the cutoff means received before it: the _id range bounds the walk.
  const range = {
    $lt: Types.ObjectId.createFromTime(Math.floor(cutoff.getTime() / 1000)),
    ...(opts.after ? { $gt: new Types.ObjectId(opts.after) } : {}),
  };
  const seen = await IpnMessage.find({ _id: range }, { raw: 0, routedEvent: 0, receivedEvents: 0 })
    .sort({ _id: 1 })
    .limit(maxDocs)
    .lean<Seen[]>();

  const due: Seen[] = [];
  let stamped = 0;
  for (const m of seen) {
    if (m.rawDroppedAt || !settled.has(m.state) || m.flags?.includes('parked')) continue;
    // Ignored at intake: settled the moment it arrived. Others settled when their outcome was recorded.
    const settledAt = m.outcomeAt ?? (m.state === 'ignored' ? m.receivedAt : null);
    if (settledAt === null) {
      await IpnMessage.updateOne({ _id: m._id, state: m.state }, { $set: { outcomeAt: opts.now } });
      stamped++;
    } else if (settledAt < cutoff) due.push(m);
  }

  // By _id: the payment each due message is about (a refund's is its parent's).
  const aboutOf = (m: Seen) => [m.txnId, m.parentTxnId].filter(Boolean).map((t) => `${m.integrationId}:${t}`);
  const paymentIds = [...new Set(due.flatMap(aboutOf))];
  const waiting = new Set(
    paymentIds.length === 0
      ? []
      : (await Payment.find({ _id: { $in: paymentIds }, needsOperator: true }, { _id: 1 }).lean()).map((p) => p._id),
  );
  let dropped = 0;
  for (const m of due) {
    if (aboutOf(m).some((id) => waiting.has(id))) continue;
    const full = await IpnMessage.findById(m._id, { raw: 1 }).lean();
    if (!full) continue;
    const raw = Buffer.from(full.raw.buffer);
    // The state is checked again: a message that changed since it was read keeps its bytes this time.
    const res = await IpnMessage.updateOne(
      { _id: m._id, state: m.state },
      {
        $set: {
          raw: Buffer.alloc(0),
          rawDroppedAt: opts.now,
          rawBytes: raw.length,
          rawSha256: crypto.createHash('sha256').update(raw).digest('hex'),
        },
      },
    );
    dropped += res.modifiedCount;
  }
  const last = seen.at(-1);
  return { scanned: seen.length, dropped, stamped, next: seen.length < maxDocs || !last ? null : String(last._id) };
}
