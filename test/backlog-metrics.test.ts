import { storeIpn } from '../src/ipn/intake';
import { createTestStack, sample, waitFor, withField, type TestStack } from './support/stack';

/** /metrics shows what is stored but not finished, and how old the oldest waiting message is. */
let stack: TestStack;
beforeAll(async () => {
  // A relay that waits a minute: the stored message stays undispatched while we look.
  stack = await createTestStack('backlog-metrics', { OUTBOX_RELAY_GRACE_MS: '60000' });
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
  await waitFor('processed', async () => (await metric(/^ipnflow_ipn_backlog\{stage="processing"\} (\S+)$/m)) === 0);
});
