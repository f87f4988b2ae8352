import crypto from 'node:crypto';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import { Ledger, type PostingRequest } from '../../src/shared/ledger';

/**
 * The posting path finds what it needs by _id only, and stays exactly-once when a writer died
 * between the entry (the commit point) and its key document.
 */
let db: Database;
/** A second handle on the same database: another process's ledger (this process queues its own postings). */
let other: Database;
let ledger: Ledger;
let otherLedger: Ledger;
const posting = (key: string, amountMinor = 500): PostingRequest => ({
  customerId: 'c1',
  currency: 'USD',
  mode: 'live',
  amountMinor,
  idempotencyKey: key,
  reason: 'manual',
});

beforeAll(async () => {
  db = await connectDatabase(process.env.MONGODB_URI!, `test-ledger-${crypto.randomBytes(3).toString('hex')}`);
  await db.models.LedgerEntry.init();
  ledger = new Ledger(db.models);
  other = await connectDatabase(process.env.MONGODB_URI!, db.connection.name);
  otherLedger = new Ledger(other.models);
});
afterAll(async () => {
  await db.connection.dropDatabase().catch(() => {});
  await other.close();
  await db.close();
});
/** Postings to one customer's USD account; a debit may have to stay covered. */
const postingsTo =
  (customerId: string) =>
  (key: string, amountMinor: number, mustStayCovered = false): PostingRequest => ({
    ...posting(key, amountMinor),
    customerId,
    mustStayCovered,
  });
/** Two processes posting side by side: each its own queue, racing for the chain's seqs and keys. */
const eitherLedger = (i: number) => (i % 2 === 0 ? ledger : otherLedger);

test('a key document points at its entry; posting again answers from it', async () => {
  const first = await ledger.post(posting('k1'));
  expect(first).toMatchObject({ entryId: 'c1:USD:1', seq: 1, balanceAfterMinor: 500, applied: true });
  expect(await db.models.LedgerKey.findById('k1').lean()).toMatchObject({ entryId: 'c1:USD:1' });
  expect(await ledger.post(posting('k1'))).toMatchObject({ entryId: 'c1:USD:1', applied: false });
  await expect(ledger.post(posting('k1', 600))).rejects.toThrow(/idempotency key reused/);
});

test('an entry whose key document was never written (crash) is still found: no second movement', async () => {
  await ledger.post(posting('k2', 250));
  await db.models.LedgerKey.deleteOne({ _id: 'k2' });
  const again = await ledger.post(posting('k2', 250));
  expect(again).toMatchObject({ entryId: 'c1:USD:2', applied: false });
  expect(await db.models.LedgerKey.findById('k2').lean()).toMatchObject({ entryId: 'c1:USD:2' });
  expect(await db.models.LedgerEntry.countDocuments({ idempotencyKey: 'k2' })).toBe(1);
  expect((await ledger.balances('c1', 'live'))[0]).toMatchObject({ balanceMinor: 750, seq: 2 });
});

test('concurrent postings of distinct keys form a gapless chain; of one key, one entry', async () => {
  const keys = Array.from({ length: 12 }, (_, i) => `par-${i}`);
  await Promise.all([...keys, ...keys].map((k, i) => eitherLedger(i).post(posting(k, 1))));
  const check = await ledger.check();
  expect(check.problems).toEqual([]);
  expect((await ledger.balances('c1', 'live'))[0]).toMatchObject({ balanceMinor: 762, seq: 14 });
});

test('debits that must stay covered: of two racing for one balance, exactly one passes', async () => {
  const account = (key: string, amountMinor: number, mustStayCovered = false): PostingRequest => ({
    customerId: 'c2',
    currency: 'EUR',
    mode: 'live',
    amountMinor,
    idempotencyKey: key,
    reason: 'manual',
    mustStayCovered,
  });
  await ledger.post(account('c2-topup', 1000));
  const results = await Promise.allSettled([
    ledger.post(account('c2-a', -600, true)),
    otherLedger.post(account('c2-b', -600, true)),
  ]);
  expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  expect(refused.reason.message).toMatch(/^insufficient balance/);
  expect((await ledger.balances('c2', 'live'))[0]).toMatchObject({ balanceMinor: 400 });
  // The one that passed is still idempotent; an uncovered debit without the flag is the caller's business.
  const winner = results.findIndex((r) => r.status === 'fulfilled') === 0 ? 'c2-a' : 'c2-b';
  expect(await ledger.post(account(winner, -600, true))).toMatchObject({ applied: false });
  expect(await ledger.post(account('c2-c', -500))).toMatchObject({ applied: true, balanceAfterMinor: -100 });
  expect((await ledger.check()).problems).toEqual([]);
});

test("readers catching up beside an account's first postings never fail, and see a balance of the chain", async () => {
  // Each account's first balance cache document is made by whoever gets there first: a reader's
  // catch-up or the writer. Both upsert the same _id; the loser used to throw E11000 (a 500 to the API).
  const accounts = Array.from({ length: 40 }, (_, i) => `race-${i}`);
  await Promise.all(
    accounts.map(async (customerId) => {
      const write = async (n: number) =>
        ledger.post({ ...posting(`${customerId}:${n}`, 100), customerId, idempotencyKey: `${customerId}:${n}` });
      const read = () => ledger.balances(customerId, 'live');
      const seen = await Promise.all([write(1), read(), read(), write(2), read()]);
      for (const balances of [seen[1], seen[2], seen[4]] as Array<Awaited<ReturnType<typeof read>>>) {
        expect([
          [],
          [{ currency: 'USD', balanceMinor: 100, seq: 1 }],
          [{ currency: 'USD', balanceMinor: 200, seq: 2 }],
        ]).toContainEqual(balances);
      }
      expect(await read()).toEqual([{ currency: 'USD', balanceMinor: 200, seq: 2 }]);
    }),
  );
});

/**
 * A process that just started (its own handle, so it has seen no head of any chain yet): what it
 * knows of an account comes from the balance document. Closed once the posting is answered.
 */
async function inFreshProcess<T>(post: (ledger: Ledger) => Promise<T>): Promise<T> {
  const handle = await connectDatabase(process.env.MONGODB_URI!, db.connection.name);
  try {
    return await post(new Ledger(handle.models));
  } finally {
    await handle.close();
  }
}

test('a balance behind its chain (a writer died before updating it): postings chain after the true head', async () => {
  const covered = postingsTo('c3');
  await ledger.post(covered('lag-1', 100));
  await ledger.post(covered('lag-2', 300));
  // The crash: entry 2 and its key are written, the balance still says seq 1, 100.
  await db.models.Balance.updateOne({ _id: 'c3:USD' }, { $set: { seq: 1, balanceMinor: 100 } });
  // Covered by the true balance (400), not by the cached one (100).
  expect(await inFreshProcess((l) => l.post(covered('lag-3', -250, true)))).toMatchObject({
    seq: 3,
    balanceAfterMinor: 150,
  });
  await db.models.Balance.updateOne({ _id: 'c3:USD' }, { $set: { seq: 1, balanceMinor: 100 } });
  await expect(inFreshProcess((l) => l.post(covered('lag-4', -200, true)))).rejects.toThrow(/insufficient balance/);
  // Posting a key again while the cache lags answers as made, at its own seq.
  await db.models.Balance.updateOne({ _id: 'c3:USD' }, { $set: { seq: 1, balanceMinor: 100 } });
  expect(await inFreshProcess((l) => l.post(covered('lag-2', 300)))).toMatchObject({ seq: 2, applied: false });
  expect(await inFreshProcess((l) => l.post(covered('lag-5', 50)))).toMatchObject({
    seq: 4,
    balanceAfterMinor: 200,
    applied: true,
  });
  expect((await ledger.check()).problems).toEqual([]);
  expect((await ledger.balances('c3', 'live'))[0]).toMatchObject({ balanceMinor: 200, seq: 4 });
});

test("one process's postings to one account go one batch after the other: no insert lost to a race", async () => {
  const creates = jest.spyOn(db.models.LedgerEntry, 'create');
  const many = jest.spyOn(db.models.LedgerEntry, 'insertMany');
  try {
    const burst = Array.from({ length: 20 }, (_, i) => ({ ...posting(`burst-${i}`, 10), customerId: 'c4' }));
    const results = await Promise.all(burst.map((p) => ledger.post(p)));
    expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // One entry written each: none refused because another posting of this process took its seq.
    const written = creates.mock.calls.length + many.mock.calls.reduce((n, [docs]) => n + (docs as []).length, 0);
    expect(written).toBe(20);
    // Posted together: the twenty waited for one another, so a handful of inserts carried them.
    expect(creates.mock.calls.length + many.mock.calls.length).toBeLessThanOrEqual(2);
  } finally {
    creates.mockRestore();
    many.mockRestore();
  }
  expect((await ledger.balances('c4', 'live'))[0]).toMatchObject({ balanceMinor: 200, seq: 20 });
  expect((await ledger.check()).problems).toEqual([]);
});

test('postings that wait together are each answered as alone: a key twice, an uncovered debit, zero', async () => {
  const to = postingsTo('c6');
  await ledger.post(to('together-0', 100));
  const answers = await Promise.allSettled([
    ledger.post(to('together-1', 50)),
    ledger.post(to('together-1', 50)), // the same movement again (a retry beside its first try)
    ledger.post(to('together-2', -500, true)), // more than the balance will ever be here
    ledger.post(to('together-3', 0)),
    ledger.post(to('together-4', 25)),
  ]);
  const [first, again, uncovered, zero, last] = answers;
  expect(first).toMatchObject({ status: 'fulfilled', value: { applied: true } });
  expect(again).toMatchObject({ status: 'fulfilled', value: { applied: false } });
  if (first.status === 'fulfilled' && again.status === 'fulfilled') expect(again.value.seq).toBe(first.value.seq);
  expect(uncovered).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/insufficient/) } });
  expect(zero).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/non-zero/) } });
  expect(last).toMatchObject({ status: 'fulfilled', value: { applied: true, balanceAfterMinor: 175 } });
  expect((await ledger.balances('c6', 'live'))[0]).toMatchObject({ balanceMinor: 175, seq: 3 });
  expect((await ledger.check()).problems).toEqual([]);
});

test('a process posting to an account again chains after the head it wrote, without reading the balance', async () => {
  const to = postingsTo('c7');
  await ledger.post(to('again-1', 100));
  const reads = jest.spyOn(db.models.Balance, 'findById');
  try {
    expect(await ledger.post(to('again-2', 40))).toMatchObject({ seq: 2, balanceAfterMinor: 140, applied: true });
    expect(reads).not.toHaveBeenCalled();
  } finally {
    reads.mockRestore();
  }
  expect((await ledger.balances('c7', 'live'))[0]).toMatchObject({ balanceMinor: 140, seq: 2 });
});

test('another process moved the chain since: the head remembered here is behind, and no seq is skipped', async () => {
  const to = postingsTo('c8');
  await ledger.post(to('moved-1', 100));
  await otherLedger.post(to('moved-2', 500));
  await otherLedger.post(to('moved-3', 25));
  // This process last saw seq 1 and 100: the debit is judged on the true balance (625), at seq 4.
  expect(await ledger.post(to('moved-4', -600, true))).toMatchObject({ seq: 4, balanceAfterMinor: 25, applied: true });
  await otherLedger.post(to('moved-5', 5));
  // And a debit the true balance (30) cannot cover is refused, though the head remembered here says 25 too.
  await expect(ledger.post(to('moved-6', -31, true))).rejects.toThrow(/insufficient balance/);
  expect(await ledger.post(to('moved-7', 1))).toMatchObject({ seq: 6, balanceAfterMinor: 31, applied: true });
  expect((await ledger.check()).problems).toEqual([]);
  expect((await otherLedger.balances('c8', 'live'))[0]).toMatchObject({ balanceMinor: 31, seq: 6 });
});

describe('entries and balances written through the driver', () => {
  test('an entry holds the given schema fields, none undefined as null; the balance its timestamps', async () => {
    const req = { ...posting('shape-1', 700), customerId: 'shape', txnId: 'T1', extra: 'not a field' };
    await ledger.post(req as PostingRequest);
    const entry = await db.models.LedgerEntry.collection.findOne({ idempotencyKey: 'shape-1' });
    expect(Object.keys(entry!).sort()).toEqual(
      [
        '_id',
        'accountId',
        'amountMinor',
        'balanceAfterMinor',
        'createdAt',
        'currency',
        'customerId',
        'idempotencyKey',
        'kind',
        'mode',
        'reason',
        'seq',
        'txnId',
      ].sort(),
    );
    expect(entry).toMatchObject({ _id: 'shape:USD:1', kind: 'credit', amountMinor: 700, balanceAfterMinor: 700 });
    expect(entry!.createdAt).toBeInstanceOf(Date);
    // The mongoose model reads it back whole and valid.
    await expect(new db.models.LedgerEntry(entry).validate()).resolves.toBeUndefined();
    const balance = await db.models.Balance.collection.findOne({ _id: 'shape:USD' as never });
    expect(balance).toMatchObject({ seq: 1, balanceMinor: 700, customerId: 'shape', currency: 'USD', mode: 'live' });
    expect(balance!.createdAt).toBeInstanceOf(Date);
    expect(balance!.updatedAt).toBeInstanceOf(Date);
    await ledger.post({ ...posting('shape-2', 300), customerId: 'shape' });
    const after = await db.models.Balance.collection.findOne({ _id: 'shape:USD' as never });
    expect(after).toMatchObject({ seq: 2, balanceMinor: 1000, createdAt: balance!.createdAt });
  });

  test('a movement without a customer, currency, reason or key is refused by name and writes nothing', async () => {
    for (const field of ['customerId', 'currency', 'reason', 'idempotencyKey'] as const) {
      const req = { ...posting(`missing-${field}`), customerId: 'missing', [field]: '' };
      await expect(ledger.post(req)).rejects.toThrow(new RegExp(`a movement needs these fields.*${field}`));
    }
    expect(await db.models.LedgerEntry.countDocuments({ customerId: 'missing' })).toBe(0);
    expect(await db.models.LedgerEntry.countDocuments({ idempotencyKey: /^missing-/ })).toBe(0);
  });
});

test('lone postings to many accounts at once share their inserts; each is answered as alone', async () => {
  const url = new URL(process.env.MONGODB_URI!);
  url.searchParams.set('monitorCommands', 'true');
  const watched = await connectDatabase(url.toString(), db.connection.name);
  try {
    const inserts = new Map<string, number>();
    watched.connection.getClient().on('commandStarted', (e) => {
      const into = String((e.command as Record<string, unknown>).insert ?? '');
      if (e.commandName === 'insert') inserts.set(into, (inserts.get(into) ?? 0) + 1);
    });
    const burst = new Ledger(watched.models);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => burst.post({ ...posting(`gathered-${i}`, 100 + i), customerId: `g${i}` })),
    );
    expect(results.map((r) => [r.entryId, r.balanceAfterMinor, r.applied])).toEqual(
      Array.from({ length: 20 }, (_, i) => [`g${i}:USD:1`, 100 + i, true]),
    );
    expect(await db.models.LedgerKey.countDocuments({ _id: /^gathered-/ })).toBe(20);
    expect(inserts.get('ledger_entries')).toBeLessThan(10);
    expect(inserts.get('ledger_keys')).toBeLessThan(10);
    // Posted again at once: every one answers as posted before, nothing moves.
    const again = await Promise.all(
      Array.from({ length: 20 }, (_, i) => burst.post({ ...posting(`gathered-${i}`, 100 + i), customerId: `g${i}` })),
    );
    expect(again.every((r) => !r.applied)).toBe(true);
    expect(await db.models.LedgerEntry.countDocuments({ idempotencyKey: /^gathered-/ })).toBe(20);
  } finally {
    await watched.close();
  }
});
