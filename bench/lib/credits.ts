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

/**
 * A burst's credits, timed by their ledger entries' `createdAt` (the moment the worker wrote each)
 * rather than by when a poll noticed them. Timing each of 200 credits by polling ten accounts cost
 * about five reads per payment, load on the very database the burst measures, which the floor it is
 * compared with does not carry. While a burst drains, only the last entry each account expects is
 * looked for, one account at a time (about one read per poll interval); every entry is read after.
 * The bench is the only writer to these accounts, so the entries past a head are the burst's.
 */
export class BurstLedger {
  /** Per account, the seq of the last entry read. */
  private readonly heads: number[];

  constructor(
    private readonly models: Models,
    readonly accountIds: readonly string[],
  ) {
    this.heads = accountIds.map(() => 0);
  }

  /** How many entries the accounts hold (as far as read). */
  get entries(): number {
    return this.heads.reduce((a, b) => a + b, 0);
  }

  /** Waits until account k holds `expected[k]` entries past its head, or until `deadline` (Date.now()); false then. */
  async waitFor(expected: readonly number[], deadline: number, pollMs = 100): Promise<boolean> {
    for (let k = 0; k < this.accountIds.length; k++) {
      const last = this.heads[k]! + (expected[k] ?? 0);
      if (last === this.heads[k]) continue;
      while (!(await this.entry(k, last))) {
        if (Date.now() >= deadline) return false;
        await sleep(pollMs);
      }
    }
    return true;
  }

  /** The entries past each head, as txnId → createdAt (ms since the epoch); the heads move past them. */
  async collect(): Promise<Map<string, number>> {
    const at = new Map<string, number>();
    for (let k = 0; k < this.accountIds.length; k++) {
      for (;;) {
        const e = await this.entry(k, this.heads[k]! + 1);
        if (!e) break;
        this.heads[k]!++;
        if (e.kind === 'credit' && typeof e.txnId === 'string') at.set(e.txnId, e.createdAt.getTime());
      }
    }
    return at;
  }

  private entry(k: number, seq: number) {
    return this.models.LedgerEntry.collection.findOne(
      { _id: `${this.accountIds[k]}:${seq}` as never },
      { projection: { txnId: 1, kind: 1, createdAt: 1 } },
    );
  }
}
