import { mongoItemStore } from '../../activities/masspay';
import { ItemsEngine } from '../../src/masspay/items-engine';
import {
  newPayoutItem,
  payoutItemId,
  type ItemCounts,
  type MasspayItemReport,
  type PayoutItem,
} from '../../src/masspay/state';
import { createTestStack, type TestStack } from '../support/stack';

/**
 * The counts a batch keeps as webhooks apply (so a pass need not count every item) against the
 * items themselves, on the real database: a slice decided again after a crash shifts them once, and
 * an item written since it was read is never overwritten.
 */
let stack: TestStack;
const BATCH = 'PB-KEPT-COUNTS';
const NOW = '2026-01-01T00:00:00.000Z';

const item = (uniqueId: string, index: number): PayoutItem =>
  newPayoutItem({
    batchId: BATCH,
    uniqueId,
    index,
    integrationId: 'kept-counts',
    customerId: 'kc-0',
    receiverEmail: 'kc-0@example.com',
    currency: 'USD',
    mode: 'sandbox',
    amountMinor: 100,
  });
const completed = (uniqueId: string): MasspayItemReport => ({
  uniqueId,
  status: 'Completed',
  masspayTxnId: `TX-${uniqueId}`,
  grossMinor: null,
  feeMinor: null,
  currency: 'USD',
  reasonCode: null,
});

async function kept(): Promise<ItemCounts> {
  const doc = await stack.db.models.PayoutBatch.findById(BATCH, { itemCounts: 1 }).lean<{ itemCounts?: ItemCounts }>();
  return Object.fromEntries(Object.entries(doc?.itemCounts ?? {}).filter(([, n]) => n !== 0));
}

beforeAll(async () => {
  stack = await createTestStack('masspay-kept-counts');
  const { models } = stack.db;
  await models.PayoutBatch.collection.insertOne({
    _id: BATCH as never,
    integrationId: 'kept-counts',
    state: 'submitted',
    currency: 'USD',
    itemCount: 3,
    totalMinor: 300,
    createdBy: 'alice',
  });
  const items = ['K1', 'K2', 'K3'].map(item);
  await models.PayoutItem.insertMany(items.map((i) => ({ _id: payoutItemId(BATCH, i.uniqueId), ...i })));
});

afterAll(async () => {
  await stack?.close();
});

describe('Mass Pay kept counts', () => {
  test('a slice decided again after its counts shifted (crashed before saving) shifts them once', async () => {
    const store = mongoItemStore(stack.db.models);
    const engine = new ItemsEngine(store);
    expect(await store.counts(BATCH)).toEqual({ Pending: 3 });
    expect(await kept()).toEqual({ Pending: 3 });

    await engine.applySlice(BATCH, [completed('K1')], 'rest:hooks:1:a', NOW, 'rest:hooks:1:a');
    expect(await kept()).toEqual({ Pending: 2, Completed: 1 });

    // The second slice's shift went through, then the worker died before saving its item.
    await store.shiftCounts!(BATCH, 'rest:hooks:2:b', { Pending: -1, Completed: 1 });
    expect(await kept()).toEqual({ Pending: 1, Completed: 2 });
    // The retry decides the same slice again, under the same key: the item is saved, counts stay.
    const again = await engine.applySlice(BATCH, [completed('K2')], 'rest:hooks:2:b', NOW, 'rest:hooks:2:b');
    expect(again.moved).toBe(1);
    expect(await kept()).toEqual({ Pending: 1, Completed: 2 });
    // And once more after the save (the answer lost): the item is skipped, counts stay.
    await engine.applySlice(BATCH, [completed('K2')], 'rest:hooks:2:b', NOW, 'rest:hooks:2:b');
    expect(await kept()).toEqual({ Pending: 1, Completed: 2 });
    expect(await store.counts(BATCH)).toEqual(await kept());
  });

  test('an item written since it was read is not overwritten: the save throws', async () => {
    const store = mongoItemStore(stack.db.models);
    const stale = (await store.get(BATCH, ['K3'])).get('K3')!;
    const fresh = { ...stale, state: 'Completed' as const };
    await store.save([{ item: fresh, was: stale }]);
    await expect(store.save([{ item: { ...stale, state: 'Failed' }, was: stale }])).rejects.toThrow(
      /changed since read/,
    );
    expect((await store.get(BATCH, ['K3'])).get('K3')!.state).toBe('Completed');
  });

  test('a kept copy another process made stale is not saved over: the set is read again from the store', async () => {
    const store = mongoItemStore(stack.db.models);
    const engine = new ItemsEngine(store);
    const k4 = item('K4', 3);
    const id = payoutItemId(BATCH, 'K4');
    await stack.db.models.PayoutItem.insertMany([{ _id: id, ...k4 }]);
    await store.get(BATCH, ['K4']); // kept by this process (itemCache)
    // Another worker saves K4 in between: same state, a note of its own, a revision.
    await stack.db.models.PayoutItem.collection.updateOne(
      { _id: id as never },
      { $set: { rev: 1, problems: ['noted_elsewhere'] } },
    );
    await expect(engine.applySlice(BATCH, [completed('K4')], 'rest:hooks:3:c', NOW)).rejects.toThrow(
      /changed since read/,
    );
    // The retry (the activity's) reads K4 from the store: the other worker's note stays.
    const again = await engine.applySlice(BATCH, [completed('K4')], 'rest:hooks:3:c', NOW);
    expect(again.moved).toBe(1);
    const saved = await stack.db.models.PayoutItem.collection.findOne({ _id: id as never });
    expect(saved).toMatchObject({ state: 'Completed', problems: ['noted_elsewhere'], rev: 2 });
  });
});
