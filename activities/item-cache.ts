import { randomInt } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Models } from '../src/shared/db/models';
import { perHandle } from '../src/shared/db/per-handle';
import { PayoutItemSchema, type PayoutItem } from '../src/masspay/state';

/** An item as this process last read or saved it, and the revision it is stored under (null: none yet). */
interface Known {
  item: PayoutItem;
  rev: number | null;
}

/** More than PayPal's largest Payouts batch (15,000 items): a whole batch stays known between its webhooks. */
const MAX_ITEMS = 20_000;

const cacheOf = perHandle(() => new LRUCache<string, Known>({ max: MAX_ITEMS }));
/** The revision each item handed out was read under, so its save can be guarded by it. */
const revisions = new WeakMap<PayoutItem, number | null>();

/**
 * Mass Pay items this worker process last read or saved, by _id, each with its stored revision
 * (`rev`, raised by every save). PayPal's 15,000 item webhooks follow the send that read those items,
 * so applying one need not read its item again: the save is guarded by the revision, a copy made
 * stale by another process matches nothing, is forgotten here, and its set is decided again from
 * the store. Everything handed out is a copy: callers may change what they get.
 */
export function itemCache(models: Models) {
  const known = cacheOf(models);
  const handOut = (item: PayoutItem, rev: number | null) => {
    const copy = structuredClone(item);
    revisions.set(copy, rev);
    return copy;
  };
  return {
    /** The item under this _id as last known here, or undefined. */
    get(id: string): PayoutItem | undefined {
      const k = known.get(id);
      return k ? handOut(k.item, k.rev) : undefined;
    },
    /** A stored document read just now: parsed, kept, and handed out. */
    read(id: string, doc: unknown): PayoutItem {
      const rev = typeof (doc as { rev?: unknown }).rev === 'number' ? (doc as { rev: number }).rev : null;
      const item = PayoutItemSchema.parse(doc);
      known.set(id, { item, rev });
      return handOut(item, rev);
    },
    /**
     * The filter and revision for saving over `was` (an item handed out here, or null): the guarded
     * revision, then the next. An item not handed out here gets a revision no copy can hold.
     */
    guard(was: PayoutItem | null): { rev: { $exists: false } | number | null; next: number } {
      const rev = was ? revisions.get(was) : undefined;
      if (rev === undefined) return { rev: null, next: randomInt(2 ** 40, 2 ** 47) };
      return { rev: rev === null ? { $exists: false } : rev, next: (rev ?? 0) + 1 };
    },
    saved(id: string, item: PayoutItem, rev: number): void {
      known.set(id, { item: structuredClone(item), rev });
    },
    forget(id: string): void {
      known.delete(id);
    },
  };
}
