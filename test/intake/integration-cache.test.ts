import crypto from 'node:crypto';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import { IntegrationCache } from '../../src/integrations/cache';
import { saveIntegration } from '../../src/integrations/store';

/**
 * The integrations PayPal's door and the payment workers read for every message (src/integrations/cache.ts):
 * read once per integration every couple of seconds, one view per process, and a save made through this
 * process applies at once.
 */
let db: Database;
/** A second handle on the same database: another process. */
let other: Database;
const shop = { name: 'Shop', mode: 'live', allowedCurrencies: ['USD'], receiverEmails: ['s@example.com'] };

beforeAll(async () => {
  db = await connectDatabase(
    process.env.MONGODB_URI!,
    `test-integration-cache-${crypto.randomBytes(3).toString('hex')}`,
  );
  other = await connectDatabase(process.env.MONGODB_URI!, db.connection.name);
  await saveIntegration(db.models, 'shop', shop, 'test');
});
afterAll(async () => {
  await db.connection.dropDatabase().catch(() => {});
  await other.close();
  await db.close();
});

test('readers in one process share what one of them read: one read per integration while it is fresh', async () => {
  const reads = jest.spyOn(db.models.Integration, 'findById');
  try {
    const door = new IntegrationCache(db.models);
    const worker = new IntegrationCache(db.models);
    expect(await door.get('shop')).toMatchObject({ _id: 'shop', mode: 'live', receiverEmails: ['s@example.com'] });
    expect(await worker.get('shop')).toMatchObject({ _id: 'shop', mode: 'live' });
    expect(await door.get('shop')).toMatchObject({ _id: 'shop' });
    expect(reads).toHaveBeenCalledTimes(1);
  } finally {
    reads.mockRestore();
  }
});

test('a save forgotten by one reader is read again by every reader of this process', async () => {
  const door = new IntegrationCache(db.models);
  const worker = new IntegrationCache(db.models);
  expect(await worker.get('shop')).toMatchObject({ receiverEmails: ['s@example.com'] });
  await db.models.Integration.updateOne({ _id: 'shop' }, { $set: { receiverEmails: ['new@example.com'] } });
  door.forget('shop'); // what the admin API does once it saved
  expect(await worker.get('shop')).toMatchObject({ receiverEmails: ['new@example.com'] });
});

test('another process sees a change once its copy is older than the ttl; unknown ids are not remembered', async () => {
  const elsewhere = new IntegrationCache(other.models, 300);
  expect(await elsewhere.get('shop')).toMatchObject({ receiverEmails: ['new@example.com'] });
  await db.models.Integration.updateOne({ _id: 'shop' }, { $set: { receiverEmails: ['third@example.com'] } });
  new IntegrationCache(db.models).forget('shop');
  expect(await elsewhere.get('shop')).toMatchObject({ receiverEmails: ['new@example.com'] });
  await new Promise((r) => setTimeout(r, 350));
  expect(await elsewhere.get('shop')).toMatchObject({ receiverEmails: ['third@example.com'] });

  expect(await elsewhere.get('later')).toBeNull();
  await saveIntegration(db.models, 'later', shop, 'test');
  expect(await elsewhere.get('later')).toMatchObject({ _id: 'later' });
});
