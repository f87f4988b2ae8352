import type { Models } from '../../src/db/models';
import { nowMs, sleep } from './load';

/** The ledger's idempotency key of a payment's credit (src/domain/payment-decide.ts). */
export const creditKey = (integrationId: string, txnId: string) => `credit:${integrationId}:${txnId}`;

/**
 * Notices credits by reading ledger_entries through its unique idempotencyKey index: one `$in`
 * query for everything awaited, every `intervalMs`, so watching 100 payments costs the database
 * what watching one does (a poll per payment would load the very server being measured).
 */
export class CreditWatch {
  private readonly waiting = new Map<string, Array<(at: number) => void>>();
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(private readonly models: Models, private readonly intervalMs = 20) {
    this.loop = this.run();
  }

  /** Resolves with the time (nowMs) the credit was first seen; rejects after timeoutMs. */
  seen(key: string, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`no ledger entry with idempotencyKey ${key} after ${timeoutMs} ms (payment not credited, or the key format changed)`));
      }, timeoutMs);
      const list = this.waiting.get(key) ?? [];
      list.push((at) => { clearTimeout(timer); resolve(at); });
      this.waiting.set(key, list);
    });
  }

  get pending(): number {
    return this.waiting.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const keys = [...this.waiting.keys()];
      if (keys.length > 0) {
        const found = await this.models.LedgerEntry.collection
          .find({ idempotencyKey: { $in: keys } }, { projection: { idempotencyKey: 1 } })
          .toArray();
        const at = nowMs();
        for (const doc of found) {
          const key = doc.idempotencyKey as string;
          for (const resolve of this.waiting.get(key) ?? []) resolve(at);
          this.waiting.delete(key);
        }
      }
      await sleep(this.intervalMs);
    }
  }
}
