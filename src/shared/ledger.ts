import type { Models } from './db/models';
import { duplicateKeyIndexes, isDuplicateKey } from './db/duplicate-keys';
import { gatheredInserts } from './db/gathered';
import { perHandle } from './db/per-handle';

import type { MoneyMode } from './money-mode';

export type { MoneyMode };

export interface PostingRequest {
  customerId: string;
  currency: string;
  mode: MoneyMode;
  /** Signed integer minor units: positive credits, negative debits. */
  amountMinor: number;
  /** The same key always means the same movement: posting it again is a no-op. */
  idempotencyKey: string;
  reason: 'payment' | 'refund' | 'reversal' | 'canceled_reversal' | 'manual' | 'payout_reserve' | 'payout_release';
  integrationId?: string;
  txnId?: string;
  parentTxnId?: string;
  messageId?: string;
  operator?: string;
  note?: string;
  /**
   * A debit that must not take the balance below zero (a payout reservation). Checked against the
   * head the entry is chained to, so concurrent debits of one account can never both pass.
   */
  mustStayCovered?: boolean;
}

/**
 * A posting an entity's rules ask for (a payment, a recurring profile): the ledger's request about
 * one PayPal transaction, named by the message that moved it. The rules ask for it as a fact
 * (shared/rules-kit.ts) and hold on a refusal.
 */
export interface Posting extends PostingRequest {
  reason: 'payment' | 'refund' | 'reversal' | 'canceled_reversal';
  integrationId: string;
  txnId: string;
  messageId: string;
}

/** What became of a posting the rules asked for: posted (or posted before), or refused and why. */
export type PostingOutcome = { ok: true } | { ok: false; reason: string };

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

/** Live accounts keep the id they had before sandbox money was kept apart, so existing data stays valid. */
export const accountIdOf = (customerId: string, currency: string, mode: MoneyMode) =>
  mode === 'live' ? `${customerId}:${currency}` : `${customerId}:${currency}:sandbox`;

/** Entries and balances written before modes existed are live: they all went to the live account ids. */
const modeOf = (doc: { mode?: string | null }): MoneyMode => (doc.mode === 'sandbox' ? 'sandbox' : 'live');

type Account = { accountId: string; customerId: string; currency: string; mode: MoneyMode };
export type AccountHead = { seq: number; balanceMinor: number };
/** One account's movements in `postMany`: its head as chained so far, and the requests still to write. */
type Chain = { account: Account; start: number; head: AccountHead; todo: number[] };
/** A movement `postMany` wrote on its fast path (the request's index, and where it landed). */
type Posted = { index: number; entryId: string; key: string; seq: number; balanceAfterMinor: number };

/** A debit that must stay covered and would not (checked against the head the entry chains to). */
const uncovered = (req: PostingRequest, balanceAfterMinor: number) =>
  req.mustStayCovered === true && req.amountMinor < 0 && balanceAfterMinor < 0;

/** What the entry schema required when entries went through mongoose: a movement without one is refused. */
const missingFields = (req: PostingRequest) =>
  (['customerId', 'currency', 'reason', 'idempotencyKey'] as const).filter(
    (field) => typeof req[field] !== 'string' || req[field] === '',
  );

/** The optional fields of a movement an entry keeps (set only when given, as mongoose would store them). */
const ENTRY_OPTIONAL_FIELDS = ['integrationId', 'txnId', 'parentTxnId', 'messageId', 'operator', 'note'] as const;

/** A ledger entry as stored (models.ts's ledgerEntrySchema). */
type EntryDoc = {
  _id: string;
  accountId: string;
  customerId: string;
  currency: string;
  mode: MoneyMode;
  seq: number;
  amountMinor: number;
  balanceAfterMinor: number;
  kind: 'credit' | 'debit';
  reason: PostingRequest['reason'];
  idempotencyKey: string;
  createdAt: Date;
} & Partial<Pick<PostingRequest, (typeof ENTRY_OPTIONAL_FIELDS)[number]>>;

/**
 * The entry a movement writes after `head`: the chain's next seq. Only the schema's fields, none
 * undefined (`mustStayCovered` is a check, not a field): entries go to the driver as they are.
 */
function entryAfter(accountId: string, head: AccountHead, req: PostingRequest): EntryDoc {
  const seq = head.seq + 1;
  const entry: EntryDoc = {
    _id: `${accountId}:${seq}`,
    accountId,
    customerId: req.customerId,
    currency: req.currency,
    mode: req.mode,
    seq,
    amountMinor: req.amountMinor,
    balanceAfterMinor: head.balanceMinor + req.amountMinor,
    kind: req.amountMinor > 0 ? 'credit' : 'debit',
    reason: req.reason,
    idempotencyKey: req.idempotencyKey,
    createdAt: new Date(),
  };
  for (const field of ENTRY_OPTIONAL_FIELDS) if (req[field] !== undefined) entry[field] = req[field];
  return entry;
}

/**
 * One account's postings in this process: the batch that runs last (`tail`), and the one gathering
 * the postings that arrive meanwhile (`gathering`, whose results `gathered` will hold).
 */
type AccountQueue = {
  tail: Promise<void>;
  gathering?: PostingRequest[];
  gathered?: Promise<Array<PostingResult | LedgerError>>;
};
/** Per database handle: each account's queue in this process. */
const accountQueuesOf = perHandle((): Map<string, AccountQueue> => new Map());
/**
 * Per database handle: the furthest head this process has seen of each account's chain (written or
 * walked). Only ever a real entry of the chain, so at worst behind it: a writer trusting it then
 * meets a taken seq at the insert and walks, as with a lagging balance document. It saves posting
 * the read of that document when this process posted to the account last (a customer's burst).
 */
const knownHeadsOf = perHandle((): Map<string, AccountHead> => new Map());
/**
 * Per database handle: lone postings' entry and key inserts, gathered (shared/db/gathered.ts). Postings to
 * different accounts made at once, a burst of payments, then go as one command each, not one per posting
 * (a command costs the store about 1 ms of CPU whatever it carries). An entry refused as a duplicate is
 * answered with the duplicate-key code, as the lone insert was; a key already there is written.
 */
type LedgerKeyDoc = { _id: string; entryId: string };
const insertsFor = perHandle((models) => ({
  entries: gatheredInserts<EntryDoc>('ledger entry', models.LedgerEntry.collection as never, 'refused'),
  keys: gatheredInserts<LedgerKeyDoc>('ledger key', models.LedgerKey.collection as never, 'written'),
}));
/** Accounts remembered per database handle before starting over (a working set, not a directory). */
const KNOWN_HEADS_MAX = 10_000;

/**
 * Append-only ledger without multi-document transactions (FerretDB has none).
 *
 * Entries of one account form a gapless chain: entry n+1 is written only after reading the
 * account at n, and carries balanceAfter = balance(n) + amount. The entry insert is the commit
 * point, guarded by unique keys: the entry _id `<account>:<seq>` serialises concurrent writers and
 * idempotencyKey makes every movement happen at most once. The balance document is a cache of
 * the chain's head; whoever reads it walks forward over entries written after it (a writer that
 * died between the two writes, or lost a race to update it) first, and a writer trusting it finds
 * out at the insert (the seq it chained to is taken). So the balance always equals the ledger sum.
 * Every read on the posting path is by _id (entry n is `<account>:<n>`; a key document maps an
 * idempotency key to its entry), so posting costs the same however long the ledger grows.
 */
export class Ledger {
  constructor(private readonly models: Models) {}

  /**
   * Posts one movement. This process's postings to one account go one batch after the other: twenty
   * workflows crediting one customer at once (a burst of top-ups) would otherwise race for the same
   * seq, and every loser pays an insert, a key lookup and a walk of the chain before trying again
   * (measured: 6 entry inserts and 13 balance reads per payment at 20 at once on one account).
   * Postings that arrive while the account's batch runs wait together and go in as the next batch
   * (`postMany`: one read of the head, one insert of their entries, one of their keys, one balance
   * write), each answered as `post` alone would answer it; a lone posting goes alone, at once.
   * Writers in other processes are still judged by the chain's unique ids and keys, as below.
   */
  async post(req: PostingRequest): Promise<PostingResult> {
    const queues = accountQueuesOf(this.models);
    const accountId = accountIdOf(req.customerId, req.currency, req.mode);
    let queue = queues.get(accountId);
    if (!queue) queues.set(accountId, (queue = { tail: Promise.resolve() }));
    if (!queue.gathering) {
      const q = queue;
      const reqs: PostingRequest[] = [];
      const batch = q.tail.then(async () => {
        // Running now: whatever arrives from here on gathers into the next batch.
        if (q.gathering === reqs) q.gathering = undefined;
        return reqs.length === 1 ? [await this.postNow(reqs[0]!)] : this.postMany(reqs);
      });
      const tail = batch.then(
        () => undefined,
        () => undefined,
      );
      Object.assign(q, { gathering: reqs, gathered: batch, tail });
      void tail.then(() => {
        if (q.tail === tail && !q.gathering && queues.get(accountId) === q) queues.delete(accountId);
      });
    }
    const index = queue.gathering!.push(req) - 1;
    const result = (await queue.gathered!)[index]!;
    if (result instanceof LedgerError) throw result;
    return result;
  }

  private async postNow(req: PostingRequest): Promise<PostingResult> {
    if (!Number.isSafeInteger(req.amountMinor) || req.amountMinor === 0) {
      throw new LedgerError('amount must be a non-zero safe integer of minor units', {
        key: req.idempotencyKey,
        amountMinor: req.amountMinor,
      });
    }
    // Checked, not defaulted: a caller that forgot the mode must not land in either account by accident.
    if (req.mode !== 'live' && req.mode !== 'sandbox') {
      throw new LedgerError('mode must be live or sandbox', { key: req.idempotencyKey, mode: req.mode });
    }
    const missing = missingFields(req);
    if (missing.length > 0)
      throw new LedgerError('a movement needs these fields', { key: req.idempotencyKey, missing });
    const { customerId, currency, mode } = req;
    const account = { accountId: accountIdOf(customerId, currency, mode), customerId, currency, mode };
    const { accountId } = account;
    let integrationChecked = false;
    // First from the balance document alone: the entry insert itself finds out whether it lags (the
    // seq is taken) or the key was posted before (its unique index). Only then are the chain walked
    // and the key looked up, so a first posting costs four round trips, not six.
    let walk = false;
    for (let attempt = 0; attempt < 100; attempt++) {
      if (!integrationChecked) {
        try {
          await this.refuseLiveFromSandbox(req);
        } catch (err) {
          // A movement made before the rule still answers as made.
          const existing = await this.postedUnder(req.idempotencyKey);
          if (existing) return this.asPosted(existing, req, account);
          throw err;
        }
        integrationChecked = true;
      }
      const head = walk ? await this.catchUp(account) : await this.cachedHead(accountId);
      const seq = head.seq + 1;
      const balanceAfterMinor = head.balanceMinor + req.amountMinor;
      const refusal = !Number.isSafeInteger(balanceAfterMinor)
        ? new LedgerError('balance overflow', { accountId, balanceAfterMinor })
        : uncovered(req, balanceAfterMinor)
          ? new LedgerError('insufficient balance', {
              accountId,
              balanceMinor: head.balanceMinor,
              amountMinor: req.amountMinor,
            })
          : null;
      if (refusal) {
        // Judged on the true head only: the cached one may lag behind entries a crashed writer left.
        const existing = await this.postedUnder(req.idempotencyKey);
        if (existing) return this.asPosted(existing, req, account);
        if (!walk) {
          walk = true;
          continue;
        }
        throw refusal;
      }
      const entryId = `${accountId}:${seq}`;
      try {
        // Through the driver: entryAfter builds exactly the schema's fields, checked at the top of postNow.
        await insertsFor(this.models).entries.add(entryAfter(accountId, head, req));
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        // Posted before under this key (a retry, a resend)...
        const existing = await this.postedUnder(req.idempotencyKey);
        if (existing) return this.asPosted(existing, req, account);
        walk = true;
        // ...or this seq is taken (a racing writer, or a cache behind the chain: walk it), or the key's
        // entry exists without its key document (a writer died between the two inserts): find it the
        // slow way, once; the next attempt then finds it by key.
        if (await this.models.LedgerEntry.exists({ _id: entryId })) continue;
        const orphan = await this.models.LedgerEntry.findOne({ idempotencyKey: req.idempotencyKey }).lean();
        if (orphan) await this.rememberKey(req.idempotencyKey, orphan._id);
        continue;
      }
      await this.rememberKey(req.idempotencyKey, entryId);
      await this.advance(account, head.seq, seq, balanceAfterMinor);
      return { entryId, seq, balanceAfterMinor, applied: true };
    }
    throw new LedgerError('too much contention posting to account', { accountId, key: req.idempotencyKey }, true);
  }

  /** A key posted before: the same movement answers as made (nothing moves again); another is refused. */
  private async asPosted(
    existing: { _id: string; accountId: string; amountMinor: number; seq: number; balanceAfterMinor: number },
    req: PostingRequest,
    account: Account,
  ): Promise<PostingResult> {
    if (existing.amountMinor !== req.amountMinor || existing.accountId !== account.accountId) {
      throw new LedgerError('idempotency key reused for a different movement', {
        key: req.idempotencyKey,
        existing: { accountId: existing.accountId, amountMinor: existing.amountMinor },
        requested: { accountId: account.accountId, amountMinor: req.amountMinor },
      });
    }
    await this.catchUp(account);
    return { entryId: existing._id, seq: existing.seq, balanceAfterMinor: existing.balanceAfterMinor, applied: false };
  }

  /**
   * Many movements in a few round trips (a 15,000-item batch's reservations), any accounts. Each
   * account's head is read once and its entries chained in memory; the entries go in by layers (every
   * account's next entry, one unordered insertMany a layer), then their keys and the balances. The
   * chain's unique `_id`s and the unique idempotency keys still decide: an entry refused (another
   * writer took its seq, or its key was posted before) stops its account's fast path, and that
   * account's remaining movements are posted one by one, finding earlier postings by key.
   * A refused movement (a covered balance would go below zero, a rule) answers as `post` would, in
   * the request's place; the others still move. Same keys, same results: safe to retry whole.
   */
  async postMany(
    reqs: PostingRequest[],
    /**
     * Heads the caller read a moment ago, by account id: not read again. One that moved since only
     * costs its account the careful path (its first entry meets an existing seq).
     */
    known: ReadonlyMap<string, AccountHead> = new Map(),
  ): Promise<Array<PostingResult | LedgerError>> {
    const results: Array<PostingResult | LedgerError | undefined> = new Array(reqs.length);
    // The sandbox rule (refuseLiveFromSandbox), read once per integration rather than once per entry.
    const sandboxed = new Set<string>();
    for (const id of new Set(reqs.filter((r) => r.mode === 'live' && r.integrationId).map((r) => r.integrationId!))) {
      const integration = await this.models.Integration.findById(id, { mode: 1 }).lean();
      if (integration?.mode === 'sandbox') sandboxed.add(id);
    }
    const chains = new Map<string, Chain>();
    const careful: number[] = [];
    reqs.forEach((r, index) => {
      const simple =
        Number.isSafeInteger(r.amountMinor) &&
        r.amountMinor !== 0 &&
        (r.mode === 'live' || r.mode === 'sandbox') &&
        missingFields(r).length === 0 &&
        !(r.mode === 'live' && r.integrationId && sandboxed.has(r.integrationId));
      // Anything out of the ordinary takes the careful path, which answers it as it deserves.
      if (!simple) return void careful.push(index);
      const accountId = accountIdOf(r.customerId, r.currency, r.mode);
      const chain = chains.get(accountId) ?? {
        account: { accountId, customerId: r.customerId, currency: r.currency, mode: r.mode },
        start: 0,
        head: { seq: 0, balanceMinor: 0 },
        todo: [],
      };
      chain.todo.push(index);
      chains.set(accountId, chain);
    });
    await limited([...chains.values()], AT_ONCE, async (c) => {
      c.head = known.get(c.account.accountId) ?? (await this.catchUp(c.account));
      c.start = c.head.seq;
    });
    // Every account's next entry, layer after layer, while its chain holds. Accounts are independent
    // chains: a few groups of them go side by side, each its own layers (a layer waits only for its
    // group's previous one, whose refusals stop their chains).
    const stopped = new Set<Chain>();
    const posted: Posted[] = [];
    const all = [...chains.values()];
    const groupCount = Math.max(1, Math.min(LAYER_GROUPS, Math.floor(all.length / LAYER_GROUP_MIN)));
    const groups = Array.from({ length: groupCount }, (_, g) => all.filter((_c, i) => i % groupCount === g));
    await settleAll(
      groups.map(async (group) => {
        if (group.length === 1) return this.insertRun(group[0]!, reqs, careful, posted, stopped);
        for (let layer = 0; ; layer++) {
          const docs: EntryDoc[] = [];
          const owners: Array<{ chain: Chain; index: number }> = [];
          for (const chain of group) {
            if (stopped.has(chain)) continue;
            // Movements the balance cannot cover are skipped here and answered by the careful path below.
            let index = chain.todo[layer];
            while (index !== undefined) {
              const req = reqs[index]!;
              const balanceAfterMinor = chain.head.balanceMinor + req.amountMinor;
              if (Number.isSafeInteger(balanceAfterMinor) && !uncovered(req, balanceAfterMinor)) break;
              careful.push(index);
              chain.todo.splice(layer, 1);
              index = chain.todo[layer];
            }
            if (index === undefined) continue;
            docs.push(entryAfter(chain.account.accountId, chain.head, reqs[index]!));
            owners.push({ chain, index });
          }
          if (docs.length === 0) return;
          const refused = new Set<number>();
          try {
            // Lean: the documents are built whole here (no casting of 15,000 documents).
            await this.models.LedgerEntry.insertMany(docs, { ordered: false, lean: true });
          } catch (err) {
            const failed = duplicateKeyIndexes(err);
            // Not a refusal we can place: nothing of this layer is trusted as written; `post` sorts it out.
            if (!failed) throw err;
            failed.forEach((i) => refused.add(i));
          }
          owners.forEach(({ chain, index }, i) => {
            if (refused.has(i)) {
              stopped.add(chain);
              return;
            }
            const doc = docs[i]!;
            chain.head = { seq: doc.seq, balanceMinor: doc.balanceAfterMinor };
            const { seq, balanceMinor: balanceAfterMinor } = chain.head;
            posted.push({ index, entryId: doc._id, key: reqs[index]!.idempotencyKey, seq, balanceAfterMinor });
          });
        }
      }),
    );

    // Keys and cached balances side by side: neither needs the other (a reader walks the chain
    // forward from any cached balance, and finds an entry whose key is missing the slow way).
    const keyChunks = Array.from({ length: Math.ceil(posted.length / 1000) }, (_, k) =>
      posted.slice(k * 1000, (k + 1) * 1000),
    );
    await settleAll([
      limited(keyChunks, 2, async (chunk) => {
        await this.models.LedgerKey.insertMany(
          chunk.map((p) => ({ _id: p.key, entryId: p.entryId })),
          { ordered: false, lean: true },
        ).catch((err: unknown) => {
          if (!duplicateKeyIndexes(err)) throw err;
        });
      }),
      limited([...chains.values()], AT_ONCE, (c) => this.advance(c.account, c.start, c.head.seq, c.head.balanceMinor)),
    ]);

    for (const p of posted) {
      results[p.index] = { entryId: p.entryId, seq: p.seq, balanceAfterMinor: p.balanceAfterMinor, applied: true };
    }
    // What the fast path did not write, in request order per account (`post` serialises each chain).
    const left = [...careful];
    for (const chain of chains.values()) {
      if (stopped.has(chain)) left.push(...chain.todo.filter((i) => results[i] === undefined));
    }
    for (const i of left.sort((a, b) => a - b)) {
      try {
        // Not through `post`'s queue: a batch of it runs this very call.
        results[i] = await this.postNow(reqs[i]!);
      } catch (err) {
        if (!(err instanceof LedgerError) || err.transient) throw err;
        results[i] = err;
      }
    }
    return results as Array<PostingResult | LedgerError>;
  }

  /**
   * An account alone in its group (one account's waiting postings, see `post`): its whole run of
   * entries in one ordered insert. The first entry refused (another writer took its seq, or its key
   * was posted before) stops the insert there, so what went in is an unbroken chain; the rest is
   * left to the careful path, like a stopped chain's.
   */
  private async insertRun(
    chain: Chain,
    reqs: PostingRequest[],
    careful: number[],
    posted: Posted[],
    stopped: Set<Chain>,
  ): Promise<void> {
    const { accountId } = chain.account;
    const docs: EntryDoc[] = [];
    const owners: number[] = [];
    let head = chain.head;
    for (const index of chain.todo) {
      const req = reqs[index]!;
      const balanceAfterMinor = head.balanceMinor + req.amountMinor;
      // Movements the balance cannot cover are answered by the careful path, like postMany's layers do.
      if (!Number.isSafeInteger(balanceAfterMinor) || uncovered(req, balanceAfterMinor)) {
        careful.push(index);
        continue;
      }
      const doc = entryAfter(accountId, head, req);
      head = { seq: doc.seq, balanceMinor: doc.balanceAfterMinor };
      docs.push(doc);
      owners.push(index);
    }
    chain.todo = owners;
    let written = docs.length;
    try {
      if (docs.length > 0) await this.models.LedgerEntry.insertMany(docs, { ordered: true, lean: true });
    } catch (err) {
      const refused = duplicateKeyIndexes(err);
      if (!refused || refused.length !== 1) throw err;
      written = refused[0]!;
      stopped.add(chain);
    }
    for (const [i, doc] of docs.slice(0, written).entries()) {
      chain.head = { seq: doc.seq, balanceMinor: doc.balanceAfterMinor };
      const key = reqs[owners[i]!]!.idempotencyKey;
      posted.push({ index: owners[i]!, entryId: doc._id, key, seq: doc.seq, balanceAfterMinor: doc.balanceAfterMinor });
    }
  }

  /**
   * One account's head (its last seq and balance), brought up to the end of its chain: by _id alone
   * (no scan of the customer's entries). Handed back to `postMany`, it saves reading it again.
   */
  async head(customerId: string, currency: string, mode: MoneyMode): Promise<AccountHead> {
    return this.catchUp({ accountId: accountIdOf(customerId, currency, mode), customerId, currency, mode });
  }

  /** A customer's balances in one money mode, each brought up to the head of its chain. */
  async balances(
    customerId: string,
    mode: MoneyMode,
  ): Promise<Array<{ currency: string; balanceMinor: number; seq: number }>> {
    // Entries from before modes existed have no mode field: they are live.
    const modeFilter = mode === 'live' ? { $ne: 'sandbox' } : 'sandbox';
    const currencies = await this.models.LedgerEntry.distinct('currency', { customerId, mode: modeFilter });
    const heads = await Promise.all(
      currencies.map((currency) =>
        this.catchUp({ accountId: accountIdOf(customerId, currency, mode), customerId, currency, mode }),
      ),
    );
    return currencies
      .map((currency, i) => ({ currency, balanceMinor: heads[i]!.balanceMinor, seq: heads[i]!.seq }))
      .sort((a, b) => a.currency.localeCompare(b.currency));
  }

  async entries(customerId: string) {
    const entries = await this.models.LedgerEntry.find({ customerId }).sort({ createdAt: 1, seq: 1 }).lean();
    return entries.map((e) => ({ ...e, mode: modeOf(e) }));
  }

  /**
   * Proves balance = sum of entries for every account, live and sandbox, that each entry's
   * balanceAfter follows from its predecessor, and that no entry sits in an account of the other
   * mode. Returns the accounts that disagree (empty when sound).
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
        if (accountIdOf(e.customerId, e.currency, modeOf(e)) !== accountId) {
          problems.push(`${accountId}: seq ${e.seq} is ${modeOf(e)} money in another account`);
        }
        if (e.seq !== i + 1) problems.push(`${accountId}: gap before seq ${e.seq}`);
        if (e.balanceAfterMinor !== sum)
          problems.push(`${accountId}: seq ${e.seq} says ${e.balanceAfterMinor}, sum is ${sum}`);
      });
      const first = entries[0];
      const head = first
        ? await this.catchUp({ accountId, customerId: first.customerId, currency: first.currency, mode: modeOf(first) })
        : undefined;
      if (head && head.balanceMinor !== sum)
        problems.push(`${accountId}: balance ${head.balanceMinor} != ledger sum ${sum}`);
    }
    return { accounts: accounts.length, entries: entryCount, problems };
  }

  /**
   * The last line behind the rules: a sandbox integration (whose messages anyone can send, and
   * which may skip verification) moves no live money, in either direction. By _id, one read per
   * new entry. An integration switched to sandbox with live money in flight thus holds its later
   * live postings for a person (the callers hold on a refused posting) rather than guessing.
   */
  private async refuseLiveFromSandbox(req: PostingRequest): Promise<void> {
    if (req.mode !== 'live' || !req.integrationId) return;
    const integration = await this.models.Integration.findById(req.integrationId, { mode: 1 }).lean();
    if (integration?.mode === 'sandbox') {
      throw new LedgerError('live money from a sandbox integration', {
        key: req.idempotencyKey,
        integrationId: req.integrationId,
      });
    }
  }

  /**
   * The entry an idempotency key already moved money with, by _id twice (key document, then entry):
   * the unique index on entries stays the guarantee, this is only the fast way to find the winner.
   */
  private async postedUnder(key: string) {
    const known = await this.models.LedgerKey.findById(key).lean();
    return known ? this.models.LedgerEntry.findById(known.entryId).lean() : null;
  }

  private async rememberKey(key: string, entryId: string): Promise<void> {
    // Two strings and a unique _id: nothing for mongoose's document machinery to cast or validate. A key
    // already there (an earlier attempt wrote it) counts as written.
    await insertsFor(this.models).keys.add({ _id: key, entryId });
  }

  /** The head this process saw last, else the balance document's as it is (either may lag: see catchUp). */
  private async cachedHead(accountId: string): Promise<AccountHead> {
    const known = knownHeadsOf(this.models).get(accountId);
    if (known) return known;
    const cached = await this.models.Balance.findById(accountId, { seq: 1, balanceMinor: 1 }).lean();
    return { seq: cached?.seq ?? 0, balanceMinor: cached?.balanceMinor ?? 0 };
  }

  /** A head read from the chain itself (an entry written or walked over): the furthest one is kept. */
  private sawHead(accountId: string, head: AccountHead): void {
    const heads = knownHeadsOf(this.models);
    const known = heads.get(accountId);
    if (known && known.seq >= head.seq) return;
    if (heads.size >= KNOWN_HEADS_MAX) heads.clear();
    heads.set(accountId, { seq: head.seq, balanceMinor: head.balanceMinor });
  }

  /** Advances the cached balance over any entries a crashed writer left unapplied. */
  private async catchUp(account: Account): Promise<{ seq: number; balanceMinor: number }> {
    const { accountId } = account;
    for (;;) {
      const cached = await this.models.Balance.findById(accountId).lean();
      let head = { seq: cached?.seq ?? 0, balanceMinor: cached?.balanceMinor ?? 0 };
      const start = head.seq;
      for (;;) {
        const next = await this.models.LedgerEntry.findById(`${accountId}:${head.seq + 1}`).lean();
        if (!next) break;
        head = { seq: next.seq, balanceMinor: next.balanceAfterMinor };
      }
      if (head.seq === start) {
        if (head.seq > 0) this.sawHead(accountId, head);
        return head;
      }
      await this.advance(account, start, head.seq, head.balanceMinor);
      // Re-read: a concurrent writer may have moved further than we saw.
    }
  }

  private async advance(account: Account, fromSeq: number, toSeq: number, balanceMinor: number): Promise<void> {
    const { accountId, customerId, currency, mode } = account;
    if (toSeq <= fromSeq) return;
    // Every caller hands over a head it wrote or walked: the chain's own, whatever the write below does.
    this.sawHead(accountId, { seq: toSeq, balanceMinor });
    // By _id alone (FerretDB scans on any compound filter). Racing writers may leave the cache a
    // step behind; no harm: every reader walks the chain forward from it (catchUp) before use.
    // Through the driver, with the timestamps mongoose's would add: every field is this ledger's own.
    const write = () => {
      const now = new Date();
      return this.models.Balance.collection.updateOne(
        { _id: accountId as never },
        {
          $set: { seq: toSeq, balanceMinor, customerId, currency, mode, updatedAt: now },
          $setOnInsert: { createdAt: now },
        },
        { upsert: true },
      );
    };
    try {
      await write();
    } catch (err) {
      // Two first upserts of one account race: the loser's insert hits the winner's _id (a reader
      // catching up beside a writer answered 500 for it). The document exists now: update it.
      if (!isDuplicateKey(err)) throw err;
      await write();
    }
  }
}

/** Reads or writes by _id in flight at once in `postMany`. */
const AT_ONCE = 16;
/** `postMany`'s account groups inserting their layers side by side, and the fewest accounts worth a group. */
const LAYER_GROUPS = 3;
const LAYER_GROUP_MIN = 100;

/** Like Promise.all, but a failure is thrown only once every other is done (no write left in flight). */
async function settleAll(work: Array<Promise<void>>): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function limited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
