import { createTestStack, sample, waitFor, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack('smoke');
});
afterAll(() => stack?.close());

test('a sample posted to /ipn/:id runs a workflow on the real server and the message is stored', async () => {
  expect(
    (
      await stack.admin('PUT', '/admin/integrations/shop', {
        name: 'Shop',
        mode: 'sandbox',
        allowedCurrencies: ['USD'],
        receiverEmails: ['seller@paypalsandbox.com'],
      })
    ).status,
  ).toBe(200);
  expect(
    (
      await stack.admin('PUT', '/admin/customers/cust-1', {
        name: 'Carrier One',
        paypalEmails: ['Buyer@PayPalSandbox.com'],
      })
    ).status,
  ).toBe(200);
  const raw = sample('web_accept_completed_ipn_simulator_01');
  const delivery = stack.sim.sendIpn({ listenerUrl: `${stack.baseUrl}/ipn/shop`, body: raw });
  expect(await delivery.done).toEqual({ delivered: true, attempts: 1 });

  const msg = await waitFor('stored message', () => stack.db.models.IpnMessage.findOne({ txnId: '593976436' }).lean());
  expect(Buffer.from(msg.raw.buffer).equals(raw)).toBe(true);
  const handle = stack.client.workflow.getHandle(
    (await waitFor('dispatch', () =>
      stack.db.models.IpnMessage.findById(msg._id)
        .lean()
        .then((m) => m?.workflowId),
    ))!,
  );
  // A payment goes straight to its own workflow, which verifies it with PayPal and credits it.
  expect(handle.workflowId).toBe('payment:shop:593976436');
  await waitFor('workflow started', () => handle.describe().then(() => true));
  const customer = await waitFor('credit', async () => {
    const res = await stack.admin('GET', '/admin/customers/cust-1');
    return res.body.sandboxBalances.length ? res.body : undefined;
  });
  // A simulator payment (test_ipn=1) is sandbox money: the live balances stay empty.
  expect(customer).toMatchObject({
    balances: [],
    sandboxBalances: [{ currency: 'USD', balanceMinor: 1234, balance: '12.34' }],
  });
  expect((await stack.admin('GET', '/admin/ledger/check')).body).toMatchObject({ ok: true, accounts: 1, entries: 1 });
});
