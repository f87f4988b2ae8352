import type { ActivityDeps } from '../../activities';
import { createPaymentActivities } from '../../activities/payments';
import { createMessageActivities } from '../../activities/messages';
import { createLedgerActivities } from '../../activities/ledger';
import { saveIntegration } from '../../src/integrations/store';
import { LedgerError, type PostingRequest } from '../../src/shared/ledger';
import { LIVE_ON_SANDBOX_RULE } from '../../src/payments/rules';
import type { PaymentState } from '../../src/payments/state';
import { paymentWorkflowId } from '../../src/shared/ids';
import { approveSignal } from '../../src/payments/contract';
import { createTestStack, deliverIpn, refundOf, sample, waitFor, withFields, type TestStack } from '../support/stack';

/**
 * PayPal's sandbox (and its public IPN Simulator, which anyone can point at us) pays in test
 * money: a test_ipn=1 payment lands in the customer's sandbox account, never in the live balance
 * of the same currency, and production refuses sandbox integrations unless explicitly allowed.
 */
let stack: TestStack;
const CUSTOMER = 'c-both';
// 12.34 USD from buyer@paypalsandbox.com to seller@paypalsandbox.com, test_ipn=1.
const BASE = sample('web_accept_completed_ipn_simulator_01');
const SELLER = { mode: 'sandbox', allowedCurrencies: ['USD'], receiverEmails: ['seller@paypalsandbox.com'] };

const customer = async () => (await stack.admin('GET', `/admin/customers/${CUSTOMER}`)).body;

beforeAll(async () => {
  stack = await createTestStack('sandbox-money');
  expect(stack.config.ALLOW_SANDBOX_INTEGRATIONS).toBe(true); // the test stack turns it on
  expect(await stack.admin('PUT', '/admin/integrations/sbx', { name: 'Sandbox shop', ...SELLER })).toMatchObject({
    status: 200,
  });
  // A live message cannot be verified from a test (the live host is PayPal's own): this integration
  // skips the postback, so a live payment arrives flagged and waits for an operator's approval.
  expect(
    await stack.admin('PUT', '/admin/integrations/sbx-unverified', {
      name: 'Unverified',
      ...SELLER,
      verifyTransaction: false,
    }),
  ).toMatchObject({ status: 200 });
  expect(
    await stack.admin('PUT', `/admin/customers/${CUSTOMER}`, {
      name: 'Pays both ways',
      paypalEmails: ['buyer@paypalsandbox.com'],
    }),
  ).toMatchObject({ status: 200 });
});
afterAll(() => stack?.close());

describe('sandbox and live money for the same customer and currency', () => {
  test('a test_ipn=1 payment credits the sandbox balance only', async () => {
    expect((await deliverIpn(stack, 'sbx', withFields(BASE, { txn_id: 'SBX-1' }))).state).toBe('applied:credited');
    expect(await stack.db.models.LedgerEntry.find({ txnId: 'SBX-1' }).lean()).toEqual([
      expect.objectContaining({
        accountId: `${CUSTOMER}:USD:sandbox`,
        mode: 'sandbox',
        amountMinor: 1234,
        customerId: CUSTOMER,
        currency: 'USD',
      }),
    ]);
    expect(await customer()).toMatchObject({
      balances: [],
      sandboxBalances: [{ currency: 'USD', balanceMinor: 1234, balance: '12.34' }],
    });
  });

  test('a live message (no test_ipn) on a sandbox integration: approve refused, no live money', async () => {
    // Forged as live (anyone can: this integration skips the postback), held live_message_on_sandbox.
    const live = withFields(BASE, { txn_id: 'LIVE-1', test_ipn: '', mc_gross: '50.00', mc_gross1: '50.00' });
    expect((await deliverIpn(stack, 'sbx-unverified', live)).state).toBe('applied:held');
    const held = await stack.admin('GET', '/admin/payments/LIVE-1');
    expect(held.body).toMatchObject({ state: 'held', holdReason: 'checks_failed:live_message_on_sandbox' });
    const approve = await stack.admin('POST', '/admin/payments/LIVE-1/approve', {
      operator: 'alice',
      reason: 'real payment, checked in PayPal',
    });
    // Never approvable (422), by the rule named; the payment as it was comes with the refusal.
    expect(approve).toMatchObject({
      status: 422,
      body: { details: { rule: LIVE_ON_SANDBOX_RULE }, state: { phase: 'held', creditedMinor: 0 } },
    });
    // The Web UI's signal reaches the workflow without the API: it refuses alike.
    const handle = stack.client.workflow.getHandle(paymentWorkflowId('sbx-unverified', 'LIVE-1'));
    await handle.signal(approveSignal, { ...(await stack.operators.proof('bob')), reason: 'approved from the Web UI' });
    await waitFor('refusal in the audit', () =>
      stack.db.models.AuditEvent.findOne({ txnId: 'LIVE-1', actor: 'bob', action: 'approve_refused' }).lean(),
    );
    expect(await handle.query<PaymentState>('state')).toMatchObject({
      phase: 'held',
      creditedMinor: 0,
      hold: { reason: 'checks_failed:live_message_on_sandbox' },
    });
    expect(await stack.db.models.LedgerEntry.countDocuments({ txnId: 'LIVE-1' })).toBe(0);
    expect(await customer()).toMatchObject({
      balances: [],
      sandboxBalances: [{ currency: 'USD', balanceMinor: 1234, balance: '12.34' }],
    });
    expect(
      await stack.admin('POST', '/admin/payments/LIVE-1/reject', { operator: 'alice', reason: 'forged' }),
    ).toMatchObject({ status: 200, body: { applied: true, state: { phase: 'rejected' } } });
    expect(await stack.ledger.balances(CUSTOMER, 'live')).toEqual([]);
    expect(await stack.ledger.balances(CUSTOMER, 'sandbox')).toEqual([{ currency: 'USD', balanceMinor: 1234, seq: 1 }]);
  });

  test('the ledger itself refuses live money for a sandbox integration', async () => {
    const posting: PostingRequest = {
      customerId: CUSTOMER,
      currency: 'USD',
      mode: 'live',
      amountMinor: 5000,
      idempotencyKey: 'credit:sbx-unverified:LIVE-1',
      reason: 'payment',
      integrationId: 'sbx-unverified',
      txnId: 'LIVE-1',
    };
    await expect(stack.ledger.post(posting)).rejects.toThrow(/live money from a sandbox integration/);
    await expect(stack.ledger.post({ ...posting, amountMinor: -1, idempotencyKey: 'debit-1' })).rejects.toThrow(
      /live money from a sandbox integration/,
    );
    expect(await stack.ledger.balances(CUSTOMER, 'live')).toEqual([]);
    // Live money with no integration behind it (a manual posting) is the ledger's to take.
    expect(
      await stack.ledger.post({ ...posting, integrationId: undefined, reason: 'manual', idempotencyKey: 'manual-1' }),
    ).toMatchObject({ applied: true, balanceAfterMinor: 5000 });
    expect(await customer()).toMatchObject({
      balances: [{ currency: 'USD', balanceMinor: 5000, balance: '50.00' }],
      sandboxBalances: [{ currency: 'USD', balanceMinor: 1234, balance: '12.34' }],
    });
  });

  test('a refund of the sandbox payment debits the sandbox balance, not the live one', async () => {
    const refund = refundOf(BASE, 'SBX-1-R', 'SBX-1', '2.34');
    expect((await deliverIpn(stack, 'sbx', refund)).state).toBe('applied:credited');
    expect(await customer()).toMatchObject({
      balances: [{ currency: 'USD', balanceMinor: 5000 }],
      sandboxBalances: [{ currency: 'USD', balanceMinor: 1000 }],
    });
  });

  test('the ledger listing shows each entry\u2019s mode, balances carry it, the check covers both', async () => {
    const res = await stack.admin('GET', `/admin/customers/${CUSTOMER}/ledger`);
    const ledger: Array<Record<string, unknown>> = res.body;
    expect(ledger.map((e) => [e.txnId, e.mode, e.amountMinor, e.balanceAfterMinor])).toEqual([
      ['SBX-1', 'sandbox', 1234, 1234],
      ['LIVE-1', 'live', 5000, 5000],
      ['SBX-1-R', 'sandbox', -234, 1000],
    ]);
    expect(await stack.db.models.Balance.find({ customerId: CUSTOMER }).sort({ _id: 1 }).lean()).toEqual([
      expect.objectContaining({ _id: `${CUSTOMER}:USD`, mode: 'live', balanceMinor: 5000 }),
      expect.objectContaining({ _id: `${CUSTOMER}:USD:sandbox`, mode: 'sandbox', balanceMinor: 1000 }),
    ]);
    expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({
      status: 200,
      body: { ok: true, accounts: 2, entries: 3, problems: [] },
    });
  });

  test('the check finds an entry written into an account of the other mode', async () => {
    const stray = await stack.db.models.LedgerEntry.findOne({ txnId: 'LIVE-1' }).lean();
    await stack.db.models.LedgerEntry.updateOne({ _id: stray!._id }, { $set: { mode: 'sandbox' } });
    try {
      const check = await stack.admin('GET', '/admin/ledger/check');
      expect(check).toMatchObject({ status: 500, body: { ok: false } });
      expect(check.body.problems).toEqual([`${CUSTOMER}:USD: seq 1 is sandbox money in another account`]);
    } finally {
      await stack.db.models.LedgerEntry.updateOne({ _id: stray!._id }, { $set: { mode: 'live' } });
    }
  });
});

describe('the ledger keeps modes apart by itself', () => {
  const posting: PostingRequest = {
    customerId: 'c-ledger',
    currency: 'EUR',
    mode: 'live',
    amountMinor: 700,
    idempotencyKey: 'mode-test-1',
    reason: 'manual',
  };

  test('the same key cannot move money in the other mode', async () => {
    expect(await stack.ledger.post(posting)).toMatchObject({ applied: true, balanceAfterMinor: 700 });
    await expect(stack.ledger.post({ ...posting, mode: 'sandbox' })).rejects.toThrow(
      /idempotency key reused for a different movement/,
    );
    expect(await stack.ledger.balances('c-ledger', 'sandbox')).toEqual([]);
    expect(await stack.ledger.balances('c-ledger', 'live')).toEqual([{ currency: 'EUR', balanceMinor: 700, seq: 1 }]);
  });

  test('a posting without a mode is refused, not guessed', async () => {
    const { mode: _, ...noMode } = posting;
    await expect(
      stack.ledger.post({ ...noMode, idempotencyKey: 'mode-test-2' } as PostingRequest),
    ).rejects.toBeInstanceOf(LedgerError);
    expect(await stack.db.models.LedgerEntry.exists({ idempotencyKey: 'mode-test-2' })).toBeNull();
  });

  test('entries written before modes existed read as live', async () => {
    await stack.db.models.LedgerEntry.collection.insertOne({
      _id: 'c-old:USD:1' as never,
      accountId: 'c-old:USD',
      customerId: 'c-old',
      currency: 'USD',
      seq: 1,
      amountMinor: 300,
      balanceAfterMinor: 300,
      kind: 'credit',
      reason: 'manual',
      idempotencyKey: 'pre-mode-1',
      createdAt: new Date(),
    });
    expect(await stack.ledger.balances('c-old', 'live')).toEqual([{ currency: 'USD', balanceMinor: 300, seq: 1 }]);
    expect(await stack.ledger.balances('c-old', 'sandbox')).toEqual([]);
    expect((await stack.ledger.entries('c-old')).map((e) => e.mode)).toEqual(['live']);
    expect(
      await stack.ledger.post({ ...posting, customerId: 'c-old', currency: 'USD', idempotencyKey: 'post-mode-1' }),
    ).toMatchObject({ seq: 2, balanceAfterMinor: 1000 });
  });
});

describe('payment states saved before events carried their mode', () => {
  const load = (txnId: string) => {
    const deps = { db: stack.db } as ActivityDeps;
    const steps = { ...createMessageActivities(deps), ...createLedgerActivities(deps) };
    return createPaymentActivities(deps, steps).loadPaymentState({ integrationId: 'sbx', txnId });
  };
  /** A copy of a saved payment under another txn id, as it was saved before the field existed. */
  async function oldCopy(fromTxnId: string, txnId: string, patch: Record<string, unknown>) {
    const doc = await stack.db.models.Payment.findById(`sbx:${fromTxnId}`).lean<{ snapshot: any }>();
    const snapshot = { ...doc!.snapshot, txnId, ...patch, payment: { ...doc!.snapshot.payment } };
    delete snapshot.payment.sandbox;
    await stack.db.models.Payment.create({
      _id: `sbx:${txnId}`,
      integrationId: 'sbx',
      txnId,
      state: snapshot.phase,
      snapshot,
    });
  }

  test('money already posted stays where it went (live); money not yet posted follows its message', async () => {
    expect((await load('SBX-1'))!.payment!.sandbox).toBe(true);
    await oldCopy('SBX-1', 'OLD-CREDITED', {});
    expect(await load('OLD-CREDITED')).toMatchObject({
      phase: 'credited',
      creditedMinor: 1234,
      payment: { sandbox: false },
    });
    await oldCopy('SBX-1', 'OLD-HELD', { phase: 'held', creditedMinor: 0, debitedMinor: 0 });
    expect(await load('OLD-HELD')).toMatchObject({ phase: 'held', payment: { sandbox: true } });
  });
});

describe('production refuses sandbox integrations unless allowed', () => {
  let prod: TestStack;
  beforeAll(async () => {
    // '' as if unset: the default for production.
    prod = await createTestStack('sandbox-prod', { NODE_ENV: 'production', ALLOW_SANDBOX_INTEGRATIONS: '' });
  });
  afterAll(() => prod?.close());

  test('PUT of a sandbox integration is refused with 422, naming the setting', async () => {
    expect(prod.config.ALLOW_SANDBOX_INTEGRATIONS).toBe(false);
    const res = await prod.admin('PUT', '/admin/integrations/sbx', { name: 'Sandbox shop', ...SELLER });
    expect(res).toMatchObject({ status: 422, body: { error: expect.stringContaining('ALLOW_SANDBOX_INTEGRATIONS') } });
    expect(await prod.db.models.Integration.exists({ _id: 'sbx' })).toBeNull();
    expect(
      await prod.admin('PUT', '/admin/integrations/shop', { name: 'Live shop', ...SELLER, mode: 'live' }),
    ).toMatchObject({ status: 200 });
  });

  test('an IPN to an earlier sandbox integration is stored, flagged and ignored: no workflow, no money', async () => {
    await saveIntegration(prod.db.models, 'legacy-sbx', { name: 'From before', ...SELLER }, 'test');
    await prod.admin('PUT', `/admin/customers/${CUSTOMER}`, {
      name: 'Buyer',
      paypalEmails: ['buyer@paypalsandbox.com'],
    });
    const raw = withFields(BASE, { txn_id: 'PROD-SBX-1' });
    prod.sim.registerMessage(raw);
    const res = await prod.postIpn('legacy-sbx', raw);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    const stored = await prod.db.models.IpnMessage.findOne({ integrationId: 'legacy-sbx' }).lean();
    expect(stored).toMatchObject({
      state: 'ignored',
      flags: ['sandbox_not_allowed'],
      txnId: 'PROD-SBX-1',
      testIpn: true,
    });
    expect(Buffer.from(stored!.raw.buffer).equals(raw)).toBe(true);
    // Past the relay's grace period (1 s here): nothing picked it up.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await prod.db.models.IpnMessage.findById(stored!._id).lean()).toMatchObject({ state: 'ignored' });
    expect((await prod.db.models.IpnMessage.findById(stored!._id).lean())!.workflowId).toBeUndefined();
    expect(await prod.db.models.LedgerEntry.countDocuments({})).toBe(0);
    expect(await prod.db.models.Payment.countDocuments({})).toBe(0);
  });
});
