import { paymentWorkflowId } from '../../src/shared/ids';
import type { PaymentState, LifecycleEvent } from '../../src/payments/state';
import {
  balanceMinor,
  createTestStack,
  deliverIpn,
  sample,
  waitFor,
  withFields,
  type TestStack,
} from '../support/stack';
import { workflowTaskFailures } from '../support/workflow-task-failures';

/**
 * The payment entity under input it did not expect: hand-typed signals, events no verified
 * message backs, currencies PayPal does not have, money in the wrong direction, refunds of
 * payments we never saw, and a ledger that refuses. None of it may credit money or wedge the
 * workflow; all of it must reach a person.
 */
let stack: TestStack;
const SHOP = 'hard';
// 12.34 USD from buyer@paypalsandbox.com (customer c-hard) to seller@paypalsandbox.com, test_ipn=1.
const BASE = sample('web_accept_completed_ipn_simulator_01');
const payment = (txnId: string, fields: Record<string, string> = {}) => withFields(BASE, { txn_id: txnId, ...fields });
const stranger = (txnId: string) => payment(txnId, { payer_email: 'stranger%40example.com', custom: '' });
const refundOf = (parent: string, txnId: string, gross = '-12.34') =>
  payment(txnId, { parent_txn_id: parent, payment_status: 'Refunded', mc_gross: gross, reason_code: 'refund' });

const handle = (txnId: string) => stack.client.workflow.getHandle(paymentWorkflowId(SHOP, txnId));
const queryState = (txnId: string) => handle(txnId).query<PaymentState>('state');
const entriesOf = (txnId: string) =>
  stack.db.models.LedgerEntry.find({ integrationId: SHOP, $or: [{ txnId }, { parentTxnId: txnId }] }).lean();
const audit = async (txnId: string) =>
  (await stack.admin('GET', `/admin/audit?txnId=${txnId}`)).body as Array<{
    actor: string;
    action: string;
    reason?: string;
    details?: any;
  }>;
const held = async () =>
  (await stack.admin('GET', '/admin/held')).body.payments as Array<{
    txnId: string;
    holdReason: string | null;
    attention: string[];
  }>;
const storedEvent = async (txnId: string, status: string) => {
  const msg = await stack.db.models.IpnMessage.findOne({ integrationId: SHOP, txnId, paymentStatus: status }).lean<{
    routedEvent: LifecycleEvent;
  }>();
  return msg!.routedEvent;
};

async function expectRunningAndUnwedged(txnId: string): Promise<void> {
  expect((await handle(txnId).describe()).status.name).toBe('RUNNING');
  expect(await workflowTaskFailures(stack.client, paymentWorkflowId(SHOP, txnId))).toEqual([]);
}

beforeAll(async () => {
  stack = await createTestStack('payment-hardening', { ORPHAN_ADJUSTMENT_GRACE_SECONDS: '3' });
  const integration = {
    name: 'Hardening',
    mode: 'sandbox',
    allowedCurrencies: ['USD', 'EUR'],
    receiverEmails: ['seller@paypalsandbox.com'],
  };
  expect(await stack.admin('PUT', `/admin/integrations/${SHOP}`, integration)).toMatchObject({ status: 200 });
  expect(
    await stack.admin('PUT', '/admin/customers/c-hard', { name: 'Hard', paypalEmails: ['buyer@paypalsandbox.com'] }),
  ).toMatchObject({ status: 200 });
});
afterAll(() => stack?.close());

describe('signals are input', () => {
  test('malformed operator signals are recorded and ignored; the payment still takes a valid decision', async () => {
    expect((await deliverIpn(stack, SHOP, stranger('HARD-SIG'))).state).toBe('applied:held');
    await handle('HARD-SIG').signal('approve', { reason: 'no operator given' } as never);
    await handle('HARD-SIG').signal('assignCustomer', {
      customerId: 42,
      operator: 'eve',
      reason: 'number id',
    } as never);
    await handle('HARD-SIG').signal('ipnEvent', { not: 'an event' } as never);
    // The state shows a decision once its audit is written: wait for the state, then read the audit.
    const state = await waitFor('three malformed signals recorded', async () => {
      const s = await queryState('HARD-SIG');
      return s.history.filter((h) => h.what.startsWith('ignored a malformed')).length === 3 && s;
    });
    const malformed = (await audit('HARD-SIG')).filter((a) => a.action === 'malformed_signal');
    expect(malformed.map((a) => a.details.signal)).toEqual(['approve', 'assignCustomer', 'ipnEvent']);
    expect(malformed[0]!.details.issues).toMatch(/operator/);
    expect(state).toMatchObject({ phase: 'held', hold: { reason: 'no_customer_match' }, creditedMinor: 0 });

    await handle('HARD-SIG').signal('assignCustomer', {
      customerId: 'c-hard',
      ...(await stack.operators.proof('alice')),
      reason: 'payer confirmed',
    });
    await waitFor('credited', async () => (await queryState('HARD-SIG')).phase === 'credited');
    expect((await entriesOf('HARD-SIG')).map((e) => [e.amountMinor, e.operator])).toEqual([[1234, 'alice']]);
    await expectRunningAndUnwedged('HARD-SIG');
  });

  test('a message id typed into the Web UI is taken only by the payment it was dispatched to', async () => {
    expect((await deliverIpn(stack, SHOP, payment('HARD-MSG-A', { payment_status: 'Pending' }))).state).toBe(
      'applied:pending',
    );
    const other = await deliverIpn(stack, SHOP, stranger('HARD-MSG-B'));
    expect(other.state).toBe('applied:held');
    const mine = await stack.db.models.IpnMessage.findOne({ integrationId: SHOP, txnId: 'HARD-MSG-A' }).lean();
    // Another payment's message, this payment's own (settled) message again, a garbage id, and verification
    // decisions when nothing is parked: each recorded and ignored, no money, no message rewritten.
    await handle('HARD-MSG-A').signal('ipnMessage', { messageId: String(other._id) });
    await handle('HARD-MSG-A').signal('ipnMessage', { messageId: String(mine!._id) });
    await handle('HARD-MSG-A').signal('ipnMessage', { messageId: '../../etc' });
    await handle('HARD-MSG-A').signal('retryVerification', { operator: 'eve', reason: 'nothing is parked' });
    await handle('HARD-MSG-A').signal('rejectMessage', { operator: 'eve' } as never);
    const state = await waitFor('four malformed signals recorded', async () => {
      const s = await queryState('HARD-MSG-A');
      return s.history.filter((h) => h.what.startsWith('ignored a malformed')).length === 4 && s;
    });
    const malformed = (await audit('HARD-MSG-A')).filter((a) => a.action === 'malformed_signal');
    expect(malformed.map((a) => [a.details.signal, a.details.issues])).toEqual([
      ['ipnMessage', `message ${String(other._id)} was dispatched to ${paymentWorkflowId(SHOP, 'HARD-MSG-B')}`],
      ['ipnMessage', expect.stringMatching(/stored message id/)],
      ['retryVerification', 'no message of this payment is parked'],
      ['rejectMessage', expect.stringMatching(/reason/)],
    ]);
    // Its own message, already applied, was skipped without a trace: it is in the payment's history.
    expect(state).toMatchObject({ phase: 'pending', creditedMinor: 0 });
    expect((await stack.db.models.IpnMessage.findById(other._id).lean())!.state).toBe('applied:held');
    expect((await stack.db.models.IpnMessage.findById(mine!._id).lean())!.state).toBe('applied:pending');
    expect(await entriesOf('HARD-MSG-A')).toHaveLength(0);
    expect(await entriesOf('HARD-MSG-B')).toHaveLength(0);
    await expectRunningAndUnwedged('HARD-MSG-A');
  });

  test('an ipnEvent sent by hand moves no money: shown to a person as unproven', async () => {
    expect(
      (await deliverIpn(stack, SHOP, payment('HARD-FORGE', { payment_status: 'Pending', pending_reason: 'echeck' })))
        .state,
    ).toBe('applied:pending');
    const pending = await storedEvent('HARD-FORGE', 'Pending');
    const before = await balanceMinor(stack, 'c-hard', 'USD');
    // Made up from scratch, and a real message's event edited to say Completed.
    await handle('HARD-FORGE').signal('ipnEvent', {
      ...pending,
      messageId: '0123456789abcdef01234567',
      paymentStatus: 'Completed',
    });
    await handle('HARD-FORGE').signal('ipnEvent', {
      ...pending,
      paymentStatus: 'Completed',
      grossMinor: 999999,
      creditMinor: 999999,
    });
    const state = await waitFor('both refused', async () => {
      const s = await queryState('HARD-FORGE');
      return s.attention.filter((a) => a.startsWith('unproven_event:')).length === 2 && s;
    });
    expect(state).toMatchObject({ phase: 'pending', creditedMinor: 0, paymentStatus: 'Pending' });
    expect(await entriesOf('HARD-FORGE')).toHaveLength(0);
    expect(await balanceMinor(stack, 'c-hard', 'USD')).toBe(before);
    await waitFor('listed for a person', async () =>
      (await held()).find((p) => p.txnId === 'HARD-FORGE' && p.attention.length === 2),
    );

    // The real Completed still credits: the forgeries did not consume its key.
    expect((await deliverIpn(stack, SHOP, payment('HARD-FORGE'))).state).toBe('applied:credited');
    expect((await entriesOf('HARD-FORGE')).map((e) => e.amountMinor)).toEqual([1234]);
    await expectRunningAndUnwedged('HARD-FORGE');
  });

  test('an event for another payment is refused by the entity, whoever sends it', async () => {
    expect(
      (await deliverIpn(stack, SHOP, payment('HARD-MINE', { payment_status: 'Pending', pending_reason: 'echeck' })))
        .state,
    ).toBe('applied:pending');
    expect((await deliverIpn(stack, SHOP, stranger('HARD-OTHER'))).state).toBe('applied:held');
    await handle('HARD-MINE').signal('ipnEvent', await storedEvent('HARD-OTHER', 'Completed'));
    const state = await waitFor('refused', async () => {
      const s = await queryState('HARD-MINE');
      return s.attention.some((a) => a.startsWith('foreign_event:')) && s;
    });
    expect(state).toMatchObject({ phase: 'pending', creditedMinor: 0, customerId: null });
    expect(await entriesOf('HARD-MINE')).toHaveLength(0);
    await expectRunningAndUnwedged('HARD-MINE');
  });
});

describe('no input fails a workflow task', () => {
  test.each([
    ['usd', 'HARD-LOWER'],
    ['INR', 'HARD-INR'],
  ])('a verified payment in %s is held (not wedged) and later events still run', async (currency, txnId) => {
    const msg = await deliverIpn(stack, SHOP, payment(txnId, { mc_currency: currency }));
    expect(msg.state).toBe('applied:held');
    expect(await queryState(txnId)).toMatchObject({
      phase: 'held',
      hold: { reason: 'checks_failed:malformed_amount' },
      currency,
    });
    const saved = await waitFor('state saved', () => stack.db.models.Payment.findById(`${SHOP}:${txnId}`).lean());
    expect(saved).toMatchObject({ needsOperator: true, holdReason: 'checks_failed:malformed_amount' });
    // A later event for the same txn is still processed (the entity is not stuck on the first).
    expect((await deliverIpn(stack, SHOP, refundOf(txnId, `${txnId}-R`))).state).toBe('applied:held');
    expect(await entriesOf(txnId)).toHaveLength(0);
    await expectRunningAndUnwedged(txnId);
  });

  test('a ledger conflict holds the payment, visibly, instead of failing the workflow', async () => {
    // The credit's idempotency key is already taken by a different movement.
    await stack.ledger.post({
      customerId: 'c-hard',
      currency: 'USD',
      amountMinor: 1,
      idempotencyKey: `credit:${SHOP}:HARD-CONFLICT`,
      reason: 'manual',
      mode: 'sandbox',
    });
    expect((await deliverIpn(stack, SHOP, payment('HARD-CONFLICT'))).state).toBe('applied:held');
    const state = await queryState('HARD-CONFLICT');
    expect(state).toMatchObject({
      phase: 'held',
      hold: { reason: 'ledger_conflict', on: 'payment' },
      creditedMinor: 0,
    });
    expect(state.history.some((h) => /idempotency key reused/.test(h.what))).toBe(true);
    expect((await held()).some((p) => p.txnId === 'HARD-CONFLICT' && p.holdReason === 'ledger_conflict')).toBe(true);
    await expectRunningAndUnwedged('HARD-CONFLICT');
    const check = await stack.admin('GET', '/admin/ledger/check');
    expect(check).toMatchObject({ status: 200, body: { ok: true } });
  });
});

describe('money direction', () => {
  test('a negative gross routed as a payment (adjustment) is held, never credited as positive', async () => {
    const before = await balanceMinor(stack, 'c-hard', 'USD');
    const msg = await deliverIpn(
      stack,
      SHOP,
      payment('HARD-NEG', { txn_type: 'adjustment', mc_gross: '-5.00', mc_fee: '0.00' }),
    );
    expect(msg.state).toBe('applied:held');
    expect((await queryState('HARD-NEG')).hold!.reason).toMatch(/^checks_failed:.*negative_amount/);
    expect(await entriesOf('HARD-NEG')).toHaveLength(0);
    expect(await balanceMinor(stack, 'c-hard', 'USD')).toBe(before);
  });

  test('money under an unknown txn_type is held with an alert, not recorded as no money', async () => {
    const msg = await deliverIpn(stack, SHOP, payment('HARD-NEWTYPE', { txn_type: 'brand_new_payment_kind' }));
    expect(msg.state).toBe('applied:held');
    expect(await queryState('HARD-NEWTYPE')).toMatchObject({
      phase: 'held',
      hold: { reason: 'checks_failed:txn_type_not_allowed' },
    });
    expect((await held()).some((p) => p.txnId === 'HARD-NEWTYPE')).toBe(true);
    expect(await entriesOf('HARD-NEWTYPE')).toHaveLength(0);
    // A lifecycle message with no money is still just recorded.
    const signup = withFields(sample('mp_notification_billing_agreement_shift_jis_01'), {});
    expect((await deliverIpn(stack, SHOP, signup)).state).toBe('recorded_no_money');
  });
});

describe('a refund of a payment we never saw', () => {
  test('shows in /admin/held after the grace period, and still applies when the payment arrives', async () => {
    expect((await deliverIpn(stack, SHOP, refundOf('HARD-ORPHAN', 'HARD-ORPHAN-R', '-2.00'))).state).toBe(
      'applied:awaiting_payment',
    );
    expect((await held()).some((p) => p.txnId === 'HARD-ORPHAN')).toBe(false);
    const listed = await waitFor(
      'listed after grace',
      async () => (await held()).find((p) => p.txnId === 'HARD-ORPHAN'),
      15_000,
    );
    expect(listed.attention).toEqual(['adjustment_without_payment']);
    expect((await queryState('HARD-ORPHAN')).history.at(-1)!.what).toMatch(/refund HARD-ORPHAN-R still waiting/);

    const before = await balanceMinor(stack, 'c-hard', 'USD');
    expect((await deliverIpn(stack, SHOP, payment('HARD-ORPHAN'))).state).toBe('applied:credited');
    expect((await entriesOf('HARD-ORPHAN')).map((e) => e.amountMinor).sort((a, b) => a - b)).toEqual([-200, 1234]);
    expect(await balanceMinor(stack, 'c-hard', 'USD')).toBe(before + 1034);
    expect(await queryState('HARD-ORPHAN')).toMatchObject({ phase: 'credited', attention: [], waiting: [] });
    await waitFor('off the held list', async () => !(await held()).some((p) => p.txnId === 'HARD-ORPHAN'));
  });
});

describe('operator decisions say what they decide', () => {
  test('approve or reject with nothing held is refused (409) and the attempt audited; nothing is stamped', async () => {
    expect((await deliverIpn(stack, SHOP, payment('HARD-NOHOLD'))).state).toBe('applied:credited');
    for (const action of ['approve', 'reject'] as const) {
      const res = await stack.admin('POST', `/admin/payments/HARD-NOHOLD/${action}`, {
        operator: 'mallory',
        reason: 'just because',
      });
      expect(res).toMatchObject({ status: 409, body: { error: `nothing is held on HARD-NOHOLD to ${action}` } });
    }
    const assign = await stack.admin('POST', '/admin/payments/HARD-NOHOLD/assign', {
      customerId: 'c-hard',
      operator: 'mallory',
      reason: 'x',
    });
    expect(assign).toMatchObject({ status: 409, body: { error: 'HARD-NOHOLD is already credited to c-hard' } });
    expect((await audit('HARD-NOHOLD')).map((a) => [a.action, a.actor])).toEqual([
      ['approve_refused', 'mallory'],
      ['reject_refused', 'mallory'],
      ['assign_customer_refused', 'mallory'],
    ]);
    // The same from the Web UI: refused inside the workflow, audited, no operator on any entry.
    await handle('HARD-NOHOLD').signal('approve', {
      ...(await stack.operators.proof('mallory')),
      reason: 'via the UI',
    });
    await waitFor('refusal audited', async () => (await audit('HARD-NOHOLD')).length === 4);
    expect((await audit('HARD-NOHOLD')).at(-1)).toMatchObject({ action: 'approve_refused', reason: 'via the UI' });
    expect((await entriesOf('HARD-NOHOLD')).map((e) => e.operator ?? null)).toEqual([null]);
  });
});

describe('acknowledge never clears a contradiction in bulk', () => {
  test('a blanket acknowledge is refused (409, by rule); each matter closes by name; all audited', async () => {
    expect((await deliverIpn(stack, SHOP, payment('HARD-ACK'))).state).toBe('applied:credited');
    const dispute = payment('HARD-ACK', {
      txn_type: 'new_case',
      case_id: 'PP-D-ACK',
      case_type: 'dispute',
      payment_status: '',
    });
    expect((await deliverIpn(stack, SHOP, dispute)).state).toBe('applied:credited');
    // A hand-made event (the Web UI): no verified message backs it, so it is a matter, not applied.
    const forged = '0123456789abcdef0123acc0';
    const completed = await storedEvent('HARD-ACK', 'Completed');
    await handle('HARD-ACK').signal('ipnEvent', { ...completed, messageId: forged, paymentStatus: 'Reversed' });
    const matters = [`dispute:PP-D-ACK`, `unproven_event:${forged}`];
    await waitFor('both raised', async () => (await queryState('HARD-ACK')).attention.length === 2);
    expect((await queryState('HARD-ACK')).attention).toEqual(matters);

    const blanket = await stack.admin('POST', '/admin/payments/HARD-ACK/acknowledge', {
      operator: 'dora',
      reason: 'clear the lot',
    });
    expect(blanket).toMatchObject({ status: 409, body: { details: { rule: 'matter_needs_own_decision' } } });
    const unknown = await stack.admin('POST', '/admin/payments/HARD-ACK/acknowledge', {
      operator: 'dora',
      reason: 'typo',
      matter: 'unproven_event:nope',
    });
    expect(unknown).toMatchObject({ status: 409, body: { details: { rule: 'no_such_matter' } } });
    // The Web UI has no API in front: the workflow refuses the same, audits it and changes nothing.
    await handle('HARD-ACK').signal('acknowledge', { operator: 'eve', reason: 'via the UI' });
    await waitFor('UI refusal audited', async () => (await audit('HARD-ACK')).length === 3);
    expect((await queryState('HARD-ACK')).attention).toEqual(matters);
    expect((await held()).find((p) => p.txnId === 'HARD-ACK')?.attention).toEqual(matters);

    const named = await stack.admin('POST', '/admin/payments/HARD-ACK/acknowledge', {
      operator: 'dora',
      reason: 'a test event typed by hand; nothing to apply',
      matter: `unproven_event:${forged}`,
    });
    expect(named).toMatchObject({ status: 200, body: { state: { attention: ['dispute:PP-D-ACK'] } } });
    expect((await held()).find((p) => p.txnId === 'HARD-ACK')?.attention).toEqual(['dispute:PP-D-ACK']);
    expect((await audit('HARD-ACK')).map((a) => [a.action, a.actor, a.details?.rule ?? null])).toEqual([
      ['acknowledge_refused', 'dora', 'matter_needs_own_decision'],
      ['acknowledge_refused', 'dora', 'no_such_matter'],
      ['acknowledge_refused', 'eve', 'matter_needs_own_decision'],
      ['acknowledge', 'dora', null],
    ]);
    expect((await audit('HARD-ACK')).at(-1)).toMatchObject({
      details: { closed: [`unproven_event:${forged}`], open: ['dispute:PP-D-ACK'] },
    });
    expect((await entriesOf('HARD-ACK')).map((e) => e.amountMinor)).toEqual([1234]);
    await expectRunningAndUnwedged('HARD-ACK');
  });
});
