import { createTestStack, sample, waitFor, withField, type TestStack } from '../support/stack';

/** Admin lists come in bounded pages with a cursor, whatever is stored. */
let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack('admin-pagination');
  for (const id of ['p-a', 'p-b', 'p-c', 'p-d', 'p-e']) {
    const integration = {
      name: id,
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
    };
    expect((await stack.admin('PUT', `/admin/integrations/${id}`, integration)).status).toBe(200);
  }
});
afterAll(() => stack?.close());

async function page(path: string) {
  const res = await fetch(`${stack.baseUrl}${path}`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
  return { status: res.status, body: (await res.json()) as any, next: res.headers.get('x-next-cursor') };
}

test('integrations page by _id with a cursor until the last page', async () => {
  const first = await page('/admin/integrations?limit=2');
  expect(first.body.map((i: { id: string }) => i.id)).toEqual(['p-a', 'p-b']);
  expect(first.next).toBe('p-b');
  const second = await page(`/admin/integrations?limit=2&after=${first.next}`);
  expect(second.body.map((i: { id: string }) => i.id)).toEqual(['p-c', 'p-d']);
  const last = await page(`/admin/integrations?limit=2&after=${second.next}`);
  expect(last.body.map((i: { id: string }) => i.id)).toEqual(['p-e']);
  expect(last.next).toBeNull();
});

test('messages page newest first; bad limits and cursors are 400, not 500', async () => {
  const base = sample('web_accept_completed_ipn_simulator_01');
  for (const txn of ['PG1', 'PG2', 'PG3'])
    expect((await stack.postIpn('p-a', withField(base, 'txn_id', txn))).status).toBe(200);
  await waitFor(
    'stored',
    async () => (await stack.db.models.IpnMessage.countDocuments({ integrationId: 'p-a' })) === 3,
  );
  const first = await page('/admin/messages?integrationId=p-a&limit=2');
  expect(first.body.map((m: { txnId: string }) => m.txnId)).toEqual(['PG3', 'PG2']);
  const rest = await page(`/admin/messages?integrationId=p-a&limit=2&after=${first.next}`);
  expect(rest.body.map((m: { txnId: string }) => m.txnId)).toEqual(['PG1']);
  expect(rest.next).toBeNull();
  for (const bad of ['limit=0', 'limit=501', 'limit=x', 'after=not-an-object-id']) {
    expect([bad, (await page(`/admin/messages?${bad}`)).status]).toEqual([bad, 400]);
  }
});
