import mongoose from 'mongoose';
import { isTransientStoreError, StoreBusyError } from '../../src/shared/db/transient';
import { gatheredInserts } from '../../src/shared/db/gathered';

// What the driver got from FerretDB 1.24 on SQLite when the busy timeout ran out (seen with busy_timeout(1)).
const busy = () =>
  new mongoose.mongo.MongoServerError({
    ok: 0,
    code: 1,
    codeName: 'InternalError',
    errmsg:
      '[msg_insert.go:168 handler.(*Handler).MsgInsert] [collection.go:135 sqlite.(*collection).InsertAll.func1] ' +
      'database is locked (5) (SQLITE_BUSY)',
  });

/** A collection whose inserts fail as given, then go through; every call is counted. */
function flaky(failures: unknown[]) {
  let calls = 0;
  const insertMany = async (docs: unknown[]) => {
    calls++;
    const failure = failures.shift();
    if (failure) throw failure;
    return { insertedCount: docs.length };
  };
  return { collection: { insertMany }, calls: () => calls };
}

test('a write that meets SQLITE_BUSY is sent again until it goes through', async () => {
  const w = flaky([busy(), busy()]);
  await expect(gatheredInserts('store IPN', w.collection, 'written').add({ _id: 1 })).resolves.toBeUndefined();
  expect(w.calls()).toBe(3);
});

test('PostgreSQL serialization failures and deadlocks count as contention too', () => {
  const pg = (state: string) =>
    new mongoose.mongo.MongoServerError({
      ok: 0,
      code: 1,
      codeName: 'InternalError',
      errmsg: `ERROR: could not serialize access (SQLSTATE ${state})`,
    });
  expect(isTransientStoreError(pg('40001'))).toBe(true);
  expect(isTransientStoreError(pg('40P01'))).toBe(true);
  expect(isTransientStoreError(pg('23505'))).toBe(false);
});

test('other errors are not retried: they fail at once, naming the write, the store error as cause', async () => {
  const other = new mongoose.mongo.MongoServerError({
    ok: 0,
    code: 1,
    codeName: 'InternalError',
    errmsg: 'no such table',
  });
  const w = flaky([other]);
  const err = await gatheredInserts('store IPN', w.collection, 'written')
    .add({ _id: 1 })
    .catch((e: unknown) => e);
  expect((err as Error).cause).toBe(other);
  expect(w.calls()).toBe(1);
  expect(isTransientStoreError(new Error('database is locked'))).toBe(false);
});

test('a store that stays busy ends in an error naming the write, with the store error as cause', async () => {
  const w = flaky([busy(), busy(), busy(), busy(), busy()]);
  const err = await gatheredInserts('store IPN shop/1', w.collection, 'written')
    .add({ _id: 1 })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(StoreBusyError);
  expect((err as Error).message).toBe('store IPN shop/1: the store stayed busy through 5 attempts');
  expect(((err as Error).cause as Error).message).toMatch(/SQLITE_BUSY/);
  expect(w.calls()).toBe(5);
});

test('against the real store, a duplicate key is an answer, not contention: no retry', async () => {
  const client = new mongoose.mongo.MongoClient(process.env.MONGODB_URI!);
  try {
    const claims = client.db('store_transient').collection<{ _id: string }>('claims');
    await claims.deleteMany({});
    await claims.insertOne({ _id: 'k' });
    const sent = jest.spyOn(claims, 'insertMany');
    const err = await gatheredInserts('claim k', claims, 'refused')
      .add({ _id: 'k' })
      .catch((e: unknown) => e);
    expect((err as { code?: number }).code).toBe(11000);
    expect(sent).toHaveBeenCalledTimes(1);
  } finally {
    await client.close();
  }
});
