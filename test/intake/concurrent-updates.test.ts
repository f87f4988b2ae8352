import crypto from 'node:crypto';
import { connectDatabase, DEFAULT_MAX_POOL_SIZE, poolSizeFor, type Database } from '../../src/shared/db/connection';

/**
 * FerretDB v1 holds the connection an update read its document with while it takes a second one to
 * write (src/shared/db/connection.ts). Service processes sending many updates of stored documents at
 * once must never leave every pooled connection waiting for a second: the store would stop answering
 * everyone, for good. Eight handles (the bench's four processes, twice over) stay within the embedded
 * store's pool (tools/dev/services/postgres-server.ts) at our pool size; at the driver's default (100)
 * they hung it within four rounds, as two such handles did against FerretDB's own default pool (50).
 */
const HANDLES = 8;
const N = 100;
const ROUNDS = 6;
let handles: Array<{ db: Database; ids: string[] }> = [];

beforeAll(async () => {
  const name = `test-concurrent-updates-${crypto.randomBytes(3).toString('hex')}`;
  for (let h = 0; h < HANDLES; h++) {
    const db = await connectDatabase(process.env.MONGODB_URI!, name);
    handles.push({ db, ids: Array.from({ length: N }, (_, i) => `h${h}-${i}`) });
  }
});
afterAll(async () => {
  await handles[0]?.db.connection.dropDatabase().catch(() => {});
  await Promise.all(handles.map(({ db }) => db.close()));
  handles = [];
});

test('eight processes updating 100 stored documents each, at once, are all answered, round after round', async () => {
  for (const { db, ids } of handles) {
    await db.connection.collection('things').insertMany(ids.map((_id) => ({ _id: _id as never, round: -1 })));
  }
  for (let round = 0; round < ROUNDS; round++) {
    let answered = 0;
    const all = Promise.all(
      handles.flatMap(({ db, ids }) =>
        ids.map((_id) =>
          db.connection
            .collection('things')
            .updateOne({ _id: _id as never }, { $set: { round } })
            .then(() => answered++),
        ),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`round ${round}: ${answered} of ${HANDLES * N} updates answered in 20 s`),
        20_000,
      );
    });
    const outcome = await Promise.race([all.then(() => 'answered'), stalled]);
    clearTimeout(timer);
    expect(outcome).toBe('answered');
  }
  const counted = await handles[0]!.db.connection.collection('things').countDocuments({ round: ROUNDS - 1 });
  expect(counted).toBe(HANDLES * N);
}, 180_000);

test('the pool is ours unless MONGODB_URI names its own', () => {
  expect(poolSizeFor('mongodb://127.0.0.1:27017')).toEqual({ maxPoolSize: DEFAULT_MAX_POOL_SIZE });
  expect(poolSizeFor('mongodb://h:1/?replicaSet=rs0')).toEqual({ maxPoolSize: DEFAULT_MAX_POOL_SIZE });
  expect(poolSizeFor('mongodb://h:1/?replicaSet=rs0&maxPoolSize=40')).toEqual({});
  expect(poolSizeFor('mongodb://h:1/?maxpoolsize=40')).toEqual({});
  // What the driver was given, on a live handle.
  expect(handles[0]!.db.connection.getClient().options.maxPoolSize).toBe(DEFAULT_MAX_POOL_SIZE);
});
