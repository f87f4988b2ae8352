import { adminApiRoutes } from '../../src/shared/http/admin-api';
import { ADMIN_ROUTE_POLICY } from '../../src/shared/http/route-policy';
import { OPERATOR_ROLES, roleAllows, type OperatorRole } from '../../src/operators/contract';
import { appDepsOf, createTestStack, type TestStack } from '../support/stack';

/**
 * Every admin route × every role, read from the admin router itself (a route added later is walked
 * without touching this file, and refused until the policy table names its role).
 */
let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack('operator-roles');
});
afterAll(() => stack?.close());

const routes = () =>
  adminApiRoutes(appDepsOf(stack))
    .stack.filter((layer) => layer.methods.length > 0)
    .flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((method) => `${method} ${String(layer.path)}`));

test('the policy table names exactly the admin routes', () => {
  expect([...routes()].sort()).toEqual(Object.keys(ADMIN_ROUTE_POLICY).sort());
});

test('roles nest viewer ⊂ operator ⊂ approver; admin stands beside them, deciding no money', () => {
  expect(roleAllows('operator', 'viewer') && roleAllows('approver', 'operator')).toBe(true);
  expect(roleAllows('operator', 'approver') || roleAllows('viewer', 'operator')).toBe(false);
  expect(roleAllows('admin', 'operator') || roleAllows('admin', 'approver')).toBe(false);
  expect(roleAllows('approver', 'admin')).toBe(false);
  const money = Object.values(ADMIN_ROUTE_POLICY).filter((p) => p.otp);
  expect(money.every((p) => p.role !== 'admin' && !p.breakGlass)).toBe(true);
  expect(money.length).toBeGreaterThanOrEqual(15);
});

test('every admin route × every role: 403 naming the role needed exactly where the role falls short', async () => {
  const who: Array<[string, string]> = [];
  for (const role of OPERATOR_ROLES) who.push([role, (await stack.operators.get(`walk-${role}`, role)).apiKey]);
  who.push(['break-glass', stack.adminToken]);
  const wrong: string[] = [];
  let checked = 0;
  for (const route of routes()) {
    const [method, pattern] = route.split(' ') as [string, string];
    const policy = ADMIN_ROUTE_POLICY[route]!;
    const path = pattern.replace(/:\w+/g, 'walk-none');
    for (const [name, token] of who) {
      // No code is sent: a money route answers 401 (or 423 once locked) to a role it allows.
      const res = await stack.admin(method, path, method === 'GET' ? undefined : { reason: 'walk', note: 'walk' }, {
        token,
      });
      const allowed =
        name === 'break-glass' ? policy.breakGlass === true : roleAllows(name as OperatorRole, policy.role);
      checked++;
      if (allowed ? res.status === 403 : res.status !== 403 || res.body.needs !== policy.role)
        wrong.push(`${name} ${route} -> ${res.status} ${JSON.stringify(res.body).slice(0, 100)}`);
    }
  }
  expect(wrong).toEqual([]);
  expect(checked).toBeGreaterThanOrEqual(5 * 45);
  // Nothing a walk could have done happened.
  expect(await stack.db.models.Integration.countDocuments({})).toBe(0);
  expect(await stack.db.models.PayoutBatch.countDocuments({})).toBe(0);
});
