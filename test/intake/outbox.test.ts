import { Client, Connection } from '@temporalio/client';
import { Types } from 'mongoose';
import { IpnDispatcher } from '../../src/messages/dispatcher';
import { storeIpn } from '../../src/messages/intake';
import { createLogger } from '../../src/shared/logger';
import { alerts } from '../../src/shared/metrics';
import { ipnWorkflowId } from '../../src/shared/ids';
import { createTestStack, sample, waitFor, withField, withFields, type TestStack } from '../support/stack';

/** The ipn_outbox contract (src/messages/intake.ts, src/messages/dispatcher.ts). */
let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack('outbox');
  const shop = {
    name: 'Shop',
    mode: 'sandbox',
    verifyTransaction: false,
    allowedCurrencies: ['USD'],
    receiverEmails: ['seller@paypalsandbox.com'],
  };
  expect((await stack.admin('PUT', '/admin/integrations/shop', shop)).status).toBe(200);
  expect((await stack.admin('PUT', '/admin/integrations/off', { ...shop, ipnEnabled: false })).status).toBe(200);
});
afterAll(() => stack?.close());

const raw = (txnId: string) => withField(sample('web_accept_completed_ipn_simulator_01'), 'txn_id', txnId);
const ageMs = (ms: number) => Types.ObjectId.createFromTime(Math.floor((Date.now() - ms) / 1000));
const sweeps = () => {
  const { OUTBOX_RELAY_GRACE_MS, OUTBOX_RELAY_INTERVAL_MS } = stack.config;
  return new Promise((r) => setTimeout(r, 1_000 + OUTBOX_RELAY_GRACE_MS + 3 * OUTBOX_RELAY_INTERVAL_MS));
};
const store = (integrationId: string, txnId: string) =>
  storeIpn(stack.db.models, { integrationId, raw: raw(txnId), ipnEnabled: true });
const inOutbox = (id: unknown) => stack.db.models.IpnOutbox.exists({ _id: id });

test(
  'a stored message waits in the outbox under its own _id until ' +
    'its workflow is started; an ignored one never enters it',
  async () => {
    const stored = await storeIpn(stack.db.models, { integrationId: 'shop', raw: raw('OUT1'), ipnEnabled: true });
    expect(await stack.db.models.IpnOutbox.exists({ _id: stored._id })).toBeTruthy();
    const dispatched = await waitFor('relay dispatch', async () =>
      (await inOutbox(stored._id)) ? undefined : stack.db.models.IpnMessage.findById(stored._id).lean(),
    );
    expect(dispatched.workflowId).toBe('payment:shop:OUT1'); // a payment goes straight to its own workflow

    const ignored = await storeIpn(stack.db.models, { integrationId: 'off', raw: raw('OUT2'), ipnEnabled: false });
    expect(ignored.state).toBe('ignored');
    expect(await stack.db.models.IpnOutbox.exists({ _id: ignored._id })).toBeNull();
  },
);

test('an entry whose message insert failed is kept while that insert could still land, then dropped', async () => {
  const young = ageMs(5_000);
  const old = ageMs(11 * 60_000);
  await stack.db.models.IpnOutbox.create([{ _id: young }, { _id: old }]);
  await waitFor('old orphan dropped', async () => !(await stack.db.models.IpnOutbox.exists({ _id: old })));
  expect(await stack.db.models.IpnOutbox.exists({ _id: young })).toBeTruthy();
  await stack.db.models.IpnOutbox.deleteOne({ _id: young });
});

test('an entry that outlived its dispatch is removed without starting anything', async () => {
  const doc = await stack.db.models.IpnMessage.create({
    integrationId: 'shop',
    receivedAt: new Date(),
    raw: raw('OUT3'),
    state: 'applied:credited',
    flags: [],
  });
  await stack.db.models.IpnOutbox.create({ _id: doc._id });
  await waitFor('entry removed', async () => !(await stack.db.models.IpnOutbox.exists({ _id: doc._id })));
  await sweeps();
  const after = await stack.db.models.IpnMessage.findById(doc._id).lean();
  expect(after).toMatchObject({ state: 'applied:credited' });
  expect(after!.workflowId).toBeUndefined();
});

const refundOf = (txnId: string, parent: string) =>
  withFields(raw(txnId), { parent_txn_id: parent, payment_status: 'Refunded', mc_gross: '-1.00', txn_type: '' });
/** Once its payment has applied it (a processIpn records `routed` on the way there). */
const appliedMessage = (id: unknown) =>
  waitFor('message applied', async () => {
    const m = await stack.db.models.IpnMessage.findById(id).lean();
    return m?.state.startsWith('applied:') ? m : undefined;
  });

test('intake routes a refund once, to its payment: the relay follows the stored route, not the bytes', async () => {
  const stored = await storeIpn(stack.db.models, {
    integrationId: 'shop',
    raw: refundOf('OUT-R1', 'OUT-P1'),
    ipnEnabled: true,
  });
  expect(stored).toMatchObject({
    route: { kind: 'refund', paymentTxnId: 'OUT-P1' },
    workflowId: 'payment:shop:OUT-P1',
  });
  // What the relay reads is the stored decision: pointed at another payment, it goes there.
  const elsewhere = { route: { kind: 'refund', paymentTxnId: 'OUT-P9' }, workflowId: 'payment:shop:OUT-P9' };
  await stack.db.models.IpnMessage.updateOne({ _id: stored._id }, { $set: elsewhere });
  const settled = await appliedMessage(stored._id);
  expect(settled).toMatchObject({ ...elsewhere, state: 'applied:awaiting_payment' });
});

test('a message stored by an older version (no route) goes where that version named it', async () => {
  const base = { integrationId: 'shop', receivedAt: new Date(), state: 'received', flags: [] };
  const named = ipnWorkflowId({
    integrationId: 'shop',
    messageId: 'older',
    txnId: 'OUT-R2',
    paymentStatus: 'Refunded',
  });
  const older = await stack.db.models.IpnMessage.create({
    ...base,
    raw: refundOf('OUT-R2', 'OUT-P2'),
    workflowId: named,
  });
  const unnamed = await stack.db.models.IpnMessage.create({ ...base, raw: refundOf('OUT-R3', 'OUT-P3') });
  await stack.db.models.IpnOutbox.create([{ _id: older._id }, { _id: unnamed._id }]);
  // Named processIpn then: processIpn still takes it. Never named: today's rule, its payment's door.
  expect(await appliedMessage(older._id)).toMatchObject({ workflowId: named, state: 'applied:awaiting_payment' });
  const described = await stack.client.workflow.getHandle(named).describe();
  expect(described.type).toBe('processIpn');
  expect(await appliedMessage(unnamed._id)).toMatchObject({
    workflowId: 'payment:shop:OUT-P3',
    state: 'applied:awaiting_payment',
  });
});

const undispatchableAlerts = async () =>
  (await alerts.get()).values.find((v) => v.labels.kind === 'ipn_undispatchable')?.value ?? 0;

test(
  'a message Temporal refuses for good is set aside, shown ' +
    'and alerted, and every message behind it is still processed',
  async () => {
    const alertsBefore = await undispatchableAlerts();
    // Stored, with no immediate dispatch, before the others: the relay meets it first. Its integration
    // id (never allowed by the admin API, say a record made by hand) makes a workflow id Temporal refuses.
    const poison = await store(`x${'y'.repeat(1_099)}`, 'POISON');
    const normal = [];
    for (const txn of ['AFTER1', 'AFTER2', 'AFTER3']) normal.push(await store('shop', txn));

    for (const m of normal) {
      const done = await waitFor(`${m.txnId} processed`, async () => {
        const msg = await stack.db.models.IpnMessage.findById(m._id).lean();
        return msg?.workflowId && !['received', 'dispatched'].includes(msg.state) ? msg : undefined;
      });
      // Applied by its payment (held here: this file sets up no customer to credit).
      expect(done).toMatchObject({ state: expect.stringMatching(/^applied:/), workflowId: `payment:shop:${m.txnId}` });
    }
    const setAside = await stack.db.models.IpnMessage.findById(poison._id).lean();
    expect(setAside).toMatchObject({ state: 'undispatchable', flags: ['undispatchable'] });
    expect(setAside!.outcome).toMatch(/INVALID_ARGUMENT/);
    expect(await stack.db.models.IpnOutbox.exists({ _id: poison._id })).toBeNull();
    const held = await stack.admin('GET', '/admin/held');
    expect(held.body.undispatchableMessages.map((m: { _id: string }) => m._id)).toEqual([poison._id]);
    expect(held.body.undispatchableMessages[0].raw).toBeUndefined();
    expect(await undispatchableAlerts()).toBe(alertsBefore + 1);
  },
);

test('while Temporal is unreachable the relay stops its sweep and keeps every message for later', async () => {
  await stack.dispatcher.stop();
  const stored: Array<{ _id: string }> = [];
  try {
    for (const txn of ['DOWN1', 'DOWN2']) stored.push(await store('shop', txn));
    await new Promise((r) => setTimeout(r, 1_100)); // entries are due once their creation second has passed
    // Nothing listens on port 1; without the retry interceptor the start fails at once, UNAVAILABLE.
    const connection = Connection.lazy({ address: '127.0.0.1:1', interceptors: [] });
    const logger = createLogger('silent');
    const warn = jest.spyOn(logger, 'warn');
    const config = { ...stack.config, OUTBOX_RELAY_GRACE_MS: 0 };
    const down = new IpnDispatcher({ models: stack.db.models, client: new Client({ connection }), config, logger });
    expect(await down.drainOnce()).toBe(0);
    await connection.close();
    // One attempt, on the oldest due entry, then the sweep stopped.
    expect(warn.mock.calls.map((c) => c[1])).toEqual(['relay could not start workflow; will retry']);
    for (const m of stored) {
      expect(await stack.db.models.IpnOutbox.exists({ _id: m._id })).toBeTruthy();
      expect(await stack.db.models.IpnMessage.findById(m._id).lean()).toMatchObject({ state: 'received', flags: [] });
    }
  } finally {
    stack.dispatcher.start();
  }
  for (const m of stored) await waitFor('dispatch once Temporal is back', async () => !(await inOutbox(m._id)));
});

test('a stop that comes during a sweep makes it the last: the relay does not outlive its shutdown', async () => {
  const config = { ...stack.config, OUTBOX_RELAY_INTERVAL_MS: 20 };
  let sweeps = 0;
  let finish = () => {};
  // The sweep itself is held open, so that the stop lands while it runs, as a shutdown during a slow sweep does.
  class HeldSweeps extends IpnDispatcher {
    override async drainOnce(): Promise<number> {
      sweeps++;
      await new Promise<void>((resolve) => (finish = resolve));
      return 0;
    }
  }
  const relay = new HeldSweeps({
    models: stack.db.models,
    client: stack.client,
    config,
    logger: createLogger('silent'),
  });
  relay.start();
  await waitFor('the first sweep to start', async () => sweeps === 1);
  const stopped = relay.stop();
  finish();
  await stopped;
  await new Promise((r) => setTimeout(r, 10 * config.OUTBOX_RELAY_INTERVAL_MS));
  expect(sweeps).toBe(1);
});
