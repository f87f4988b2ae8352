import type { Types } from 'mongoose';
import type { Models } from '../shared/db/models';
import { duplicateKeyIndexes } from '../shared/db/duplicate-keys';
import { Gathered } from '../shared/db/gathered';

/** A waiting event as the batch workflow reads it (payout_webhook_events). */
export interface PayoutEventDoc {
  _id: string;
  batchId: string;
  eventType: string;
  messageId: string;
  report: unknown;
  batchStatus: string | null;
}

/** A webhook judged before it was stored: its final state, what to record on it, and its event if any. */
export interface Judged {
  state: 'applied' | 'ignored' | 'refused';
  extra: Record<string, unknown>;
  batchId?: string;
  event?: PayoutEventDoc;
  /** A capture event's top-up, told once the webhook is stored (a credited one is not). */
  topupId?: string;
}

/** A stored message as the door writes it (or as the relay reads it back). */
export interface Stored {
  _id: Types.ObjectId;
  integrationId: string;
  raw: Buffer | { buffer: ArrayBufferLike };
  headers: Record<string, string>;
  state: string;
}

/** The same event seen before (PayPal repeats): stored, ignored, never applied twice. */
export function duplicateOf(j: Judged): Judged {
  const eventId = String(j.extra.eventId ?? '');
  return { state: 'ignored', extra: { ...j.extra, outcome: { code: 'duplicate', eventId } } };
}

type Entry = { message: Stored; judged: Judged };

/** Writes in one group at most this many POSTs. */
const GROUP_MAX = 500;
/**
 * Groups written at once. With one, every POST waited for the group before it and the door's rate
 * was the sender's concurrency over two inserts' latency (about 250 webhooks/s at PayPal's 16 at a
 * time); with two, a group's inserts overlap the previous group's (groups are independent: the
 * same event in two of them is stored once, the other copy a duplicate, as within one group).
 */
const GROUPS_AT_ONCE = 2;

/**
 * Group commit for the webhook door (Gathered): the POSTs that arrive while writes are under way go
 * together in the next one, as two inserts (their events, then their messages) instead of three
 * writes each. A 15,000-item batch's webhooks then cost a few hundred inserts, not 45,000 round trips.
 *
 * Events first: an event whose message could not be stored was not answered 200, so PayPal sends it
 * again and that copy is stored (as a duplicate of the event, which is applied once). The other way
 * round, a crash between the two would leave a message saying `applied` for an event never stored.
 * A write that fails rejects every POST of its group: each is answered 503 and sent again.
 */
export class GroupWriter {
  private readonly groups: Gathered<Entry, Judged>;

  constructor(private readonly models: Models) {
    this.groups = new Gathered((group) => this.commit(group), { max: GROUP_MAX, atOnce: GROUPS_AT_ONCE });
  }

  write(entry: Entry): Promise<Judged> {
    return this.groups.add(entry);
  }

  private async commit(group: Entry[]): Promise<Judged[]> {
    const judged = group.map((e) => e.judged);
    const withEvents = judged.flatMap((j, i) => (j.event ? [i] : []));
    if (withEvents.length > 0) {
      try {
        // On the driver, like the messages below: the door built these documents itself, and
        // mongoose's insertMany would only cast them again.
        await this.models.PayoutEvent.collection.insertMany(
          withEvents.map((i) => judged[i]!.event! as never),
          { ordered: false, ignoreUndefined: true },
        );
      } catch (err) {
        const refused = duplicateKeyIndexes(err);
        if (!refused) throw err;
        for (const k of refused) judged[withEvents[k]!] = duplicateOf(judged[withEvents[k]!]!);
      }
    }
    const receivedAt = new Date();
    await this.models.WebhookMessage.collection.insertMany(
      group.map((e, i) => ({ ...e.message, receivedAt, state: judged[i]!.state, ...judged[i]!.extra })),
      { ordered: false },
    );
    return judged;
  }
}
