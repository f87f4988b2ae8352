import {
  decideItem,
  reservationPosting,
  type ItemChange,
  type ItemsApplied,
  type PayoutPosting,
} from '../domain/masspay-decide';
import {
  RELEASING_STATES,
  type ItemCounts,
  type MasspayItemReport,
  type PayoutItem,
  type ResolveItemAction,
} from '../domain/masspay';

/**
 * Applies the item rules (decideItem) to a batch's stored items: the one place that reads an
 * item, posts its money and saves it. Storage is injected so the batch rules are tested against an
 * in-memory store and run against MongoDB with the same code.
 *
 * Order per item: post first, save second. A crash between the two leaves the item where it was;
 * the retry decides the same change again and the ledger, idempotent by key, moves no money twice.
 */
export interface ItemStore {
  get(batchId: string, uniqueIds: string[]): Promise<Map<string, PayoutItem>>;
  /** Every item of the batch, in no particular order, in pages (a batch may hold 5,000). */
  forEach(batchId: string, fn: (items: PayoutItem[]) => Promise<void>): Promise<void>;
  counts(batchId: string): Promise<ItemCounts>;
  save(item: PayoutItem): Promise<void>;
  post(posting: PayoutPosting): Promise<{ ok: true } | { ok: false; reason: string }>;
}

const CONCURRENCY = 8;

async function inParallel<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
}

export class ItemsEngine {
  constructor(private readonly store: ItemStore) {}

  /** Posts every item's reservation (debit) not yet posted. */
  async reserveAll(batchId: string): Promise<ItemsApplied & { failures: string[] }> {
    const failures: string[] = [];
    let moved = 0;
    await this.store.forEach(batchId, (page) =>
      inParallel(page, async (item) => {
        if (item.reserved || RELEASING_STATES.includes(item.state)) return;
        const posted = await this.store.post(reservationPosting(item));
        if (!posted.ok) {
          failures.push(`${item.uniqueId}: ${posted.reason}`.slice(0, 300));
          return;
        }
        await this.store.save({ ...item, reserved: true });
        moved++;
      }),
    );
    return { counts: await this.store.counts(batchId), moved, ignored: 0, problems: [], failures };
  }

  async applyReports(
    batchId: string,
    reports: MasspayItemReport[],
    messageId: string,
    now: string,
  ): Promise<ItemsApplied> {
    const items = await this.store.get(
      batchId,
      reports.map((r) => r.uniqueId),
    );
    const result = { moved: 0, ignored: 0, problems: [] as string[] };
    // In message order: two reports of one item in a message apply one after the other.
    for (const report of reports) {
      const item = items.get(report.uniqueId);
      if (!item) {
        result.problems.push(`${report.uniqueId}: no such item in ${batchId}`);
        continue;
      }
      const after = await this.change(item, { source: 'paypal', report, messageId }, now, result);
      items.set(report.uniqueId, after);
    }
    return { ...result, counts: await this.store.counts(batchId) };
  }

  /** A batch-wide end (PayPal denied it, or an operator cancelled it): every open item releases its money. */
  async applyAll(
    batchId: string,
    to: 'Denied' | 'Cancelled',
    by: { messageId: string | null; operator: string | null },
    now: string,
  ): Promise<ItemsApplied> {
    const result = { moved: 0, ignored: 0, problems: [] as string[] };
    await this.store.forEach(batchId, (page) =>
      inParallel(page, async (item) => {
        if (item.state === to) return;
        await this.change(item, { source: 'batch', to, ...by }, now, result);
      }),
    );
    return { ...result, counts: await this.store.counts(batchId) };
  }

  async applyOne(
    batchId: string,
    a: ResolveItemAction,
    now: string,
  ): Promise<({ ok: true } & ItemsApplied) | { ok: false; reason: string }> {
    const item = (await this.store.get(batchId, [a.uniqueId])).get(a.uniqueId);
    if (!item) return { ok: false, reason: `no item ${a.uniqueId} in ${batchId}` };
    const result = { moved: 0, ignored: 0, problems: [] as string[] };
    const decided = decideItem(item, { source: 'operator', to: a.state, operator: a.operator, note: a.note }, now);
    if (!decided.moved) return { ok: false, reason: `${a.uniqueId}: ${decided.ignored}` };
    await this.change(item, { source: 'operator', to: a.state, operator: a.operator, note: a.note }, now, result);
    return { ok: true, ...result, counts: await this.store.counts(batchId) };
  }

  private async change(
    item: PayoutItem,
    change: ItemChange,
    now: string,
    result: { moved: number; ignored: number; problems: string[] },
  ): Promise<PayoutItem> {
    const d = decideItem(item, change, now);
    for (const posting of d.postings) {
      const posted = await this.store.post(posting);
      if (!posted.ok) {
        // The state PayPal reported stands; the money did not move, and a person is asked.
        const problem = `ledger_conflict:${posting.reason}`;
        if (!d.item.problems.includes(problem)) d.item.problems.push(problem);
        d.problems.push(problem);
        if (posting.reason === 'payout_release') d.item.released = false;
        d.item.history.push({
          at: now,
          what: `could not post ${posting.reason}: ${posted.reason}`.slice(0, 300),
          messageId: null,
          operator: null,
        });
      }
    }
    await this.store.save(d.item);
    if (d.moved) result.moved++;
    else result.ignored++;
    result.problems.push(...d.problems.map((p) => `${item.uniqueId}: ${p}`));
    return d.item;
  }
}
