import { paymentWorkflowId } from '../../src/shared/ids';
import type { PaymentState } from '../../src/payments/state';
import { codeAtStep, currentStep } from '../../src/operators/totp';
import { createTestStack, deliverIpn, sample, waitFor, withFields, type TestStack } from '../support/stack';

/**
 * The attacks on the admin API, on the real stack: every refusal leaves the held payment,
 * the payout batch and the ledger as they were, and is audited under an authenticated identity.
 */
let stack: TestStack;
const SHOP = 'atk';
const HELD = 'ATK-HELD-1';
const LOCK_SECONDS = 3;

const payment = () => stack.client.workflow.getHandle(paymentWorkflowId(SHOP, HELD)).query<PaymentState>('state');
const stillHeld = async () => expect(await payment()).toMatchObject({ phase: 'held', customerId: null });
const auditOf = async (actor: string) =>
  (await stack.db.models.AuditEvent.find({ actor }).sort({ _id: 1 }).lean()).map((e) => ({
    action: e.action,
    details: e.details as Record<string, unknown>,
  }));
const approveHeld = (as: string, otp?: string | null, body: Record<string, unknown> = {}) =>
  stack.admin('POST', `/admin/payments/${HELD}/approve`, { reason: 'looks fine', ...body }, { as, otp });

beforeAll(async () => {
  stack = await createTestStack('operator-attacks', {
    OPERATOR_OTP_LOCK_SECONDS: String(LOCK_SECONDS),
    // Real 30 s steps: this file tells expired codes from replayed ones.
    OPERATOR_TOTP_PERIOD_SECONDS: '30',
  });
  expect(
    await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
      name: 'Attacked shop',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
    }),
  ).toMatchObject({ status: 200 });
  for (const id of ['c-payee', 'c-other'])
    expect(
      await stack.admin('PUT', `/admin/customers/${id}`, { name: id, paypalEmails: [`${id}@example.com`] }),
    ).toMatchObject({ status: 200 });
  const raw = withFields(sample('web_accept_completed_ipn_simulator_01'), {
    txn_id: HELD,
    receiver_email: 'other-shop%40example.com',
    receiver_id: 'other-shop%40example.com',
    business: 'other-shop%40example.com',
  });
  expect((await deliverIpn(stack, SHOP, raw)).state).toBe('applied:held');
  await stack.operators.get('vera', 'viewer');
  await stack.operators.get('oscar', 'operator');
});
afterAll(() => stack?.close());

test('one key with two operator names: 422, nothing changes', async () => {
  await stack.operators.get('alice');
  const res = await approveHeld('alice', undefined, { operator: 'bob' });
  expect(res).toMatchObject({ status: 422, body: { error: expect.stringContaining("this key is alice's") } });
  await stillHeld();
  // The same name in another spelling is the same person: accepted as alice.
  const own = await stack.admin('POST', `/admin/payments/${HELD}/acknowledge`, { operator: 'ALICE', reason: 'seen' });
  expect(own.status).toBe(409);
  expect((await auditOf('alice')).map((e) => e.action)).toContain('acknowledge_refused');
});

test('a viewer or an operator on an approver route: 403 naming the role', async () => {
  for (const who of ['vera', 'oscar']) {
    const res = await approveHeld(who);
    expect(res).toMatchObject({ status: 403, body: { needs: 'approver' } });
    expect(res.body.error).toContain('needs the approver role');
  }
  // The break-glass token reads and manages operators, never decides.
  const glass = await stack.admin(
    'POST',
    `/admin/payments/${HELD}/approve`,
    { reason: 'x' },
    { token: stack.adminToken },
  );
  expect(glass).toMatchObject({ status: 403, body: { error: expect.stringContaining('ADMIN_TOKEN') } });
  expect((await stack.admin('GET', '/admin/held', undefined, { token: stack.adminToken })).status).toBe(200);
  await stillHeld();
  expect((await auditOf('vera')).map((e) => e.action)).toEqual(['operator_role_refused']);
});

test('a missing, wrong, expired or replayed code: 401, audited, nothing changes', async () => {
  const dave = await stack.operators.get('dave');
  const expired = codeAtStep(dave.secret, currentStep() - 3);
  const good = await stack.operators.code(dave);
  // Taken once by a harmless decision that needs a code too (retry of a message that is not parked: 404).
  expect(
    (
      await stack.admin(
        'POST',
        '/admin/messages/000000000000000000000000/retry',
        { reason: 'r' },
        {
          as: 'dave',
          otp: good,
        },
      )
    ).status,
  ).toBe(404);
  const wrong = good === '000000' ? '111111' : '000000';
  for (const [otp, why] of [
    [null, 'missing'],
    [wrong, 'wrong_or_expired'],
    [expired, 'wrong_or_expired'],
    [good, 'replayed'],
    ['12ab56', 'malformed'],
  ] as const) {
    const res = await approveHeld('dave', otp);
    expect([otp, res.status, res.body.refused]).toEqual([otp, 401, why]);
  }
  await stillHeld();
  const refused = (await auditOf('dave')).filter((e) => e.action === 'operator_otp_refused');
  expect(refused.map((e) => e.details.refused)).toEqual([
    'missing',
    'wrong_or_expired',
    'wrong_or_expired',
    'replayed',
    'malformed',
  ]);
});

test('six wrong codes lock the operator (audited, listed); after the lockout a code works again', async () => {
  const erin = await stack.operators.get('erin');
  const good = await stack.operators.code(erin);
  const wrong = good === '000000' ? '111111' : '000000';
  const answers = [];
  for (let i = 0; i < 6; i++) answers.push((await approveHeld('erin', wrong)).status);
  expect(answers).toEqual([401, 401, 401, 401, 401, 423]);
  // Even the right code is refused while locked.
  expect((await approveHeld('erin', good)).status).toBe(423);
  const listed = await stack.admin('GET', '/admin/operators', undefined, { token: stack.adminToken });
  expect(listed.body.operators.find((o: { id: string }) => o.id === 'erin')).toMatchObject({
    lockedUntil: expect.any(String),
  });
  expect((await auditOf('erin')).map((e) => e.action)).toContain('operator_locked');
  await stillHeld();
  await new Promise((r) => setTimeout(r, LOCK_SECONDS * 1000 + 200));
  expect((await approveHeld('erin', good)).status).toBe(200);
  // The workflow audits the decision under erin's id.
  await waitFor('erin audited by the payment', async () =>
    (await auditOf('erin')).some((e) => !e.action.startsWith('operator_') && !e.action.endsWith('_refused')),
  );
});

test("a disabled operator's key is refused (401); a rotated key replaces the old one", async () => {
  const frank = await stack.operators.get('frank', 'viewer');
  expect((await stack.admin('GET', '/admin/held', undefined, { token: frank.apiKey })).status).toBe(200);
  const rotated = await stack.admin('POST', '/admin/operators/frank/rotate-key', undefined, {
    token: stack.adminToken,
  });
  expect(rotated).toMatchObject({ status: 200, body: { id: 'frank', apiKey: expect.stringMatching(/^ipk\.frank\./) } });
  expect((await stack.admin('GET', '/admin/held', undefined, { token: frank.apiKey })).status).toBe(401);
  expect((await stack.admin('GET', '/admin/held', undefined, { token: rotated.body.apiKey })).status).toBe(200);
  const disabled = await stack.admin('POST', '/admin/operators/frank/disable', undefined, { token: stack.adminToken });
  expect(disabled).toMatchObject({ status: 200, body: { status: 'disabled' } });
  expect((await stack.admin('GET', '/admin/held', undefined, { token: rotated.body.apiKey })).status).toBe(401);
});

test('a creator approving its own batch through the API: refused (422) and audited', async () => {
  await stack.ledger.post({
    customerId: 'c-payee',
    currency: 'USD',
    amountMinor: 5_000,
    idempotencyKey: 'fund:c-payee',
    reason: 'manual',
    mode: 'sandbox',
  });
  const created = await stack.admin('POST', '/admin/payouts', {
    integrationId: SHOP,
    currency: 'USD',
    operator: 'carol',
    items: [{ customerId: 'c-payee', receiverEmail: 'c-payee@example.com', amount: '10.00' }],
  });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  await waitFor('reserved', async () => (await stack.admin('GET', `/admin/payouts/${id}`)).body.reserved);
  // Carol's own key, any name she types: the approver is the key's identity.
  for (const body of [{ note: 'mine' }, { operator: 'Carol', note: 'mine' }]) {
    const res = await stack.admin('POST', `/admin/payouts/${id}/approve`, body, { as: 'carol' });
    expect(res).toMatchObject({ status: 422, body: { error: expect.stringContaining('four eyes') } });
  }
  expect(
    (await stack.admin('POST', `/admin/payouts/${id}/approve`, { operator: 'bob', note: 'mine' }, { as: 'carol' }))
      .status,
  ).toBe(422);
  expect((await stack.admin('GET', `/admin/payouts/${id}`)).body.state).toBe('created');
  const refusals = await stack.db.models.AuditEvent.find({ txnId: id, action: 'payout_approve_refused' }).lean();
  expect(refusals.map((e) => e.actor)).toEqual(['carol', 'carol']);
  // Another identity approves.
  expect((await stack.admin('POST', `/admin/payouts/${id}/approve`, { note: 'checked' }, { as: 'bob' })).status).toBe(
    200,
  );
  await waitFor('approved', async () => (await stack.admin('GET', `/admin/payouts/${id}`)).body.state === 'approved');
});

test('keys and TOTP secrets never appear in admin answers after creation, /metrics or workflow histories', async () => {
  const created = await stack.admin(
    'POST',
    '/admin/operators',
    { name: 'Grace', role: 'approver' },
    {
      token: stack.adminToken,
    },
  );
  expect(created).toMatchObject({
    status: 201,
    body: { id: 'grace', totpUri: expect.stringMatching(/^otpauth:\/\/totp\//) },
  });
  const { apiKey, totpUri } = created.body as { apiKey: string; totpUri: string };
  const secret = new URL(totpUri).searchParams.get('secret')!;
  const secretsOf = [apiKey, apiKey.split('.')[2]!, secret, stack.config.OPERATOR_SECRETS_KEY!];
  for (const op of ['alice', 'bob', 'carol', 'dave', 'erin']) {
    const o = await stack.operators.get(op);
    secretsOf.push(o.apiKey.split('.')[2]!, o.secret);
  }
  const texts: string[] = [];
  for (const path of ['/admin/operators', '/admin/audit?limit=500', '/admin/held'])
    texts.push(JSON.stringify((await stack.admin('GET', path, undefined, { token: stack.adminToken })).body));
  texts.push(await (await fetch(`${stack.baseUrl}/metrics`)).text());
  for await (const wf of stack.client.workflow.list({ query: `TaskQueue = '${stack.config.TEMPORAL_TASK_QUEUE}'` })) {
    const history = await stack.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    texts.push(JSON.stringify(history));
  }
  expect(texts.length).toBeGreaterThan(5);
  const leaks = secretsOf.filter((s) => texts.some((t) => t.includes(s)));
  expect(leaks).toEqual([]);
  // Stored only as a hash and a sealed value.
  const doc = await stack.db.models.Operator.findById('grace').lean();
  expect(JSON.stringify(doc)).not.toContain(secret);
  expect(JSON.stringify(doc)).not.toContain(apiKey.split('.')[2]!);
});

test('failed API keys are rate-limited per client address', async () => {
  const limited = await createTestStack('operator-key-limit', { ADMIN_KEY_FAILURE_POINTS: '3' });
  try {
    const get = (token: string) => limited.admin('GET', '/admin/held', undefined, { token });
    for (let i = 0; i < 3; i++) expect((await get(`ipk.nobody.${'x'.repeat(43)}`)).status).toBe(401);
    const blocked = await get('wrong');
    expect(blocked.status).toBe(429);
    // Over the limit, even the right key waits for the window: guessing cannot be told from a hit.
    expect((await get(limited.adminToken)).status).toBe(429);
  } finally {
    await limited.close();
  }
});
