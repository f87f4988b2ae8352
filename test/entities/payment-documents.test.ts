import crypto from 'node:crypto';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import { createPaymentActivities, paymentFields, writePaymentState } from '../../activities/payments';
import type { ActivityDeps } from '../../activities/deps';
import { initialPaymentState, PaymentStateSchema, type PaymentState } from '../../src/payments/state';
import { paymentDocId } from '../../src/shared/ids';

/**
 * A payment's document is written through the driver (activities/payments.ts savePaymentState): it
 * must be the document mongoose wrote before, field for field, valid against the schema, with its
 * timestamps kept as mongoose keeps them.
 */
let db: Database;
let save: (state: PaymentState) => Promise<void>;

beforeAll(async () => {
  db = await connectDatabase(process.env.MONGODB_URI!, `test-payment-docs-${crypto.randomBytes(3).toString('hex')}`);
  save = createPaymentActivities({ db } as ActivityDeps, {} as never).savePaymentState;
});
afterAll(async () => {
  await db.connection.dropDatabase().catch(() => {});
  await db.close();
});

/** What mongoose wrote for the same state (the code before): its casting, defaults and timestamps. */
async function savedByMongoose(state: PaymentState, txnId: string) {
  const id = paymentDocId(state.integrationId, txnId);
  await db.models.Payment.updateOne(
    { _id: id },
    { $set: { ...paymentFields(state), txnId, snapshot: { ...state, txnId } } },
    { upsert: true },
  );
  return db.models.Payment.collection.findOne({ _id: id as never });
}

/** A USD payment PayPal said Completed, in `phase`, with `more` of its state. */
const completedIn = (phase: PaymentState['phase'], txnId: string, more: Partial<PaymentState>): PaymentState => ({
  ...initialPaymentState('shop', txnId),
  phase,
  paymentStatus: 'Completed',
  currency: 'USD',
  ...more,
});

const withoutIdsAndTimes = (doc: Record<string, unknown> | null) => {
  const { _id: _i, txnId: _t, createdAt: _c, updatedAt: _u, snapshot, ...rest } = doc ?? {};
  return { ...rest, snapshot: { ...(snapshot as object), txnId: 'same' } };
};

test('the driver writes what mongoose wrote, valid against the schema, and keeps createdAt', async () => {
  const held = completedIn('held', 'DOC1', {
    hold: {
      reason: 'checks_failed:receiver_mismatch',
      cause: { code: 'checks_failed', flags: ['receiver_mismatch'] },
    } as PaymentState['hold'],
    attention: ['dispute_open:PP-D-1'],
    history: [{ at: '2026-12-06T10:00:00.000Z', messageId: 'm1', what: 'held' }],
  });
  await save(held);
  const id = paymentDocId('shop', 'DOC1');
  const first = await db.models.Payment.collection.findOne({ _id: id as never });
  expect(new db.models.Payment(first).validateSync()).toBeUndefined();
  expect(first!.createdAt).toBeInstanceOf(Date);
  expect(first!.updatedAt).toEqual(first!.createdAt);
  expect(withoutIdsAndTimes(first)).toEqual(withoutIdsAndTimes(await savedByMongoose(held, 'DOC1-M')));

  const credited: PaymentState = { ...held, phase: 'credited', hold: null, customerId: 'c1', creditedMinor: 1234 };
  await new Promise((r) => setTimeout(r, 5));
  await save(credited);
  const second = await db.models.Payment.collection.findOne({ _id: id as never });
  expect(new db.models.Payment(second).validateSync()).toBeUndefined();
  expect(second!.createdAt).toEqual(first!.createdAt);
  expect(second!.updatedAt.getTime()).toBeGreaterThan(first!.updatedAt.getTime());
  expect([second!.state, second!.customerId, second!.creditedMinor, second!.holdCause]).toEqual([
    'credited',
    'c1',
    1234,
    null,
  ]);
  expect(withoutIdsAndTimes(second)).toEqual(withoutIdsAndTimes(await savedByMongoose(credited, 'DOC1-M')));
});

test('a field left undefined is left out, as in JSON, not stored as null', async () => {
  // A state the activity built itself (the first take), not one that came through the workflow's JSON.
  const state = initialPaymentState('shop', 'DOC2');
  state.history.push({ at: '2026-12-06T10:00:00.000Z', messageId: 'm2', what: 'noted' });
  (state.history[0] as Record<string, unknown>).detail = undefined;
  await save(state);
  const doc = await db.models.Payment.collection.findOne({ _id: paymentDocId('shop', 'DOC2') as never });
  expect(doc!.snapshot.history[0]).toEqual({ at: '2026-12-06T10:00:00.000Z', messageId: 'm2', what: 'noted' });
  expect('detail' in doc!.snapshot.history[0]).toBe(false);
  expect(PaymentStateSchema.parse(doc!.snapshot)).toEqual(JSON.parse(JSON.stringify(state)));
});

test('a fresh payment is inserted, the same document as the upsert writes; one already there is updated', async () => {
  const state = completedIn('credited', 'DOC3', { customerId: 'c1', creditedMinor: 1234 });
  await writePaymentState(db.models, state, true);
  const id = paymentDocId('shop', 'DOC3');
  const inserted = await db.models.Payment.collection.findOne({ _id: id as never });
  expect(new db.models.Payment(inserted).validateSync()).toBeUndefined();
  expect(inserted!.updatedAt).toEqual(inserted!.createdAt);
  await save({ ...state, txnId: 'DOC3-U' });
  const upserted = await db.models.Payment.collection.findOne({ _id: paymentDocId('shop', 'DOC3-U') as never });
  expect(withoutIdsAndTimes(inserted)).toEqual(withoutIdsAndTimes(upserted));
  expect(Object.keys(inserted!).sort()).toEqual(Object.keys(upserted!).sort());

  // Taken as fresh again (the step retried after saving): the insert meets the document and updates it.
  await new Promise((r) => setTimeout(r, 5));
  await writePaymentState(db.models, { ...state, debitedMinor: 234 }, true);
  const again = await db.models.Payment.collection.findOne({ _id: id as never });
  expect(again).toMatchObject({ debitedMinor: 234, createdAt: inserted!.createdAt });
  expect(again!.updatedAt.getTime()).toBeGreaterThan(inserted!.updatedAt.getTime());
  expect(await db.models.Payment.countDocuments({ _id: id })).toBe(1);
});

test('a fresh payment leaves undefined fields out too', async () => {
  const state = initialPaymentState('shop', 'DOC4');
  state.history.push({ at: '2026-12-06T10:00:00.000Z', messageId: 'm4', what: 'noted' });
  (state.history[0] as Record<string, unknown>).detail = undefined;
  await writePaymentState(db.models, state, true);
  const doc = await db.models.Payment.collection.findOne({ _id: paymentDocId('shop', 'DOC4') as never });
  expect('detail' in doc!.snapshot.history[0]).toBe(false);
  expect(Object.values(doc!).includes(undefined)).toBe(false);
  expect(new db.models.Payment(doc).validateSync()).toBeUndefined();
});
