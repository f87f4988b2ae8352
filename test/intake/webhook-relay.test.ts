import { Types } from 'mongoose';
import { createLogger } from '../../src/shared/logger';
import { WebhookIntake } from '../../src/webhooks/intake';
import { createTestStack, type TestStack } from '../support/stack';

/**
 * The webhook relay judges what the door stored `received` and never judged (its process died after
 * the answer). It reads the small webhook_outbox, never every stored webhook (FerretDB pushes no
 * `_id` range down): an entry per `received` message, deleted once judged. Messages an older version
 * stored `received` without an entry get one when a process starts.
 */
let stack: TestStack;
let relay: WebhookIntake;
const SHOP = 'relay';

beforeAll(async () => {
  stack = await createTestStack('webhook-relay');
  const put = await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
    name: 'Webhook relay',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['relay@example.com'],
  });
  expect(put.status).toBe(200);
  const { db, client, config } = stack;
  relay = new WebhookIntake({ models: db.models, client, config, logger: createLogger('silent') });
}, 120_000);
afterAll(() => stack?.close());

/** An ObjectId made `agoMs` ago (its first four bytes are its second), unique. */
const idAgo = (agoMs: number) =>
  new Types.ObjectId(
    Math.floor((Date.now() - agoMs) / 1000)
      .toString(16)
      .padStart(8, '0') + new Types.ObjectId().toHexString().slice(8),
  );

/** A `received` message as the door stores it, `agoMs` old. */
async function storedReceived(agoMs: number, withOutboxEntry: boolean) {
  const _id = idAgo(agoMs);
  if (withOutboxEntry) await stack.db.models.WebhookOutbox.collection.insertOne({ _id });
  await stack.db.models.WebhookMessage.collection.insertOne({
    _id,
    integrationId: SHOP,
    raw: Buffer.from(JSON.stringify({ id: `WH-${String(_id)}`, event_type: 'X', resource: {} })),
    headers: { 'content-type': 'application/json' },
    state: 'received',
    receivedAt: new Date(),
  });
  return _id;
}
const message = (_id: Types.ObjectId) => stack.db.models.WebhookMessage.findById(_id).lean();
const queued = (_id: Types.ObjectId) => stack.db.models.WebhookOutbox.exists({ _id });

test('a received message is judged from its outbox entry once past the grace period, and its entry goes', async () => {
  const due = await storedReceived(30_000, true);
  const fresh = await storedReceived(0, true);
  // The stack's own API relays too (every 5 s): whichever gets there, the outcome is the same.
  await relay.relayOnce();
  // Unsigned: flagged and never applied, as the door would have judged it.
  expect(await message(due)).toMatchObject({ state: 'refused', outcome: { code: 'signature' } });
  expect(await queued(due)).toBeNull();
  // Within the grace period the door's own processing still has its chance.
  expect(await message(fresh)).toMatchObject({ state: 'received' });
  expect(await queued(fresh)).not.toBeNull();
  await stack.db.models.WebhookOutbox.deleteOne({ _id: fresh });
});

test('an entry without its message is dropped after a minute; an older version’s message adopted', async () => {
  const orphan = idAgo(120_000);
  await stack.db.models.WebhookOutbox.collection.insertOne({ _id: orphan });
  const legacy = await storedReceived(30_000, false);
  expect(await relay.relayOnce()).toBe(0);
  expect(await queued(orphan)).toBeNull();
  expect(await message(legacy)).toMatchObject({ state: 'received' });

  await relay.adoptUnqueued();
  expect(await queued(legacy)).not.toBeNull();
  await relay.relayOnce();
  expect(await message(legacy)).toMatchObject({ state: 'refused' });
  expect(await queued(legacy)).toBeNull();
});
