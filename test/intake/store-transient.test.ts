import mongoose from 'mongoose';
import { isTransientStoreError, retryTransientStoreErrors, StoreBusyError } from '../../src/shared/db/transient';

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

function flaky<T>(failures: unknown[], result: T) {
  let calls = 0;
  const write = async () => {
    calls++;
    const failure = failures.shift();
    if (failure) throw failure;
    return result;
  };
  return { write, calls: () => calls };
}

test('a write that meets SQLITE_BUSY is sent again until it goes through', async () => {
  const w = flaky([busy(), busy()], 'stored');
  await expect(retryTransientStoreErrors('store IPN', w.write, { baseDelayMs: 1 })).resolves.toBe('stored');
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

test('other errors pass through at once, untouched', async () => {
  const other = new mongoose.mongo.MongoServerError({
    ok: 0,
    code: 1,
    codeName: 'InternalError',
    errmsg: 'no such table',
  });
  const w = flaky([other], 'never');
  await expect(retryTransientStoreErrors('store IPN', w.write, { baseDelayMs: 1 })).rejects.toBe(other);
  expect(w.calls()).toBe(1);
  expect(isTransientStoreError(new Error('database is locked'))).toBe(false);
});

test('a store that stays busy ends in an error naming the write, with the store error as cause', async () => {
  const w = flaky([busy(), busy(), busy()], 'never');
  const err = await retryTransientStoreErrors('store IPN shop/1', w.write, { attempts: 3, baseDelayMs: 1 }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreBusyError);
  expect((err as Error).message).toBe('store IPN shop/1: the store stayed busy through 3 attempts');
  expect(((err as Error).cause as Error).message).toMatch(/SQLITE_BUSY/);
  expect(w.calls()).toBe(3);
});

test('against the real store, a duplicate key is an answer, not contention: no retry', async () => {
  const client = new mongoose.mongo.MongoClient(process.env.MONGODB_URI!);
  try {
    const claims = client.db('store_transient').collection<{ _id: string }>('claims');
    await claims.deleteMany({});
    await claims.insertOne({ _id: 'k' });
    let calls = 0;
    const err = await retryTransientStoreErrors('claim k', () => (calls++, claims.insertOne({ _id: 'k' })), {
      baseDelayMs: 1,
    }).catch((e: unknown) => e);
    expect((err as { code?: number }).code).toBe(11000);
    expect(calls).toBe(1);
  } finally {
    await client.close();
  }
});
