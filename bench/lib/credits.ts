import type { Models } from '../../src/shared/db/models';
import { nowMs, sleep } from './load';

/** How often the watch looks while no payment waits for a credit. */
const IDLE_POLL_MS = 100;

/**
 * Notices credits to one ledger account by following its chain of entries, whose ids are
 * `${accountId}:${seq}` (src/shared/ledger.ts): one lookup by `_id` per poll, plus one per entry
 * found. Only `_id` lookups, because any other filter may scan the collection (FerretDB pushes
 * little else down) and the watcher must not load the very database it measures.
 */
export class CreditWatch {
  private readonly waiting = new Map<string, Array<(at: number) => void>>();
  private readonly seenAt = new Map<string, number>();
  private stopped = false;
  private readonly loop: Promise<void>;
  /** Sequence number of the last entry read. */
  head = 0;

  constructor(
    private readonly models: Models,
    readonly accountId: string,
    private readonly intervalMs = 20,
  ) {
    this.loop = this.run();
  }

  /** Resolves with the time (nowMs) a credit for `txnId` was first seen; rejects after timeoutMs. */
  credited(txnId: string, timeoutMs: number): Promise<number> {
    const at = this.seenAt.get(txnId);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.waiting.get(txnId)?.filter((r) => r !== done);
        if (list?.length) this.waiting.set(txnId, list);
        else this.waiting.delete(txnId);
        reject(
          new Error(
            `no credit of txn ${txnId} in ledger account ${this.accountId} ` +
              `after ${timeoutMs} ms (head at seq ${this.head})`,
          ),
        );
      }, timeoutMs);
      const done = (t: number) => {
        clearTimeout(timer);
        resolve(t);
      };
      this.waiting.set(txnId, [...(this.waiting.get(txnId) ?? []), done]);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const entry = await this.models.LedgerEntry.collection
        .findOne({ _id: `${this.accountId}:${this.head + 1}` as never }, { projection: { txnId: 1, kind: 1 } })
        .catch(() => null); // a busy database is measured, not fatal: try again next poll
      if (!entry) {
        // Polling fast costs the database it measures: fast only while a payment waits for its credit.
        await sleep(this.waiting.size > 0 ? this.intervalMs : IDLE_POLL_MS);
        continue;
      }
      this.head++;
      if (entry.kind !== 'credit' || typeof entry.txnId !== 'string') continue;
      const at = nowMs();
      this.seenAt.set(entry.txnId, at);
      for (const resolve of this.waiting.get(entry.txnId) ?? []) resolve(at);
      this.waiting.delete(entry.txnId);
    }
  }
}
