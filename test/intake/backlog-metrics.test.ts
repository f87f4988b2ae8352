import { storeIpn } from '../../src/messages/intake';
import { createTestStack, sample, waitFor, withField, type TestStack } from '../support/stack';

/** /metrics shows what is stored but not finished, and how old the oldest waiting message is. */
let stack: TestStack;
beforeAll(async () => {
  // A relay that waits a minute: the stored message stays undispatched while we look.
  stack = await createTestStack('backlog-metrics', { OUTBOX_RELAY_GRACE_MS: '60000', IPN_VERIFY_GIVE_UP_SECONDS: '2' });
  const shop = {
    name: 'Shop',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['seller@paypalsandbox.com'],
  };
  expect((await stack.admin('PUT', '/admin/integrations/shop', shop)).status).toBe(200);
});
afterAll(() => stack?.close());

const metric = async (pattern: RegExp) => {
  const text = await (await fetch(`${stack.baseUrl}/metrics`)).text();
  const m = pattern.exec(text);
  return m ? Number(m[1]) : undefined;
};

test('an undispatched message counts in the backlog with its age, and leaves it once dispatched', async () => {
  expect(await metric(/^ipnflow_ipn_backlog\{stage="undispatched"\} (\S+)$/m)).toBe(0);
  expect(await metric(/^ipnflow_ipn_backlog_oldest_seconds (\S+)$/m)).toBe(0);
  const raw = withField(sample('web_accept_completed_ipn_simulator_01'), 'txn_id', 'BACKLOG1');
  const stored = await storeIpn(stack.db.models, { integrationId: 'shop', raw, ipnEnabled: true });
  await new Promise((r) => setTimeout(r, 1100));
  expect(await metric(/^ipnflow_ipn_backlog\{stage="undispatched"\} (\S+)$/m)).toBe(1);
  expect(await metric(/^ipnflow_ipn_backlog_oldest_seconds (\S+)$/m)).toBeGreaterThanOrEqual(1);

  stack.sim.registerMessage(raw);
  await stack.dispatcher.dispatch(stored);
  expect(await metric(/^ipnflow_ipn_backlog\{stage="undispatched"\} (\S+)$/m)).toBe(0);
  await waitFor('applied', async () =>
    (await stack.db.models.IpnMessage.findById(stored._id).lean())?.state.startsWith('applied:'),
  );
  await waitFor('processed', async () => (await metric(/^ipnflow_ipn_backlog\{stage="processing"\} (\S+)$/m)) === 0);
});

test('a payment message still being verified (here parked) counts as processing until it is done', async () => {
  const raw = withField(sample('web_accept_completed_ipn_simulator_01'), 'txn_id', 'BACKLOG2');
  stack.sim.injectFaults(Array.from({ length: 50 }, () => ({ kind: 'status' as const, status: 503 as const })));
  const stored = await storeIpn(stack.db.models, { integrationId: 'shop', raw, ipnEnabled: true });
  await stack.dispatcher.dispatch(stored);
  await waitFor(
    'parked',
    async () => (await stack.db.models.IpnMessage.findById(stored._id).lean())?.state === 'parked',
  );
  await waitFor('counted', async () => (await metric(/^ipnflow_ipn_backlog\{stage="processing"\} (\S+)$/m)) === 1);
  stack.sim.clearFaults();
  stack.sim.registerMessage(raw);
  const retried = await stack.admin('POST', `/admin/messages/${stored._id}/retry`, { operator: 'ops', reason: 'back' });
  expect(retried.status).toBe(202);
  await waitFor('done', async () => (await metric(/^ipnflow_ipn_backlog\{stage="processing"\} (\S+)$/m)) === 0);
  expect((await stack.db.models.IpnMessage.findById(stored._id).lean())?.state).toMatch(/^applied:/);
});
