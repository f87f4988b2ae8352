import { Types } from 'mongoose';
import { storeIpn } from '../src/ipn/intake';
import { createTestStack, sample, waitFor, withField, type TestStack } from './support/stack';

/** The ipn_outbox contract (src/ipn/intake.ts, src/ipn/dispatcher.ts). */
let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack('outbox');
  const shop = { name: 'Shop', mode: 'sandbox', verifyTransaction: false, allowedCurrencies: ['USD'], receiverEmails: ['seller@paypalsandbox.com'] };
  expect((await stack.admin('PUT', '/admin/integrations/shop', shop)).status).toBe(200);
  expect((await stack.admin('PUT', '/admin/integrations/off', { ...shop, ipnEnabled: false })).status).toBe(200);
});
afterAll(() => stack?.close());

const raw = (txnId: string) => withField(sample('web_accept_completed_ipn_simulator_01'), 'txn_id', txnId);
const ageMs = (ms: number) => Types.ObjectId.createFromTime(Math.floor((Date.now() - ms) / 1000));
const sweeps = () => new Promise((r) => setTimeout(r, stack.config.OUTBOX_RELAY_GRACE_MS + 3 * stack.config.OUTBOX_RELAY_INTERVAL_MS));

test('a stored message waits in the outbox under its own _id until its workflow is started; an ignored one never enters it', async () => {
  const stored = await storeIpn(stack.db.models, { integrationId: 'shop', raw: raw('OUT1'), ipnEnabled: true });
  expect(await stack.db.models.IpnOutbox.exists({ _id: stored._id })).toBeTruthy();
  const dispatched = await waitFor('relay dispatch', async () => (await stack.db.models.IpnOutbox.exists({ _id: stored._id })) ? undefined : stack.db.models.IpnMessage.findById(stored._id).lean());
  expect(dispatched.workflowId).toMatch(/^ipn:shop:OUT1:Completed:/);

  const ignored = await storeIpn(stack.db.models, { integrationId: 'off', raw: raw('OUT2'), ipnEnabled: false });
  expect(ignored.state).toBe('ignored');
  expect(await stack.db.models.IpnOutbox.exists({ _id: ignored._id })).toBeNull();
});

test('an entry whose message insert failed is kept while that insert could still land, then dropped', async () => {
  const young = ageMs(5_000);
  const old = ageMs(11 * 60_000);
  await stack.db.models.IpnOutbox.create([{ _id: young }, { _id: old }]);
  await waitFor('old orphan dropped', async () => !(await stack.db.models.IpnOutbox.exists({ _id: old })));
  expect(await stack.db.models.IpnOutbox.exists({ _id: young })).toBeTruthy();
  await stack.db.models.IpnOutbox.deleteOne({ _id: young });
});

test('an entry that outlived its dispatch is removed without starting anything', async () => {
  const doc = await stack.db.models.IpnMessage.create({ integrationId: 'shop', receivedAt: new Date(), raw: raw('OUT3'), state: 'applied:credited', flags: [] });
  await stack.db.models.IpnOutbox.create({ _id: doc._id });
  await waitFor('entry removed', async () => !(await stack.db.models.IpnOutbox.exists({ _id: doc._id })));
  await sweeps();
  const after = await stack.db.models.IpnMessage.findById(doc._id).lean();
  expect(after).toMatchObject({ state: 'applied:credited' });
  expect(after!.workflowId).toBeUndefined();
});
