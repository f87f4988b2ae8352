import crypto from 'node:crypto';
import { Types } from 'mongoose';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import { Gathered, gatheredDeletes, gatheredInserts } from '../../src/shared/db/gathered';
import { isDuplicateKey } from '../../src/shared/db/duplicate-keys';

/**
 * The door's writes in a burst (src/shared/db/gathered.ts): one in flight at a time, the others
 * gathered into the next command, and every caller answered for its own document.
 */
let db: Database;

beforeAll(async () => {
  db = await connectDatabase(process.env.MONGODB_URI!, `test-gathered-${crypto.randomBytes(3).toString('hex')}`);
});
afterAll(async () => {
  await db.connection.dropDatabase().catch(() => {});
  await db.close();
});

test('a lone write goes at once; those arriving while it runs go together as the next one', async () => {
  const sent: number[][] = [];
  let release!: () => void;
  const first = new Promise<void>((r) => (release = r));
  const gathered = new Gathered<number>(async (items) => {
    sent.push([...items]);
    if (sent.length === 1) await first;
    return items.map(() => undefined);
  });
  const one = gathered.add(1);
  await new Promise((r) => setImmediate(r));
  expect(sent).toEqual([[1]]);
  const more = [2, 3, 4].map((n) => gathered.add(n));
  await new Promise((r) => setImmediate(r));
  expect(sent).toEqual([[1]]);
  release();
  await Promise.all([one, ...more]);
  expect(sent).toEqual([[1], [2, 3, 4]]);
});

test('a write carries at most `max` items; the rest go in the following ones', async () => {
  const sent: number[][] = [];
  const gathered = new Gathered<number>(
    async (items) => {
      sent.push([...items]);
      return items.map(() => undefined);
    },
    { max: 3 },
  );
  await Promise.all([1, 2, 3, 4, 5, 6, 7].map((n) => gathered.add(n)));
  expect(sent).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
});

test('each caller gets its own answer; a write that fails whole fails only its own callers', async () => {
  let calls = 0;
  const gathered = new Gathered<number>(
    async (items) => {
      calls++;
      if (items.includes(99)) throw new Error('store down');
      return items.map((n) => (n % 2 ? new Error(`odd ${n}`) : undefined));
    },
    { max: 2 },
  );
  const answers = await Promise.allSettled([2, 3, 99, 4, 6].map((n) => gathered.add(n)));
  expect(answers.map((a) => (a.status === 'fulfilled' ? 'ok' : (a.reason as Error).message))).toEqual([
    'ok',
    'odd 3',
    'store down',
    'store down',
    'ok',
  ]);
  expect(calls).toBe(3);
});

test('inserts: a burst lands in a few commands, one refused document fails only its own caller', async () => {
  const collection = db.models.IpnOutbox.collection;
  const commands = jest.spyOn(collection, 'insertMany');
  try {
    const inserts = gatheredInserts('store test entry', collection, 'written');
    const ids = Array.from({ length: 40 }, () => new Types.ObjectId());
    await Promise.all(ids.map((_id) => inserts.add({ _id })));
    expect(await collection.countDocuments({ _id: { $in: ids } })).toBe(40);
    expect(commands.mock.calls.length).toBeLessThanOrEqual(2);

    // Inserted before (an earlier attempt of the same write): written, not an error.
    await inserts.add({ _id: ids[0]! });
    // A document no store takes (over 16 MB, refused before it is sent) fails alone.
    const bad = { _id: new Types.ObjectId(), raw: Buffer.alloc(17 * 1024 * 1024) };
    const good = new Types.ObjectId();
    commands.mockClear();
    const [refused, written] = await Promise.allSettled([inserts.add(bad), inserts.add({ _id: good })]);
    expect(refused.status).toBe('rejected');
    expect(String((refused as PromiseRejectedResult).reason)).toMatch(/store test entry/);
    expect(written.status).toBe('fulfilled');
    // Sent together, refused whole, then each alone.
    expect(commands.mock.calls.map(([docs]) => docs.length)).toEqual([2, 1, 1]);
    expect(await collection.countDocuments({ _id: good })).toBe(1);
  } finally {
    commands.mockRestore();
  }
});

test('claims: a taken _id is refused with the duplicate-key code, to its own caller only', async () => {
  const claims = gatheredInserts('claim test', db.models.IpnClaim.collection, 'refused');
  await claims.add({ _id: 'shop:T1:Completed' as never, messageId: 'm1' });
  const answers = await Promise.allSettled([
    claims.add({ _id: 'shop:T1:Completed' as never, messageId: 'm2' }),
    claims.add({ _id: 'shop:T2:Completed' as never, messageId: 'm3' }),
  ]);
  expect(answers[0].status).toBe('rejected');
  expect(isDuplicateKey((answers[0] as PromiseRejectedResult).reason)).toBe(true);
  expect(answers[1].status).toBe('fulfilled');
  const stored = await db.models.IpnClaim.find({}).sort({ _id: 1 }).lean();
  expect(stored.map((c) => [c._id, c.messageId])).toEqual([
    ['shop:T1:Completed', 'm1'],
    ['shop:T2:Completed', 'm3'],
  ]);
});

test('deletes: by _id, gathered, and an id already gone is no error', async () => {
  const collection = db.models.IpnOutbox.collection;
  const ids = Array.from({ length: 30 }, () => new Types.ObjectId());
  await collection.insertMany(ids.map((_id) => ({ _id })));
  const commands = jest.spyOn(collection, 'bulkWrite');
  try {
    const deletes = gatheredDeletes('delete test entry', collection);
    await Promise.all([...ids, new Types.ObjectId()].map((_id) => deletes.add(_id)));
    expect(await collection.countDocuments({ _id: { $in: ids } })).toBe(0);
    expect(commands.mock.calls.length).toBeLessThanOrEqual(2);
  } finally {
    commands.mockRestore();
  }
});
