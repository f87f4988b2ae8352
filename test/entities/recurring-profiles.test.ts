import { readFileSync } from 'node:fs';
import path from 'node:path';
import { formatPayPalDate } from '../../src/profiles/state';
import { profileWorkflowId } from '../../src/profiles/state';
import { SIM_SUBSCRIBER, type SimProfile } from '../../tools/paypal-sim/nvp';
import { balanceMinor, createTestStack, deliverIpn, waitFor, withFields, type TestStack } from '../support/stack';

/**
 * Recurring profiles on the real stack: IPNs over HTTP, postback and NVP calls to the PayPal
 * simulator, Temporal, the ledger. Each test asserts the profile's exact state and the money.
 */
let stack: TestStack;
const SHOP = 'rec';
const RECEIVER = 'resear_1362421868_biz@gmail.com';
const fixture = (name: string) => readFileSync(path.join(__dirname, '..', 'fixtures', 'ipn', `${name}.ipn`));
const at = (minutesFromNow: number) =>
  encodeURIComponent(formatPayPalDate(new Date(Date.now() + minutesFromNow * 60_000).toISOString()));
const enc = encodeURIComponent;

/** A message about `id` from payer@example.com (customer c-rec), over a fixture. */
const msg = (name: string, id: string, fields: Record<string, string> = {}) =>
  withFields(fixture(name), {
    recurring_payment_id: id,
    payer_email: enc('payer@example.com'),
    receiver_email: enc(RECEIVER),
    ...fields,
  });
const created = (id: string, f: Record<string, string> = {}) =>
  msg('recurring_payment_profile_created_01', id, { time_created: at(-60), next_payment_date: at(60 * 24 * 10), ...f });
const paid = (id: string, txn: string, f: Record<string, string> = {}) =>
  msg('recurring_payment_completed_01', id, {
    txn_id: txn,
    payment_date: at(0),
    next_payment_date: at(60 * 24 * 30),
    time_created: at(-60),
    ...f,
  });
const failed = (id: string, kind: string, outstanding: string) =>
  msg('recurring_payment_failed_utf8_01', id, {
    txn_type: kind,
    amount_per_cycle: '29.95',
    amount: '29.95',
    outstanding_balance: outstanding,
    next_payment_date: at(60 * 24 * 5),
    residence_country: 'US',
    payer_email: enc('payer@example.com'),
  });

const profile = async (id: string, integrationId = SHOP) => {
  const res = await stack.admin('GET', `/admin/profiles/${id}?integrationId=${integrationId}`);
  expect(res.status).toBe(200);
  return res.body;
};
const act = (id: string, action: string, body: Record<string, unknown> = {}) =>
  stack.admin('POST', `/admin/profiles/${id}/${action}?integrationId=${SHOP}`, {
    operator: 'alice',
    note: 'ops ticket 42',
    ...body,
  });
const simProfile = (id: string, over: Partial<SimProfile> = {}): SimProfile =>
  stack.sim.nvp.upsertProfile({
    id,
    status: 'Active',
    currency: 'USD',
    amountPerCycleMinor: 2995,
    outstandingMinor: 0,
    failedPaymentCount: 0,
    nextBillingDate: new Date(Date.now() + 10 * 86400_000).toISOString(),
    listenerUrl: `${stack.baseUrl}/ipn/${SHOP}`,
    receiverEmail: RECEIVER,
    payerEmail: 'payer@example.com',
    ...over,
  });
const usd = () => balanceMinor(stack, 'c-rec', 'USD');
const audit = async (id: string) =>
  (await stack.admin('GET', `/admin/audit?txnId=${id}`)).body as Array<{
    actor: string;
    action: string;
    reason?: string;
    details?: any;
  }>;

beforeAll(async () => {
  process.env.PAYPAL_NVP_REC_USERNAME = 'rec_api1.example.com';
  process.env.PAYPAL_NVP_REC_PASSWORD = 'sim-password';
  process.env.PAYPAL_NVP_REC_SIGNATURE = 'sim-signature';
  stack = await createTestStack('recurring-profiles');
  stack.sim.nvp.credentials = {
    username: 'rec_api1.example.com',
    password: 'sim-password',
    signature: 'sim-signature',
  };
  for (const id of [SHOP, 'rec-nocreds']) {
    const integration = {
      name: id,
      mode: 'sandbox',
      allowedCurrencies: ['USD', 'JPY'],
      receiverEmails: [RECEIVER],
      // Only `rec` names credentials; `rec-nocreds` (which the old derived names mapped close to it) names none.
      ...(id === SHOP ? { nvpCredentialsEnv: 'PAYPAL_NVP_REC' } : {}),
    };
    expect(await stack.admin('PUT', `/admin/integrations/${id}`, integration)).toMatchObject({ status: 200 });
  }
  expect(
    await stack.admin('PUT', '/admin/customers/c-rec', { name: 'Rec', paypalEmails: ['payer@example.com'] }),
  ).toMatchObject({ status: 200 });
  expect(await stack.admin('PUT', '/admin/customers/c-late', { name: 'Late', paypalEmails: [] })).toMatchObject({
    status: 200,
  });
});
afterAll(() => stack?.close());

/** A workflow's history with every payload decoded (payload data is base64: a plain search would miss it). */
const historyText = async (workflowId: string) =>
  JSON.stringify(await stack.client.workflow.getHandle(workflowId).fetchHistory(), (key, v: unknown) =>
    key === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v,
  );
const billCalls = (id: string) =>
  stack.sim.nvp.calls.filter((c) => c.method === 'BillOutstandingAmount' && c.params.PROFILEID === id);

test(
  'created → payment → skipped → failed → suspended → ' + 'reactivated by an operator → outstanding billed → cancelled',
  async () => {
    const id = 'I-LIFE0000001';
    const start = await usd();
    expect((await deliverIpn(stack, SHOP, created(id))).state).toBe('applied:Active');
    expect((await deliverIpn(stack, SHOP, paid(id, 'LIFE-TX-1'))).state).toBe('applied:Active');
    expect(await usd()).toBe(start + 2995);
    await deliverIpn(stack, SHOP, failed(id, 'recurring_payment_skipped', '29.95'));
    await deliverIpn(stack, SHOP, failed(id, 'recurring_payment_failed', '59.90'));
    const suspended = msg('recurring_payment_suspended_max_failed_01', id, {
      outstanding_balance: '89.85',
      initial_payment_amount: '0.00',
    });
    expect((await deliverIpn(stack, SHOP, suspended)).state).toBe('applied:Suspended');
    let p = await profile(id);
    expect(p).toMatchObject({
      id,
      integrationId: SHOP,
      customerId: 'c-rec',
      status: 'Suspended',
      currency: 'USD',
      amountPerCycleMinor: 2995,
      outstandingMinor: 8985,
      failedPaymentCount: 2,
      nextPaymentDate: null,
      attention: ['suspended_max_failed_payments'],
    });
    expect(
      (await stack.admin('GET', '/admin/held')).body.profiles.map((x: { profileId: string }) => x.profileId),
    ).toContain(id);

    // PayPal's side of the same profile, for the API calls.
    simProfile(id, { status: 'Suspended', outstandingMinor: 8985, failedPaymentCount: 2 });
    const reactivated = await act(id, 'reactivate');
    expect(reactivated).toMatchObject({ status: 200, body: { applied: true, paypal: { ack: 'Success' } } });
    p = await profile(id);
    expect(p).toMatchObject({ status: 'Active', attention: [], fields: { status: { source: 'api', by: 'alice' } } });
    expect(stack.sim.nvp.profiles.get(id)!.status).toBe('Active');

    expect(await act(id, 'bill-outstanding', { amount: '50.00' })).toMatchObject({ status: 200 });
    // A second bill before the first one's IPN is refused as PayPal would (11577) — unless the IPN already came.
    p = await waitFor('outstanding payment credited', async () => {
      const x = await profile(id);
      return x.billQueued === null && x.creditedMinor === 7995 && x;
    });
    expect(p).toMatchObject({ outstandingMinor: 3985, status: 'Active' });
    expect(await usd()).toBe(start + 7995);

    expect(await act(id, 'cancel')).toMatchObject({ status: 200 });
    expect(await profile(id)).toMatchObject({ status: 'Cancelled', outstandingMinor: 3985, creditedMinor: 7995 });
    expect(stack.sim.nvp.profiles.get(id)!.status).toBe('Cancelled');
    // Cancelling again is what was asked: success, no call.
    const calls = stack.sim.nvp.calls.length;
    expect(await act(id, 'cancel')).toMatchObject({ status: 200, body: { detail: `${id} is already cancelled` } });
    expect(stack.sim.nvp.calls.length).toBe(calls);
    const actions = (await audit(id)).map((a) => [a.action, a.actor, a.details?.paypal?.ack ?? null]);
    expect(actions).toEqual([
      ['profile_reactivate', 'alice', 'Success'],
      ['profile_bill', 'alice', 'Success'],
      ['profile_cancel', 'alice', 'Success'],
      ['profile_cancel', 'alice', null],
    ]);
    // The credentials never reach what the workflow recorded.
    const history = await historyText(profileWorkflowId(SHOP, id));
    expect(history).toContain('BillOutstandingAmount'); // the payloads are read
    expect(history).not.toContain('sim-password');
    expect(history).not.toContain('sim-signature');
  },
);

test('a JPY profile: no decimals', async () => {
  const id = 'I-JPY00000001';
  const before = await balanceMinor(stack, 'c-rec', 'JPY');
  await deliverIpn(
    stack,
    SHOP,
    created(id, { currency_code: 'JPY', amount_per_cycle: '1500', amount: '1500', outstanding_balance: '0' }),
  );
  const pay = paid(id, 'JPY-TX-1', {
    mc_currency: 'JPY',
    currency_code: 'JPY',
    mc_gross: '1500',
    mc_fee: '84',
    amount: '1500',
    amount_per_cycle: '1500',
    outstanding_balance: '0',
    payment_gross: '',
    payment_fee: '',
  });
  expect((await deliverIpn(stack, SHOP, pay)).state).toBe('applied:Active');
  expect(await profile(id)).toMatchObject({
    currency: 'JPY',
    amountPerCycleMinor: 1500,
    outstandingMinor: 0,
    creditedMinor: 1500,
  });
  expect(await balanceMinor(stack, 'c-rec', 'JPY')).toBe(before + 1500);
});

test('a catch-up payment credits mc_gross, not the amount per cycle', async () => {
  const id = 'I-CATCHUP0001';
  const before = await usd();
  await deliverIpn(stack, SHOP, created(id));
  await deliverIpn(stack, SHOP, paid(id, 'CATCH-TX-1', { mc_gross: '59.90', amount: '29.95' }));
  expect(await profile(id)).toMatchObject({ amountPerCycleMinor: 2995, creditedMinor: 5990 });
  expect(await usd()).toBe(before + 5990);
  // A refund of that cycle payment reaches the profile that credited it (not an orphaned payment entity).
  const refund = withFields(fixture('recurring_payment_completed_01'), {
    recurring_payment_id: id,
    payer_email: enc('payer@example.com'),
    txn_id: 'CATCH-REFUND-1',
    parent_txn_id: 'CATCH-TX-1',
    payment_status: 'Refunded',
    mc_gross: '-10.00',
    mc_fee: '-0.30',
    reason_code: 'refund',
    payment_date: at(1),
  });
  const refunded = await deliverIpn(stack, SHOP, refund);
  expect(refunded.state).toBe('applied:Active');
  expect(await profile(id)).toMatchObject({ creditedMinor: 5990, debitedMinor: 1000, attention: [] });
  expect(await usd()).toBe(before + 4990);
  expect(await stack.db.models.Payment.exists({ _id: `${SHOP}:CATCH-TX-1` })).toBeNull();
});

test('out of order and duplicates: a late profile_created resets nothing; resends change nothing', async () => {
  const id = 'I-ORDER000001';
  const before = await usd();
  const payment = paid(id, 'ORDER-TX-1', { outstanding_balance: '10.00' });
  expect((await deliverIpn(stack, SHOP, payment)).state).toBe('applied:Active');
  expect((await deliverIpn(stack, SHOP, withFields(payment, { resend: 'true' }))).state).toBe('duplicate');
  const suspended = msg('recurring_payment_suspended_max_failed_01', id, { outstanding_balance: '39.95' });
  await deliverIpn(stack, SHOP, suspended);
  expect((await deliverIpn(stack, SHOP, withFields(suspended, { resend: 'true' }))).state).toBe('duplicate');
  // The profile's creation, delivered last, says Active with no balance: older news.
  expect((await deliverIpn(stack, SHOP, created(id, { outstanding_balance: '0.00' }))).state).toBe('applied:Suspended');
  expect(await profile(id)).toMatchObject({ status: 'Suspended', outstandingMinor: 3995, creditedMinor: 2995 });
  expect(await usd()).toBe(before + 2995);
  expect(await stack.db.models.LedgerEntry.countDocuments({ txnId: 'ORDER-TX-1' })).toBe(1);
});

test('an unmatched profile is held, then assigned: what waited is credited once', async () => {
  const id = 'I-STRANGER001';
  const stranger = { payer_email: enc('who@example.com') };
  await deliverIpn(stack, SHOP, created(id, stranger));
  await deliverIpn(stack, SHOP, paid(id, 'STRANGER-TX-1', stranger));
  expect(await profile(id)).toMatchObject({
    customerId: null,
    creditedMinor: 0,
    attention: ['no_customer_match'],
    payments: [{ held: 'no_customer_match' }],
  });
  const held = (await stack.admin('GET', '/admin/held')).body.profiles.find(
    (x: { profileId: string }) => x.profileId === id,
  );
  expect(held.attention).toEqual(['no_customer_match', 'STRANGER-TX-1:no_customer_match']);
  expect(await act(id, 'assign', { customerId: 'nobody' })).toMatchObject({ status: 422 });
  expect(await act(id, 'assign', { customerId: 'c-late' })).toMatchObject({ status: 200 });
  expect(await profile(id)).toMatchObject({
    customerId: 'c-late',
    creditedMinor: 2995,
    attention: [],
    payments: [{ held: null, creditedMinor: 2995 }],
  });
  expect(await balanceMinor(stack, 'c-late', 'USD')).toBe(2995);
  expect(await act(id, 'assign', { customerId: 'c-rec' })).toMatchObject({
    status: 409,
    body: { details: { rule: 'already_credited' } },
  });
});

describe('operator actions: our rules, then PayPal’s answers', () => {
  const id = 'I-RULES000001';
  beforeAll(async () => {
    await deliverIpn(stack, SHOP, created(id));
    await deliverIpn(stack, SHOP, failed(id, 'recurring_payment_failed', '29.95'));
  });

  test.each([
    ['reactivate', {}, 409, '11558'],
    ['bill-outstanding', { amount: '30.00' }, 409, '11576'],
    ['bill-outstanding', { amount: '0.00' }, 422, 'amount'],
    ['acknowledge', {}, 409, 'nothing_to_acknowledge'],
    ['approve', {}, 409, 'nothing_held'],
  ])('%s %j is refused with %i naming %s, without calling PayPal', async (action, body, status, rule) => {
    const calls = stack.sim.nvp.calls.length;
    const res = await act(id, action, body);
    expect(res).toMatchObject({ status, body: { details: { rule } } });
    expect(stack.sim.nvp.calls.length).toBe(calls);
    expect((await audit(id)).at(-1)).toMatchObject({
      action: expect.stringMatching(/_refused$/),
      actor: 'alice',
      details: { rule },
    });
  });

  test('a malformed request is 400 and changes nothing', async () => {
    // Who acts comes from the key now (no operator field is fine); a decision without its reason is malformed.
    expect(
      await stack.admin('POST', `/admin/profiles/${id}/suspend?integrationId=${SHOP}`, { comment: 'no reason' }),
    ).toMatchObject({ status: 400 });
    expect(
      await stack.admin('POST', `/admin/profiles/${id}/bill-outstanding?integrationId=${SHOP}`, {
        operator: 'a',
        note: 'b',
        amount: '-1',
      }),
    ).toMatchObject({ status: 400 });
  });

  test("PayPal's refusals are answered as 409 with PayPal's code, and the state stays", async () => {
    // Unknown to PayPal: 11552.
    expect(await act(id, 'suspend')).toMatchObject({
      status: 409,
      body: { details: { rule: '11552', paypal: { ack: 'Failure' } } },
    });
    // PayPal has it suspended already (we were not told): 11557, our state is not changed by a refusal.
    simProfile(id, { status: 'Suspended', outstandingMinor: 2995 });
    const res = await act(id, 'suspend');
    expect(res).toMatchObject({
      status: 409,
      body: { details: { rule: '11557', paypal: { code: '11557', longMessage: expect.any(String) } } },
    });
    expect(await profile(id)).toMatchObject({ status: 'Active' });
    // A bill within 24 h of the next payment on PayPal's side: 11578.
    simProfile(id, {
      status: 'Active',
      outstandingMinor: 2995,
      nextBillingDate: new Date(Date.now() + 3600_000).toISOString(),
    });
    expect(await act(id, 'bill-outstanding')).toMatchObject({ status: 409, body: { details: { rule: '11578' } } });
    // Wrong credentials: PayPal's security error.
    stack.sim.nvp.credentials = { username: 'rec_api1.example.com', password: 'rotated', signature: 'sim-signature' };
    try {
      expect(await act(id, 'refresh')).toMatchObject({ status: 409, body: { details: { rule: '10002' } } });
    } finally {
      stack.sim.nvp.credentials = {
        username: 'rec_api1.example.com',
        password: 'sim-password',
        signature: 'sim-signature',
      };
    }
    const answers = (await audit(id))
      .filter((a) => a.details?.paypal)
      .map((a) => [a.action, a.details.paypal.code ?? a.details.paypal.ack]);
    expect(answers).toEqual([
      ['profile_suspend', '11552'],
      ['profile_suspend', '11557'],
      ['profile_bill', '11578'],
      ['profile_refresh', '10002'],
    ]);
  });

  test('no credentials configured: 502 naming the variables', async () => {
    await deliverIpn(stack, 'rec-nocreds', created('I-NOCREDS0001'));
    const res = await stack.admin('POST', '/admin/profiles/I-NOCREDS0001/suspend?integrationId=rec-nocreds', {
      operator: 'alice',
      note: 'x',
    });
    expect(res).toMatchObject({ status: 502, body: { details: { rule: 'paypal_unreachable' } } });
    expect(res.body.error).toMatch(/integration rec-nocreds names no NVP credentials: set its nvpCredentialsEnv/);
  });
});

describe('operator actions on profiles in other states: refused before PayPal is called', () => {
  const lifecycle = (id: string, txnType: string, status: string) =>
    msg('recurring_payment_profile_created_01', id, {
      txn_type: txnType,
      profile_status: status,
      time_created: at(-60),
    });
  const refusedWithoutCall = async (id: string, action: string, body: Record<string, unknown>, rule: string) => {
    const calls = stack.sim.nvp.calls.length;
    expect([action, await act(id, action, body)]).toMatchObject([action, { status: 409, body: { details: { rule } } }]);
    expect(stack.sim.nvp.calls.length).toBe(calls);
  };

  test('an expired profile: suspend 11557, reactivate 11558, cancel 11556, bill by status', async () => {
    const id = 'I-EXPIRED00001';
    await deliverIpn(stack, SHOP, created(id));
    await deliverIpn(stack, SHOP, lifecycle(id, 'recurring_payment_expired', 'Expired'));
    expect(await profile(id)).toMatchObject({ status: 'Expired' });
    await refusedWithoutCall(id, 'suspend', {}, '11557');
    await refusedWithoutCall(id, 'reactivate', {}, '11558');
    await refusedWithoutCall(id, 'cancel', {}, '11556');
    await refusedWithoutCall(id, 'bill-outstanding', {}, 'profile_status');
    expect(await profile(id)).toMatchObject({ status: 'Expired' });
  });

  test('cancelling a cancelled profile is success, not an error, and calls nobody', async () => {
    const id = 'I-CANCELLED001';
    await deliverIpn(stack, SHOP, created(id));
    await deliverIpn(stack, SHOP, lifecycle(id, 'recurring_payment_profile_cancel', 'Cancelled'));
    expect(await profile(id)).toMatchObject({ status: 'Cancelled' });
    const calls = stack.sim.nvp.calls.length;
    expect(await act(id, 'cancel')).toMatchObject({ status: 200, body: { detail: `${id} is already cancelled` } });
    expect(stack.sim.nvp.calls.length).toBe(calls);
    await refusedWithoutCall(id, 'suspend', {}, '11557');
  });

  test('billing within 24 h of the next scheduled payment is 11578, before PayPal is asked', async () => {
    const id = 'I-SOONDUE00001';
    await deliverIpn(stack, SHOP, created(id, { next_payment_date: at(60) }));
    const owes = msg('recurring_payment_failed_utf8_01', id, {
      txn_type: 'recurring_payment_failed',
      amount_per_cycle: '29.95',
      amount: '29.95',
      outstanding_balance: '29.95',
      next_payment_date: at(60),
      payer_email: enc('payer@example.com'),
    });
    await deliverIpn(stack, SHOP, owes);
    expect(await profile(id)).toMatchObject({ outstandingMinor: 2995 });
    await refusedWithoutCall(id, 'bill-outstanding', {}, '11578');
  });
});

test('drift: PayPal changed the profile behind our back; a refresh catches it', async () => {
  const id = 'I-DRIFT000001';
  await deliverIpn(stack, SHOP, created(id));
  simProfile(id, { status: 'Suspended', outstandingMinor: 5990, failedPaymentCount: 2, nextBillingDate: null });
  expect(await act(id, 'refresh')).toMatchObject({
    status: 200,
    body: { detail: expect.stringMatching(/^updated: status Suspended/) },
  });
  expect(await profile(id)).toMatchObject({
    status: 'Suspended',
    outstandingMinor: 5990,
    failedPaymentCount: 2,
    nextPaymentDate: null,
    fields: { status: { source: 'refresh' }, outstanding: { source: 'refresh' } },
  });
  expect((await profile(id)).history.at(-1).what).toMatch(/^PayPal's view differed: status Active/);
  // Nothing changed since: a second refresh reports no change.
  expect(await act(id, 'refresh')).toMatchObject({ status: 200, body: { detail: 'no change' } });
  // A bill whose collection fails: PayPal's IPN says so; no money, the balance stays, another bill may follow.
  stack.sim.nvp.profiles.get(id)!.failNextBill = true;
  const before = await usd();
  expect(await act(id, 'bill-outstanding')).toMatchObject({ status: 200, body: { paypal: { ack: 'Success' } } });
  const p = await waitFor('bill result', async () => {
    const x = await profile(id);
    return (
      x.billQueued === null && x.history.some((h: { what: string }) => /outstanding_payment_failed/.test(h.what)) && x
    );
  });
  expect(p).toMatchObject({ status: 'Suspended', outstandingMinor: 5990, creditedMinor: 0 });
  expect(await usd()).toBe(before);
});

test('a lost answer to BillOutstandingAmount: held, never sent again; PayPal’s balance then settles it', async () => {
  const id = 'I-LOSTBILL0001';
  await deliverIpn(stack, SHOP, created(id));
  await deliverIpn(stack, SHOP, failed(id, 'recurring_payment_failed', '59.90'));
  // PayPal collects at once, but its IPN is slow.
  simProfile(id, { outstandingMinor: 5990, holdBillIpn: true });
  const before = await usd();
  stack.sim.nvp.faults.push({ kind: 'lost_answer' });
  expect(await act(id, 'bill-outstanding', { amount: '50.00' })).toMatchObject({
    status: 502,
    body: { details: { rule: 'bill_uncertain', paypal: { ack: 'Unknown' } } },
  });
  expect(billCalls(id)).toEqual([expect.objectContaining({ answerLost: true })]);
  expect(await profile(id)).toMatchObject({
    attention: ['bill_uncertain'],
    billUncertain: { amountMinor: 5000, operator: 'alice', outstandingBeforeMinor: 5990 },
  });
  const held = (await stack.admin('GET', '/admin/held')).body.profiles.find(
    (x: { profileId: string }) => x.profileId === id,
  );
  expect(held.attention).toEqual(['bill_uncertain']);

  // Neither a second bill nor a person's acknowledgement gets past it; PayPal is not called again.
  for (const [action, body] of [
    ['bill-outstanding', { amount: '50.00' }],
    ['bill-outstanding', { amount: '10.00' }],
    ['acknowledge', { matter: 'bill_uncertain' }],
    ['acknowledge', {}],
  ] as const) {
    expect([action, body, await act(id, action, body)]).toMatchObject([
      action,
      body,
      {
        status: 409,
        body: {
          details: {
            rule: action === 'acknowledge' && !('matter' in body) ? 'matter_needs_own_decision' : 'bill_uncertain',
          },
        },
      },
    ]);
  }
  expect(billCalls(id)).toHaveLength(1);

  // PayPal's balance fell below what it was when the bill went: it was carried out.
  await waitFor('PayPal collected', async () => stack.sim.nvp.profiles.get(id)!.outstandingMinor === 990);
  expect(await act(id, 'refresh')).toMatchObject({ status: 200 });
  expect(await profile(id)).toMatchObject({ billUncertain: null, attention: [], outstandingMinor: 990 });
  // The same bill again is now PayPal's 11576 (more than is owed), refused before any call.
  expect(await act(id, 'bill-outstanding', { amount: '50.00' })).toMatchObject({
    status: 409,
    body: { details: { rule: '11576' } },
  });
  expect(billCalls(id)).toHaveLength(1);
  // The IPN comes at last: the money is credited once.
  expect(stack.sim.nvp.releaseHeldIpns()).toBe(1);
  await waitFor('outstanding payment credited', async () => (await profile(id)).creditedMinor === 5000);
  expect(await usd()).toBe(before + 5000);
  const trail = (await audit(id)).map((a) => [a.action, a.details?.verdict ?? a.details?.paypal?.ack ?? null]);
  expect(trail).toEqual([
    ['profile_bill', 'Unknown'],
    ['profile_bill_refused', null],
    ['profile_bill_refused', null],
    ['profile_acknowledge_refused', null],
    ['profile_acknowledge_refused', null],
    ['profile_refresh', 'Success'],
    ['profile_bill_reconciled', 'carried_out'],
    ['profile_bill_refused', null],
  ]);
});

test('a refresh keeps the subscriber’s name and address out of the audit log and the workflow history', async () => {
  const id = 'I-PRIVATE0001';
  await deliverIpn(stack, SHOP, created(id));
  simProfile(id, { outstandingMinor: 2995 });
  const res = await act(id, 'refresh');
  expect(res).toMatchObject({ status: 200, body: { paypal: { ack: 'Success' } } });
  // PayPal did send them.
  expect(stack.sim.nvp.calls.at(-1)!.answer).toMatchObject({
    SUBSCRIBERNAME: SIM_SUBSCRIBER.name,
    SHIPTOSTREET: SIM_SUBSCRIBER.street,
  });
  const audits = JSON.stringify(await stack.db.models.AuditEvent.find({ txnId: id }).lean());
  const history = await historyText(profileWorkflowId(SHOP, id));
  expect(audits).toContain('profile_refresh');
  expect(history).toContain('OUTSTANDINGBALANCE');
  for (const [where, text] of [
    ['audit', audits],
    ['history', history],
    ['answer', JSON.stringify(res.body)],
  ] as const) {
    for (const pii of [SIM_SUBSCRIBER.name, SIM_SUBSCRIBER.street]) {
      expect([where, text.includes(pii)]).toEqual([where, false]);
    }
  }
});

test('a payment dated after the cancellation is a contradiction: only a decision naming it closes it', async () => {
  const id = 'I-AFTERCANCEL1';
  await deliverIpn(stack, SHOP, created(id));
  await deliverIpn(stack, SHOP, failed(id, 'recurring_payment_failed', '119.80'));
  const cancel = msg('recurring_payment_profile_created_01', id, {
    txn_type: 'recurring_payment_profile_cancel',
    profile_status: 'Cancelled',
    time_created: at(-60),
  });
  expect((await deliverIpn(stack, SHOP, cancel)).state).toBe('applied:Cancelled');
  const before = await usd();
  await deliverIpn(stack, SHOP, paid(id, 'AFTER-TX-1', { payment_date: at(5) }));
  const contradictions = [expect.stringMatching(/^final_status_contradicted:/), 'payment_after_final:AFTER-TX-1'];
  expect(await profile(id)).toMatchObject({
    status: 'Cancelled',
    attention: ['outstanding_over_threshold', ...contradictions],
  });
  // PayPal collected it: credited as received; that it collected at all waits for a person.
  expect(await usd()).toBe(before + 2995);
  const held = (await stack.admin('GET', '/admin/held')).body.profiles.find(
    (x: { profileId: string }) => x.profileId === id,
  );
  expect(held.attention).toEqual(['outstanding_over_threshold', ...contradictions]);

  // A blanket acknowledge closes the notice only; then it is refused, naming the rule.
  expect(await act(id, 'acknowledge')).toMatchObject({ status: 200 });
  const open: string[] = (await profile(id)).attention;
  expect(open).toEqual(contradictions);
  expect(await act(id, 'acknowledge')).toMatchObject({
    status: 409,
    body: { details: { rule: 'matter_needs_own_decision' } },
  });
  for (const matter of open) expect(await act(id, 'acknowledge', { matter })).toMatchObject({ status: 200 });
  expect(await profile(id)).toMatchObject({ attention: [] });
  const closed = (await audit(id)).filter((a) => a.action === 'profile_acknowledge').map((a) => a.details.closed);
  expect(closed).toEqual([['outstanding_over_threshold'], [open[0]], [open[1]]]);
});

test('lists: paginated, filtered by status and customer', async () => {
  const page1 = await stack.admin('GET', '/admin/profiles?limit=2&customerId=c-rec');
  expect(page1.status).toBe(200);
  expect(page1.body.items).toHaveLength(2);
  const page2 = await stack.admin(
    'GET',
    `/admin/profiles?limit=2&customerId=c-rec&after=${encodeURIComponent(page1.body.next)}`,
  );
  const ids = [...page1.body.items, ...page2.body.items].map((p: { id: string }) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  const cancelled = await stack.admin('GET', '/admin/profiles?status=Cancelled');
  expect(cancelled.body.items.map((p: { id: string }) => p.id)).toEqual([
    'I-AFTERCANCEL1',
    'I-CANCELLED001',
    'I-LIFE0000001',
  ]);
  expect(await stack.admin('GET', '/admin/profiles?status=Gone')).toMatchObject({ status: 400 });
});
