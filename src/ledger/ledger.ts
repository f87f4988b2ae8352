import type { Models } from '../db/models';

export interface PostingRequest {
  customerId: string;
  currency: string;
  /** Signed integer minor units: positive credits, negative debits. */
  amountMinor: number;
  /** The same key always means the same movement: posting it again is a no-op. */
  idempotencyKey: string;
  reason: 'payment' | 'refund' | 'reversal' | 'canceled_reversal' | 'manual';
  /** Sandbox money lives in accounts apart from live money. */
  mode: 'live' | 'sandbox';
  integrationId?: string;
  txnId?: string;
  parentTxnId?: string;
  messageId?: string;
  operator?: string;
  note?: string;
}

export interface PostingResult {
  entryId: string;
  seq: number;
  balanceAfterMinor: number;
  /** False when the key had been posted before (a retry, a resend, a crash recovery). */
  applied: boolean;
}

export class LedgerError extends Error {
  constructor(
    message: string,
    readonly context: Record<string, unknown>,
    /** Worth trying again (contention), as opposed to a movement the ledger will never accept. */
    readonly transient = false,
  ) {
    super(`${message} ${JSON.stringify(context)}`);
    this.name = 'LedgerError';
  }
}

export const accountIdOf = (customerId: string, currency: string) => `${customerId}:${currency}`;

/**
 * Append-only ledger without multi-document transactions (FerretDB has none).
 *
 * Entries of one account form a gapless chain: entry n+1 is written only after reading the
 * account at n, and carries balanceAfter = balance(n) + amount. The entry insert is the commit
 * point, guarded by two unique indexes: (accountId, seq) serialises concurrent writers and
 * idempotencyKey makes every movement happen at most once. The balance document is a cache of
 * the chain's head, advanced by compare-and-set on seq; whoever finds it behind (a writer that
 * died between the two writes) advances it first. So the balance always equals the ledger sum.
 */
export class Ledger {
  constructor(private readonly models: Models) {}

  async post(req: PostingRequest): Promise<PostingResult> {
    if (!Number.isSafeInteger(req.amountMinor) || req.amountMinor === 0) {
      throw new LedgerError('amount must be a non-zero safe integer of minor units', { key: req.idempotencyKey, amountMinor: req.amountMinor });
    }
    const accountId = accountIdOf(req.customerId, req.currency);
    for (let attempt = 0; attempt < 100; attempt++) {
      const existing = await this.models.LedgerEntry.findOne({ idempotencyKey: req.idempotencyKey }).lean();
      if (existing) {
        if (existing.amountMinor !== req.amountMinor || existing.accountId !== accountId) {
          throw new LedgerError('idempotency key reused for a different movement', { key: req.idempotencyKey, existing: { accountId: existing.accountId, amountMinor: existing.amountMinor }, requested: { accountId, amountMinor: req.amountMinor } });
        }
        await this.catchUp(accountId, req.customerId, req.currency);
        return { entryId: existing._id, seq: existing.seq, balanceAfterMinor: existing.balanceAfterMinor, applied: false };
      }
      const head = await this.catchUp(accountId, req.customerId, req.currency);
      const seq = head.seq + 1;
      const balanceAfterMinor = head.balanceMinor + req.amountMinor;
      if (!Number.isSafeInteger(balanceAfterMinor)) throw new LedgerError('balance overflow', { accountId, balanceAfterMinor });
      const entryId = `${accountId}:${seq}`;
      try {
        await this.models.LedgerEntry.create({
          _id: entryId,
          accountId,
          seq,
          balanceAfterMinor,
          kind: req.amountMinor > 0 ? 'credit' : 'debit',
          createdAt: new Date(),
          ...req,
        });
      } catch (err) {
        if (isDuplicateKey(err)) continue; // lost a race for this seq or this key: look again
        throw err;
      }
      await this.advance(accountId, head.seq, seq, balanceAfterMinor, req.customerId, req.currency);
      return { entryId, seq, balanceAfterMinor, applied: true };
    }
    throw new LedgerError('too much contention posting to account', { accountId, key: req.idempotencyKey }, true);
  }

  /** Balances of a customer, each brought up to the head of its chain. */
  async balances(customerId: string): Promise<Array<{ currency: string; balanceMinor: number; seq: number }>> {
    const currencies = await this.models.LedgerEntry.distinct('currency', { customerId });
    const heads = await Promise.all(currencies.map((c) => this.catchUp(accountIdOf(customerId, c), customerId, c)));
    return currencies.map((currency, i) => ({ currency, balanceMinor: heads[i]!.balanceMinor, seq: heads[i]!.seq })).sort((a, b) => a.currency.localeCompare(b.currency));
  }

  async entries(customerId: string) {
    return this.models.LedgerEntry.find({ customerId }).sort({ createdAt: 1, seq: 1 }).lean();
  }

  /**
   * Proves balance = sum of entries for every account, and that each entry's balanceAfter
   * follows from its predecessor. Returns the accounts that disagree (empty when sound).
   */
  async check(): Promise<{ accounts: number; entries: number; problems: string[] }> {
    const problems: string[] = [];
    let entryCount = 0;
    const accounts = await this.models.LedgerEntry.distinct('accountId');
    for (const accountId of accounts) {
      const entries = await this.models.LedgerEntry.find({ accountId }).sort({ seq: 1 }).lean();
      entryCount += entries.length;
      let sum = 0;
      entries.forEach((e, i) => {
        sum += e.amountMinor;
        if (e.seq !== i + 1) problems.push(`${accountId}: gap before seq ${e.seq}`);
        if (e.balanceAfterMinor !== sum) problems.push(`${accountId}: seq ${e.seq} says ${e.balanceAfterMinor}, sum is ${sum}`);
      });
      const first = entries[0];
      const head = first ? await this.catchUp(accountId, first.customerId, first.currency) : undefined;
      if (head && head.balanceMinor !== sum) problems.push(`${accountId}: balance ${head.balanceMinor} != ledger sum ${sum}`);
    }
    return { accounts: accounts.length, entries: entryCount, problems };
  }

  /** Advances the cached balance over any entries a crashed writer left unapplied. */
  private async catchUp(accountId: string, customerId: string, currency: string): Promise<{ seq: number; balanceMinor: number }> {
    for (;;) {
      const cached = await this.models.Balance.findById(accountId).lean();
      let head = { seq: cached?.seq ?? 0, balanceMinor: cached?.balanceMinor ?? 0 };
      const start = head.seq;
      for (;;) {
        const next = await this.models.LedgerEntry.findOne({ accountId, seq: head.seq + 1 }).lean();
        if (!next) break;
        head = { seq: next.seq, balanceMinor: next.balanceAfterMinor };
      }
      if (head.seq === start) return head;
      await this.advance(accountId, start, head.seq, head.balanceMinor, customerId, currency);
      // Re-read: a concurrent writer may have moved further than we saw.
    }
  }

  private async advance(accountId: string, fromSeq: number, toSeq: number, balanceMinor: number, customerId: string, currency: string): Promise<void> {
    try {
      // Compare-and-set on seq; losing the race is fine, the winner moved it at least as far.
      await this.models.Balance.updateOne(
        { _id: accountId, seq: fromSeq },
        { $set: { seq: toSeq, balanceMinor, customerId, currency } },
        { upsert: fromSeq === 0 },
      );
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }
}

export function isDuplicateKey(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: number }).code === 11000;
}
