import { appliedBefore, decideItem, reservationPosting, type ItemChange, type ItemsApplied } from './rules';
import type { PostingRequest } from '../shared/ledger';
import {
  RELEASING_STATES,
  type ItemCounts,
  type MasspayItemReport,
  type PayoutContradiction,
  type PayoutItem,
  type ResolveItemAction,
} from './state';

/**
 * Applies the item rules (decideItem) to a batch's stored items: the one place that reads an
 * item, posts its money and saves it. Storage is injected so the batch rules are tested against an
 * in-memory store and run against MongoDB with the same code.
 *
 * Work goes in sets of items (a page, a slice of a message): decide them all, post their money, then
 * save them. A crash anywhere leaves the unsaved items where they were; the retry decides the same
 * changes again and the ledger, idempotent by key, moves no money twice. Each item is written once
 * per set (FerretDB rewrites whole documents: two writers of one item could lose an update).
 */
export interface ItemStore {
  get(batchId: string, uniqueIds: string[]): Promise<Map<string, PayoutItem>>;
  /** Every item of the batch, in no particular order, in pages (a batch may hold 5,000). */
  forEach(batchId: string, fn: (items: PayoutItem[]) => Promise<void>): Promise<void>;
  counts(batchId: string): Promise<ItemCounts>;
  /**
   * Saves items, each at most once in the list, each guarded by the item as it was read (`was`):
   * an item someone else wrote since is not overwritten (the save throws and the set is decided again).
   */
  save(items: ItemWrite[]): Promise<void>;
  /**
   * Optional: shifts the batch's kept counts by `delta` once per `key` (a set decided again after a
   * crash shifts nothing twice). Called before the set's items are saved, see ItemsEngine.commit.
   */
  shiftCounts?(batchId: string, key: string, delta: ItemCounts): Promise<void>;
  post(posting: PostingRequest): Promise<{ ok: true } | { ok: false; reason: string }>;
  /**
   * Many postings, each account's in the order given, in a few round trips (a 15,000-item batch's
   * reservations); one verdict per posting. Optional: a store without it posts one by one.
   */
  postMany?(postings: PostingRequest[]): Promise<Array<{ ok: true } | { ok: false; reason: string }>>;
}

/** An item to save and the item as it was read (null: not read, written whatever it holds). */
export interface ItemWrite {
  item: PayoutItem;
  was: PayoutItem | null;
}

/** Accounts posted to at once: one account's postings go one after the other (its chain serialises them). */
const ACCOUNTS_AT_ONCE = 8;

export async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** One item's change within a set: the item as decided, and the money it moves (posted before saving). */
interface Decided {
  item: PayoutItem;
  /** The item as stored before this set. */
  was: PayoutItem;
  postings: PostingRequest[];
  /** Worth writing: the state, a fact or a note changed (a mere repeat of what the item says is not). */
  changed: boolean;
}

type Tally = { moved: number; ignored: number; problems: string[]; contradictions: PayoutContradiction[] };
const tally = (): Tally => ({ moved: 0, ignored: 0, problems: [], contradictions: [] });

export class ItemsEngine {
  constructor(private readonly store: ItemStore) {}

  /**
   * Posts every open item's reservation (debit), and sets each item's `reserved` to what the ledger
   * did. Items stored claiming `reserved` (a creation that died before answering) are posted again
   * too: the same key moves nothing twice, and a refused one loses its claim.
   */
  async reserveAll(batchId: string): Promise<ItemsApplied & { failures: string[] }> {
    const failures: string[] = [];
    let moved = 0;
    await this.store.forEach(batchId, async (page) => {
      const open = page.filter((item) => !RELEASING_STATES.includes(item.state));
      const decided = open.map((item) => ({ item, was: item, postings: [reservationPosting(item)], changed: true }));
      await this.postAll(decided, (d, _posting, reason) => {
        failures.push(`${d.item.uniqueId}: ${reason}`.slice(0, 300));
        d.changed = false;
      });
      const settled = decided
        .filter((d) => d.item.reserved !== d.changed)
        .map((d) => ({ item: { ...d.item, reserved: d.changed }, was: d.was }));
      await this.store.save(settled);
      moved += settled.filter((w) => w.item.reserved).length;
    });
    return { counts: await this.store.counts(batchId), moved, ignored: 0, problems: [], contradictions: [], failures };
  }

  async applyReports(
    batchId: string,
    reports: MasspayItemReport[],
    messageId: string,
    now: string,
  ): Promise<ItemsApplied> {
    const result = await this.applySlice(batchId, reports, messageId, now);
    return { ...result, counts: await this.store.counts(batchId) };
  }

  /**
   * A message's reports for some items of the batch, every report of an item in the same call. An
   * item this message already reached (a slice re-applied after a crash) is left as it is.
   * `countsKey`: the slice's state changes shift the batch's kept counts once under this key.
   */
  async applySlice(
    batchId: string,
    reports: MasspayItemReport[],
    messageId: string,
    now: string,
    countsKey?: string,
  ): Promise<Tally> {
    const stored = await this.store.get(batchId, [...new Set(reports.map((r) => r.uniqueId))]);
    const result = tally();
    const decided = new Map<string, Decided>();
    const skipped = new Set<string>();
    // In message order: two reports of one item in a message apply one after the other.
    for (const report of reports) {
      const item = stored.get(report.uniqueId);
      if (!item) {
        result.problems.push(`${report.uniqueId}: no such item in ${batchId}`);
        continue;
      }
      if (skipped.has(item.uniqueId)) continue;
      const before = decided.has(item.uniqueId) ? null : appliedBefore(item, messageId);
      if (before) {
        skipped.add(item.uniqueId);
        if (before.moved) result.moved++;
        else result.ignored++;
        result.problems.push(...item.problems.map((p) => `${item.uniqueId}: ${p}`));
        result.contradictions.push(...item.contradictions.filter((c) => c.messageId === messageId));
        continue;
      }
      this.decide(decided, item, { source: 'paypal', report, messageId }, now, result);
    }
    await this.commit([...decided.values()], now, result, countsKey ? { batchId, key: countsKey } : undefined);
    return result;
  }

  /** A batch-wide end (PayPal denied it, or an operator cancelled it): every open item releases its money. */
  async applyAll(
    batchId: string,
    to: 'Denied' | 'Cancelled',
    by: { messageId: string | null; operator: string | null },
    now: string,
  ): Promise<ItemsApplied> {
    const result = tally();
    await this.store.forEach(batchId, async (page) => {
      const decided = new Map<string, Decided>();
      for (const item of page) {
        if (item.state !== to) this.decide(decided, item, { source: 'batch', to, ...by }, now, result);
      }
      await this.commit([...decided.values()], now, result);
    });
    return { ...result, counts: await this.store.counts(batchId) };
  }

  async applyOne(
    batchId: string,
    a: ResolveItemAction,
    now: string,
  ): Promise<({ ok: true } & ItemsApplied) | { ok: false; reason: string }> {
    const item = (await this.store.get(batchId, [a.uniqueId])).get(a.uniqueId);
    if (!item) return { ok: false, reason: `no item ${a.uniqueId} in ${batchId}` };
    const change: ItemChange = { source: 'operator', to: a.state, operator: a.operator, note: a.reason };
    const refused = decideItem(item, change, now);
    if (!refused.moved) return { ok: false, reason: `${a.uniqueId}: ${refused.ignored}` };
    const result = tally();
    const decided = new Map<string, Decided>();
    this.decide(decided, item, change, now, result);
    await this.commit([...decided.values()], now, result);
    return { ok: true, ...result, counts: await this.store.counts(batchId) };
  }

  /** Decides one change on the item as decided so far in this set (or as stored). */
  private decide(sets: Map<string, Decided>, stored: PayoutItem, change: ItemChange, now: string, result: Tally) {
    const earlier = sets.get(stored.uniqueId);
    const d = decideItem(earlier?.item ?? stored, change, now);
    // A repeat that changes nothing but its own "ignored" note is not worth a write (a 5,000-item
    // Completed after the Processed is mostly repeats); its count tells the batch all the same.
    const { history: _h, ...rest } = d.item;
    const { history: _s, ...was } = stored;
    const changed = d.moved || d.postings.length > 0 || JSON.stringify(rest) !== JSON.stringify(was);
    sets.set(stored.uniqueId, {
      item: d.item,
      was: earlier?.was ?? stored,
      postings: [...(earlier?.postings ?? []), ...d.postings],
      changed: (earlier?.changed ?? false) || changed,
    });
    if (d.moved) result.moved++;
    else result.ignored++;
    result.problems.push(...d.problems.map((p) => `${stored.uniqueId}: ${p}`));
    result.contradictions.push(...d.contradictions);
  }

  /**
   * Posts the set's money, then saves what changed (the state PayPal reported stands even if money
   * could not move). Kept counts shift before the items are saved: a crash after the shift decides
   * the same set again (the items unsaved, or saved and skipped) and the key shifts nothing twice.
   */
  private async commit(
    decided: Decided[],
    now: string,
    result: Tally,
    counted?: { batchId: string; key: string },
  ): Promise<void> {
    await this.postAll(decided, (d, posting, reason) => {
      // The money did not move, and a person is asked.
      const problem = `ledger_conflict:${posting.reason}`;
      if (!d.item.problems.includes(problem)) d.item.problems.push(problem);
      result.problems.push(`${d.item.uniqueId}: ${problem}`);
      if (posting.reason === 'payout_release') d.item.released = false;
      d.item.history.push({
        at: now,
        what: `could not post ${posting.reason}: ${reason}`.slice(0, 300),
        messageId: null,
        operator: null,
      });
    });
    const changed = decided.filter((d) => d.changed);
    if (counted && this.store.shiftCounts) {
      await this.store.shiftCounts(counted.batchId, counted.key, countsDelta(changed));
    }
    await this.store.save(changed.map((d) => ({ item: d.item, was: d.was })));
  }

  /**
   * Every posting of a set: accounts in parallel (bounded), one account's postings in order. A
   * refusal (a conflict the ledger will never accept) is handed to `refused`; anything else throws.
   */
  private async postAll(
    decided: Decided[],
    refused: (d: Decided, posting: PostingRequest, reason: string) => void,
  ): Promise<void> {
    const byAccount = new Map<string, Array<[Decided, PostingRequest]>>();
    for (const d of decided) {
      for (const p of d.postings) {
        const account = JSON.stringify([p.customerId, p.currency, p.mode]);
        const list = byAccount.get(account) ?? [];
        list.push([d, p]);
        byAccount.set(account, list);
      }
    }
    if (this.store.postMany) {
      // Every account at once, in a few round trips (the ledger chains each account in order).
      const all = [...byAccount.values()].flat();
      const verdicts = await this.store.postMany(all.map(([, p]) => p));
      verdicts.forEach((v, i) => {
        if (!v.ok) refused(all[i]![0], all[i]![1], v.reason);
      });
      return;
    }
    await inParallel([...byAccount.values()], ACCOUNTS_AT_ONCE, async (postings) => {
      for (const [d, posting] of postings) {
        const posted = await this.store.post(posting);
        if (!posted.ok) refused(d, posting, posted.reason);
      }
    });
  }
}

/** What a set's state changes do to the batch's counts (states left -1, states reached +1). */
function countsDelta(changed: Array<Pick<Decided, 'item' | 'was'>>): ItemCounts {
  const delta: ItemCounts = {};
  for (const { item, was } of changed) {
    if (item.state === was.state) continue;
    delta[was.state] = (delta[was.state] ?? 0) - 1;
    delta[item.state] = (delta[item.state] ?? 0) + 1;
  }
  return delta;
}

/** Items per slice of a message: one slice is one activity, done in a second or two even for 5,000 items' messages. */
export const SLICE_ITEMS = 500;

/**
 * Slice `n` of a message's reports for one batch: up to SLICE_ITEMS items in order of first mention,
 * every report of an item in the slice of its first. `last` says no slice follows.
 */
export function reportSlice(reports: MasspayItemReport[], n: number, size = SLICE_ITEMS) {
  const byItem = new Map<string, MasspayItemReport[]>();
  for (const r of reports) {
    const mine = byItem.get(r.uniqueId) ?? [];
    mine.push(r);
    byItem.set(r.uniqueId, mine);
  }
  const items = [...byItem.values()];
  return { reports: items.slice(n * size, (n + 1) * size).flat(), last: (n + 1) * size >= items.length };
}
