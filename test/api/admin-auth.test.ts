import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { adminApiRoutes } from '../../src/shared/http/admin-api';
import { paymentWorkflowId } from '../../src/shared/ids';
import type { PaymentState } from '../../src/payments/state';
import {
  appDepsOf,
  balanceMinor,
  createTestStack,
  deliverIpn,
  sample,
  withFields,
  type TestStack,
} from '../support/stack';

/**
 * Every admin route needs the token, however the path is spelled: letter case, trailing or
 * repeated slashes, percent-encoded letters, dot segments, any method. The routes are read from
 * the admin router itself, so a route added later is covered without touching this file.
 */
let stack: TestStack;
const INT = 'authz';
const HELD_TXN = 'AUTH-HELD';
let messageId: string;

// Valid for every admin write route at once (zod objects drop the fields a route does not read),
// so a request that slipped past the guard would really do something.
const BODY = {
  name: 'Mallory',
  mode: 'sandbox',
  allowedCurrencies: ['USD'],
  receiverEmails: ['mallory@example.com'],
  customerId: 'c-auth',
  operator: 'mallory',
  reason: 'bypass',
};
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const WRONG_TOKEN = 'Bearer ' + 'x'.repeat(48);

/** Raw HTTP, so the path goes on the wire exactly as written (fetch would resolve dots and slashes). */
function send(method: string, path: string, authorization?: string, body?: unknown, baseUrl = stack.baseUrl) {
  const { hostname, port } = new URL(baseUrl);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: hostname,
        port,
        method,
        path,
        headers: {
          ...(authorization ? { authorization } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const adminApi = () => adminApiRoutes(appDepsOf(stack));

/** Each admin route (payouts and profiles too) as [methods, path with params filled in], from its layers. */
function adminRouteList(): Array<{ methods: string[]; path: string }> {
  const router = adminApi();
  const routes = router.stack
    .filter((layer) => layer.methods.length > 0)
    .map((layer) => ({
      methods: layer.methods,
      path: String(layer.path).replace(/:(\w+)/g, (_, name: string) =>
        name === 'txnId' ? HELD_TXN : String(layer.path).includes('/messages/') ? messageId : 'auth-new',
      ),
    }));
  expect(routes.length).toBeGreaterThanOrEqual(30);
  expect(routes.every((r) => r.path.startsWith('/admin/') && !r.path.includes(':'))).toBe(true);
  return routes;
}

/** Spellings of one admin path that a lax router, a proxy or a client may treat as the same resource. */
function variants(path: string): string[] {
  const rest = path.slice('/admin'.length);
  return [
    path,
    `/Admin${rest}`,
    `/ADMIN${rest}`,
    `/aDmin${rest}`,
    path.toUpperCase(),
    `${path}/`,
    `${path}//`,
    `/admin/${rest}`,
    `/${path}`,
    `/admin//${rest.slice(1)}`,
    `/%61dmin${rest}`,
    `/%41DMIN${rest}`,
    `/ad%6Din${rest}`,
    `/%2561dmin${rest}`,
    `/admin%2F${rest.slice(1)}`,
    `/ipn/..${path}`,
    `/admin/.${rest}`,
    `/x/../Admin${rest}`,
    `/admin/./${rest.slice(1).replace('/', '/./')}`,
  ];
}

beforeAll(async () => {
  stack = await createTestStack('admin-auth');
  expect(
    await stack.admin('PUT', `/admin/integrations/${INT}`, {
      name: 'Auth shop',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
    }),
  ).toMatchObject({ status: 200 });
  expect(await stack.admin('PUT', '/admin/customers/c-auth', { name: 'Would be credited by a bypass' })).toMatchObject({
    status: 200,
  });
  // A payment waiting for an operator: an assign/approve that slipped through would move it.
  const raw = withFields(sample('web_accept_completed_ipn_simulator_01'), {
    txn_id: HELD_TXN,
    payer_email: 'stranger%40example.com',
  });
  const msg = await deliverIpn(stack, INT, raw);
  expect(msg.state).toBe('applied:held');
  messageId = String(msg._id);
});
afterAll(() => stack?.close());

test('no admin route answers, in any spelling or method, without the right token', async () => {
  const failures: string[] = [];
  let requests = 0;
  for (const route of adminRouteList()) {
    for (const path of variants(route.path)) {
      for (const method of METHODS) {
        for (const authorization of [
          undefined,
          WRONG_TOKEN,
          `Basic ${Buffer.from(`admin:${stack.adminToken}`).toString('base64')}`,
        ]) {
          const res = await send(
            method,
            path,
            authorization,
            ['POST', 'PUT', 'PATCH'].includes(method) ? BODY : undefined,
          );
          requests++;
          const what = `${method} ${path} ${authorization ? authorization.split(' ')[0] : 'no token'}`;
          if (res.status !== 401 && res.status !== 404)
            failures.push(`${what} -> ${res.status} ${res.text.slice(0, 80)}`);
          if (res.headers.allow !== undefined) failures.push(`${what} leaks Allow: ${res.headers.allow}`);
          if (res.status === 401 && method !== 'HEAD' && !res.text.includes('Authorization: Bearer'))
            failures.push(`${what} -> 401 without the auth error`);
        }
      }
    }
  }
  expect(failures).toEqual([]);
  expect(requests).toBeGreaterThan(1000);
  // The guard is about /admin only: health and PayPal's door stay open.
  expect((await send('GET', '/healthz')).status).toBe(200);
  expect((await send('GET', '/administrator')).status).toBe(404);

  // Nothing any handler would have done happened.
  expect(await stack.db.models.Integration.exists({ _id: 'auth-new' })).toBeNull();
  expect(await stack.db.models.Customer.exists({ _id: 'auth-new' })).toBeNull();
  expect(await stack.db.models.Integration.findById(INT).lean()).toMatchObject({ name: 'Auth shop' });
  expect(await stack.db.models.Customer.findById('c-auth').lean()).toMatchObject({
    name: 'Would be credited by a bypass',
  });
  // Only beforeAll's own changes are audited (its admin operator, then the configuration it made).
  expect((await stack.db.models.AuditEvent.find({}).sort({ _id: 1 }).lean()).map((e) => e.action)).toEqual([
    'operator_created',
    'integration_created',
    'customer_created',
  ]);
  expect(await stack.db.models.LedgerEntry.countDocuments({})).toBe(0);
  const state = await stack.client.workflow.getHandle(paymentWorkflowId(INT, HELD_TXN)).query<PaymentState>('state');
  expect(state).toMatchObject({ phase: 'held', hold: { reason: 'no_customer_match' }, customerId: null });
});

test('with the right token every route answers, and only by its own spelling', async () => {
  const bearer = `Bearer ${stack.adminToken}`;
  const answers = [];
  for (const route of adminRouteList().filter((r) => r.methods.includes('GET')))
    answers.push([route.path, (await send('GET', route.path, bearer)).status]);
  // 404: the filled-in id names nothing; what matters is that the guard let the request through.
  expect(answers.filter(([, status]) => status !== 200 && status !== 404)).toEqual([]);
  expect(answers.filter(([, status]) => status === 200).length).toBeGreaterThanOrEqual(5);
  const held = await send('GET', '/admin/held', bearer);
  expect(held.status).toBe(200);
  expect(JSON.parse(held.text).payments).toEqual([expect.objectContaining({ txnId: HELD_TXN })]);
  expect((await send('GET', '/admin/held/', bearer)).status).toBe(200);
  const options = await send('OPTIONS', '/admin/held', bearer);
  expect(options.status).toBe(200);
  expect(options.headers.allow).toMatch(/GET/);
  // The admin router is case-sensitive: a misspelt path is not found even with the token.
  expect((await send('GET', '/Admin/held', bearer)).status).toBe(404);
  expect((await send('PUT', '/ADMIN/integrations/auth-upper', bearer, BODY)).status).toBe(404);
  expect(await stack.db.models.Integration.exists({ _id: 'auth-upper' })).toBeNull();

  // The break-glass token reads, but configuration and money take an operator's own key.
  expect((await send('PUT', '/admin/integrations/auth-ok', bearer, BODY)).status).toBe(403);
  const admin = `Bearer ${(await stack.operators.get('test-admin', 'admin')).apiKey}`;
  const { operator: _, ...asAdmin } = BODY;
  expect((await send('PUT', '/admin/integrations/auth-ok', admin, asAdmin)).status).toBe(200);
  expect(await stack.db.models.Integration.findById('auth-ok').lean()).toMatchObject({ name: 'Mallory' });
  const assign = await stack.admin('POST', `/admin/payments/${HELD_TXN}/assign`, {
    customerId: 'c-auth',
    operator: 'alice',
    reason: 'payer confirmed',
  });
  expect(assign.status).toBe(200);
  expect(await balanceMinor(stack, 'c-auth', 'USD')).toBe(1234);
});

/**
 * Traversal inside a route parameter: the router decodes `%2F` inside `:id` while a path-level reading
 * resolves the `..` and pops /admin itself. Every spelling needs the token, and with it is refused.
 */
const TRAVERSALS: Array<[method: string, path: string]> = [
  ['GET', '/admin/customers/..%2F..%2Fx/ledger'],
  ['GET', '/admin/customers/..%2f..%2fx/ledger'],
  ['GET', '/admin/customers/..%252F..%252Fx/ledger'],
  ['GET', '/admin/customers/..%5C..%5Cx/ledger'],
  ['GET', '/admin/customers/..%5c..%5cc-auth/ledger'],
  ['GET', '/admin/customers/c-auth%2F..%2F..%2F..%2Fx/ledger'],
  ['GET', '/admin/customers/%2E%2E/ledger'],
  ['GET', '/admin/customers/%2e/ledger'],
  ['GET', '/admin/customers/./ledger'],
  ['GET', '/admin/customers/c-auth/./ledger'],
  ['GET', '/admin/customers//ledger'],
  ['GET', '/admin/customers/%2F%2Fc-auth/ledger'],
  ['GET', '/admin/customers/c-auth./ledger'],
  ['GET', '/admin/customers/c-auth../ledger'],
  ['GET', '/admin/customers/c-auth/ledger/..'],
  ['GET', '/admin/customers/c-auth/ledger/.'],
  ['GET', '/admin/customers/..'],
  ['GET', '/ADMIN/customers/..%2F..%2Fx/ledger'],
  ['GET', '/Admin/customers/..%2F..%2Fadmin/ledger'],
  ['GET', '/aDmIn/customers/..%2F..%2F..%2Fhealthz'],
  ['GET', '/admin/integrations/..%2F..%2Fx'],
  ['PUT', '/admin/integrations/..%2F..%2Fx'],
  ['GET', '/admin/payments/..%2F..%2Fx'],
  ['GET', `/admin/payments/${HELD_TXN}%2F..%2F..%2F..%2Fx`],
  ['POST', `/admin/payments/..%2F..%2F${HELD_TXN}/approve`],
  ['POST', `/admin/payments/..%2F..%2Fx/assign`],
  ['DELETE', '/admin/customers/..%2F..%2Fx/ledger'],
  ['OPTIONS', '/admin/customers/..%2F..%2Fx/ledger'],
  ['GET', '/admin/messages/..%2F..%2Fx'],
  ['GET', '/admin/profiles/..%2F..%2Fx'],
  ['POST', '/admin/profiles/..%2F..%2Fx/cancel'],
  ['GET', '/admin/payouts/..%2F..%2Fx'],
  ['GET', '/admin/payouts/..%2F..%2Fx/masspay-file'],
  ['POST', '/admin/payouts/x/items/..%2F..%2Fy/resolve'],
];

test('traversal inside a parameter: 401 without the token, 400 with it, never 200', async () => {
  const bearer = `Bearer ${stack.adminToken}`;
  const answers: string[] = [];
  for (const [method, path] of TRAVERSALS) {
    const body = ['POST', 'PUT'].includes(method) ? BODY : undefined;
    const without = await send(method, path, undefined, body);
    const wrong = await send(method, path, WRONG_TOKEN, body);
    const withToken = await send(method, path, bearer, body);
    answers.push(`${method} ${path}: ${without.status} ${wrong.status} ${withToken.status}`);
    if (without.headers.allow !== undefined) answers.push(`${method} ${path} leaks Allow without the token`);
  }
  expect(answers).toEqual(TRAVERSALS.map(([method, path]) => `${method} ${path}: 401 401 400`));
  // The 400 says why, for whoever mistyped an id.
  const res = await send('GET', '/admin/customers/..%2F..%2Fx/ledger', bearer);
  expect(JSON.parse(res.text)).toEqual({ error: expect.stringContaining('encoded separator') });

  // Dots inside an id are no traversal: the route answers as for any unknown id.
  expect((await send('GET', '/admin/payments/A.B', bearer)).status).toBe(404);
  expect((await send('GET', '/admin/customers/c-auth/ledger', bearer)).status).toBe(200);
  // Nothing a slipped request could have done happened.
  expect(await stack.db.models.Integration.exists({ _id: '../../x' })).toBeNull();
  expect(await stack.db.models.Integration.countDocuments({})).toBe(2);
});

test('the admin router guards its own handlers, even mounted without the app-level guard', async () => {
  const app = new Koa();
  app.use(adminApi().routes());
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const bearer = `Bearer ${stack.adminToken}`;
    const ledgerVia = (id: string, auth?: string) =>
      send('GET', `/admin/customers/${id}/ledger`, auth, undefined, base);
    expect((await ledgerVia('c-auth')).status).toBe(401);
    expect((await ledgerVia('..%2F..%2Fx')).status).toBe(401);
    expect((await ledgerVia('c-auth', bearer)).status).toBe(200);
    // The router's own reading of the parameter, decoded once by it and again by the check.
    for (const id of ['..%2F..%2Fx', '..%252F..%252Fx', '%5C..', '%2E%2E', 'c-auth.']) {
      const res = await ledgerVia(id, bearer);
      expect([id, res.status, JSON.parse(res.text).error]).toEqual([id, 400, expect.stringContaining('(in :id)')]);
    }
    expect((await send('PUT', '/admin/integrations/..%2F..%2Fy', undefined, BODY, base)).status).toBe(401);
  } finally {
    server.close();
  }
});
