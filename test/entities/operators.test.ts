import { paymentWorkflowId } from '../../src/shared/ids';
import type { PaymentState } from '../../src/payments/state';
import {
  balanceMinor,
  createTestStack,
  deliverIpn,
  sample,
  waitFor,
  withFields,
  type TestStack,
} from '../support/stack';

/**
 * What automation cannot decide waits for a person: held payments are listed, operators decide
 * through the admin API or straight from Temporal (Web UI signals), and every decision is audited
 * and carried on the ledger entry it caused.
 */
let stack: TestStack;
const OPS = 'ops';
// 12.34 USD from buyer@paypalsandbox.com (customer c-known) to seller@paypalsandbox.com.
const BASE = sample('web_accept_completed_ipn_simulator_01');
const fromStranger = (txnId: string, status = 'Completed') =>
  withFields(BASE, {
    txn_id: txnId,
    payer_email: 'stranger%40example.com',
    payment_status: status,
    ...(status === 'Pending' ? { pending_reason: 'echeck' } : {}),
  });
const toOtherReceiver = (txnId: string) =>
  withFields(BASE, {
    txn_id: txnId,
    receiver_email: 'other-shop%40example.com',
    receiver_id: 'other-shop%40example.com',
    business: 'other-shop%40example.com',
  });

const handle = (txnId: string) => stack.client.workflow.getHandle(paymentWorkflowId(OPS, txnId));
const queryState = (txnId: string) => handle(txnId).query<PaymentState>('state');
const entriesOf = (txnId: string) => stack.db.models.LedgerEntry.find({ integrationId: OPS, txnId }).lean();
const audit = async (txnId: string) =>
  (await stack.admin('GET', `/admin/audit?txnId=${txnId}`)).body as Array<{
    actor: string;
    action: string;
    reason: string;
    customerId?: string;
    details?: any;
  }>;
const heldPayments = async () =>
  (await stack.admin('GET', '/admin/held')).body.payments as Array<{
    txnId: string;
    holdReason: string | null;
    needsOperator: boolean;
    flags: string[];
  }>;

async function expectLedgerSound(): Promise<void> {
  expect(await stack.admin('GET', '/admin/ledger/check')).toMatchObject({
    status: 200,
    body: { ok: true, problems: [] },
  });
}

beforeAll(async () => {
  stack = await createTestStack('operators');
  expect(
    await stack.admin('PUT', `/admin/integrations/${OPS}`, {
      name: 'Ops shop',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
    }),
  ).toMatchObject({ status: 200 });
  expect(
    await stack.admin('PUT', '/admin/customers/c-known', {
      name: 'Known buyer',
      paypalEmails: ['buyer@paypalsandbox.com'],
    }),
  ).toMatchObject({ status: 200 });
  expect(
    await stack.admin('PUT', '/admin/customers/c-assigned', { name: 'Pays from a friend\u2019s account' }),
  ).toMatchObject({ status: 200 });
});
afterAll(() => stack?.close());

describe('a payer who matches no customer', () => {
  test('is held as no_customer_match and listed for operators', async () => {
    expect((await deliverIpn(stack, OPS, fromStranger('OPS-NOMATCH'))).state).toBe('applied:held');
    expect(await queryState('OPS-NOMATCH')).toMatchObject({
      phase: 'held',
      hold: { reason: 'no_customer_match', on: 'payment' },
      creditedMinor: 0,
      customerId: null,
    });
    expect(await heldPayments()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ txnId: 'OPS-NOMATCH', holdReason: 'no_customer_match', needsOperator: true }),
      ]),
    );
    expect(await entriesOf('OPS-NOMATCH')).toHaveLength(0);
  });

  test(
    'assigning an unknown customer is refused (422 unknown_customer by the API, ' +
      'audited either way, the same when signalled directly) and the payment stays held',
    async () => {
      const res = await stack.admin('POST', '/admin/payments/OPS-NOMATCH/assign', {
        customerId: 'c-ghost',
        operator: 'alice',
        reason: 'typo',
      });
      expect(res).toMatchObject({
        status: 422,
        body: { error: 'no customer c-ghost', details: { rule: 'unknown_customer' }, state: { phase: 'held' } },
      });
      expect((await audit('OPS-NOMATCH')).filter((a) => a.action === 'assign_customer_refused')).toHaveLength(1);
      // The Web UI reaches the workflow by a signal: the workflow refuses and audits it the same way.
      await stack.client.workflow
        .getHandle(paymentWorkflowId(OPS, 'OPS-NOMATCH'))
        .signal('assignCustomer', { customerId: 'c-ghost', ...(await stack.operators.proof('alice')), reason: 'typo' });
      const refused = await waitFor('refusal audited', async () => {
        const found = (await audit('OPS-NOMATCH')).filter((a) => a.action === 'assign_customer_refused');
        return found.length === 2 && found[1];
      });
      expect(refused).toMatchObject({ actor: 'alice', reason: 'typo', customerId: 'c-ghost' });
      expect(await queryState('OPS-NOMATCH')).toMatchObject({
        phase: 'held',
        hold: { reason: 'no_customer_match' },
        customerId: null,
      });
      expect(await entriesOf('OPS-NOMATCH')).toHaveLength(0);
      expect((await stack.admin('GET', '/admin/customers/c-ghost')).status).toBe(404);
    },
  );

  test('assigning a customer credits it; the entry and the audit carry operator and reason', async () => {
    const res = await stack.admin('POST', '/admin/payments/OPS-NOMATCH/assign', {
      customerId: 'c-assigned',
      operator: 'alice',
      reason: 'payer confirmed by phone',
    });
    // Answered once applied: the ledger entry is there, no polling.
    expect(res).toMatchObject({ status: 200, body: { applied: true, state: { phase: 'credited' }, inFlight: [] } });
    const entries = await entriesOf('OPS-NOMATCH');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      customerId: 'c-assigned',
      amountMinor: 1234,
      reason: 'payment',
      operator: 'alice',
      note: 'payer confirmed by phone',
    });
    expect(await balanceMinor(stack, 'c-assigned', 'USD')).toBe(1234);
    expect(await queryState('OPS-NOMATCH')).toMatchObject({
      phase: 'credited',
      hold: null,
      customerId: 'c-assigned',
      creditedMinor: 1234,
    });

    const ledger = (await stack.admin('GET', '/admin/customers/c-assigned/ledger')).body;
    expect(ledger).toEqual([
      expect.objectContaining({
        txnId: 'OPS-NOMATCH',
        amount: '12.34',
        balanceAfter: '12.34',
        operator: 'alice',
        note: 'payer confirmed by phone',
      }),
    ]);
    expect((await audit('OPS-NOMATCH')).map((a) => [a.action, a.actor, a.reason, a.customerId])).toEqual([
      ['assign_customer_refused', 'alice', 'typo', 'c-ghost'],
      ['assign_customer_refused', 'alice', 'typo', 'c-ghost'],
      ['assign_customer', 'alice', 'payer confirmed by phone', 'c-assigned'],
    ]);
    expect((await heldPayments()).some((p) => p.txnId === 'OPS-NOMATCH')).toBe(false);
    await expectLedgerSound();
  });

  test('a late Pending does not replace the held Completed: assigning still credits it once', async () => {
    expect((await deliverIpn(stack, OPS, fromStranger('OPS-LATE'))).state).toBe('applied:held');
    expect((await deliverIpn(stack, OPS, fromStranger('OPS-LATE', 'Pending'))).state).toBe('applied:held');
    expect(await queryState('OPS-LATE')).toMatchObject({
      phase: 'held',
      paymentStatus: 'Completed',
      payment: { paymentStatus: 'Completed' },
      hold: { reason: 'no_customer_match' },
    });

    const before = await balanceMinor(stack, 'c-assigned', 'USD');
    expect(
      (
        await stack.admin('POST', '/admin/payments/OPS-LATE/assign', {
          customerId: 'c-assigned',
          operator: 'alice',
          reason: 'same payer as before',
        })
      ).status,
    ).toBe(200);
    expect(await queryState('OPS-LATE')).toMatchObject({ phase: 'credited' });
    expect((await entriesOf('OPS-LATE')).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balanceMinor(stack, 'c-assigned', 'USD')).toBe(before + 1234);
    await expectLedgerSound();
  });
});

describe('a payment to a receiver that is not ours', () => {
  test('is held for receiver_mismatch; approving it credits the matched customer', async () => {
    expect((await deliverIpn(stack, OPS, toOtherReceiver('OPS-RCV-OK'))).state).toBe('applied:held');
    expect(await queryState('OPS-RCV-OK')).toMatchObject({
      phase: 'held',
      hold: { reason: 'checks_failed:receiver_mismatch' },
    });
    expect(await heldPayments()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ txnId: 'OPS-RCV-OK', holdReason: 'checks_failed:receiver_mismatch' }),
      ]),
    );
    expect(await entriesOf('OPS-RCV-OK')).toHaveLength(0);

    expect(
      (
        await stack.admin('POST', '/admin/payments/OPS-RCV-OK/approve', {
          operator: 'bob',
          reason: 'our second PayPal address',
        })
      ).status,
    ).toBe(200);
    expect(await entriesOf('OPS-RCV-OK')).toEqual([
      expect.objectContaining({
        customerId: 'c-known',
        amountMinor: 1234,
        operator: 'bob',
        note: 'our second PayPal address',
      }),
    ]);
    expect(await balanceMinor(stack, 'c-known', 'USD')).toBe(1234);
    expect(await queryState('OPS-RCV-OK')).toMatchObject({
      phase: 'credited',
      hold: null,
      approvedFlags: ['receiver_mismatch'],
    });
    expect((await audit('OPS-RCV-OK')).map((a) => [a.action, a.actor, a.reason])).toEqual([
      ['approve', 'bob', 'our second PayPal address'],
    ]);
    await expectLedgerSound();
  });

  test('rejecting it ends in phase rejected with no money', async () => {
    expect((await deliverIpn(stack, OPS, toOtherReceiver('OPS-RCV-NO'))).state).toBe('applied:held');
    expect(
      (await stack.admin('POST', '/admin/payments/OPS-RCV-NO/reject', { operator: 'bob', reason: 'not our account' }))
        .status,
    ).toBe(200);
    expect(await queryState('OPS-RCV-NO')).toMatchObject({ phase: 'rejected', hold: null, creditedMinor: 0 });
    expect(await stack.db.models.Payment.findById(`${OPS}:OPS-RCV-NO`).lean()).toMatchObject({
      state: 'rejected',
      needsOperator: false,
    });
    expect((await heldPayments()).some((p) => p.txnId === 'OPS-RCV-NO')).toBe(false);
    expect(await entriesOf('OPS-RCV-NO')).toHaveLength(0);
    expect(await balanceMinor(stack, 'c-known', 'USD')).toBe(1234);
    expect((await audit('OPS-RCV-NO')).map((a) => [a.action, a.actor, a.reason])).toEqual([
      ['reject', 'bob', 'not our account'],
    ]);
    // Rejected is final: the same Completed delivered again is a duplicate and moves nothing.
    expect((await deliverIpn(stack, OPS, withFields(toOtherReceiver('OPS-RCV-NO'), { resend: 'true' }))).state).toBe(
      'duplicate',
    );
    expect(await entriesOf('OPS-RCV-NO')).toHaveLength(0);
    await expectLedgerSound();
  });
});

describe('signals sent straight to the workflow (as from the Temporal Web UI)', () => {
  test('assignCustomer and approve work like the admin API', async () => {
    expect((await deliverIpn(stack, OPS, fromStranger('OPS-UI-ASSIGN'))).state).toBe('applied:held');
    expect((await deliverIpn(stack, OPS, toOtherReceiver('OPS-UI-APPROVE'))).state).toBe('applied:held');
    const assignedBefore = await balanceMinor(stack, 'c-assigned', 'USD');
    const knownBefore = await balanceMinor(stack, 'c-known', 'USD');

    // Without a proof (the operator's id and a current code) a Web UI decision is recorded and refused.
    await handle('OPS-UI-APPROVE').signal('approve', { operator: 'carol', reason: 'no code' });
    await waitFor('refused without a proof', async () =>
      (await queryState('OPS-UI-APPROVE')).history.some((h) => /no valid operator proof/.test(h.what)),
    );
    expect((await queryState('OPS-UI-APPROVE')).phase).toBe('held');
    await handle('OPS-UI-ASSIGN').signal('assignCustomer', {
      customerId: 'c-assigned',
      ...(await stack.operators.proof('carol')),
      reason: 'from the Web UI',
    });
    // One code per step and operator, taken in order: carol's next code only once the first was used.
    await waitFor('assigned', async () => (await queryState('OPS-UI-ASSIGN')).phase === 'credited');
    await handle('OPS-UI-APPROVE').signal('approve', {
      ...(await stack.operators.proof('carol')),
      reason: 'from the Web UI',
    });
    await waitFor(
      'both credited',
      async () =>
        (await queryState('OPS-UI-ASSIGN')).phase === 'credited' &&
        (await queryState('OPS-UI-APPROVE')).phase === 'credited',
    );

    expect(await entriesOf('OPS-UI-ASSIGN')).toEqual([
      expect.objectContaining({ customerId: 'c-assigned', amountMinor: 1234, operator: 'carol' }),
    ]);
    expect(await entriesOf('OPS-UI-APPROVE')).toEqual([
      expect.objectContaining({ customerId: 'c-known', amountMinor: 1234, operator: 'carol' }),
    ]);
    expect(await balanceMinor(stack, 'c-assigned', 'USD')).toBe(assignedBefore + 1234);
    expect(await balanceMinor(stack, 'c-known', 'USD')).toBe(knownBefore + 1234);
    expect((await audit('OPS-UI-ASSIGN')).map((a) => [a.action, a.actor])).toEqual([['assign_customer', 'carol']]);
    expect((await audit('OPS-UI-APPROVE')).map((a) => [a.action, a.actor])).toEqual([
      ['malformed_signal', 'unknown'],
      ['approve', 'carol'],
    ]);
    await expectLedgerSound();
  });
});

describe('a dispute (new_case)', () => {
  test(
    'flags the payment for an operator without moving ' +
      'money; acknowledging it by name closes it (approve and a blanket acknowledge are refused)',
    async () => {
      const before = await balanceMinor(stack, 'c-known', 'USD');
      // PayPal's new_case: the disputed payment's txn_id, a case id and type, no payment_status.
      const dispute = withFields(toOtherReceiver('OPS-RCV-OK'), {
        txn_type: 'new_case',
        case_id: 'PP-D-1234',
        case_type: 'dispute',
        payment_status: '',
        receiver_email: 'seller%40paypalsandbox.com',
        receiver_id: 'seller%40paypalsandbox.com',
        business: 'seller%40paypalsandbox.com',
      });
      expect((await deliverIpn(stack, OPS, dispute)).state).toBe('applied:credited');

      expect(await queryState('OPS-RCV-OK')).toMatchObject({
        phase: 'credited',
        attention: ['dispute:PP-D-1234'],
        hold: null,
      });
      expect(await heldPayments()).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            txnId: 'OPS-RCV-OK',
            needsOperator: true,
            flags: expect.arrayContaining(['dispute:PP-D-1234']),
          }),
        ]),
      );
      expect(await entriesOf('OPS-RCV-OK')).toHaveLength(1);
      expect(await balanceMinor(stack, 'c-known', 'USD')).toBe(before);

      // Approve decides holds; a dispute holds no money, so approving it is refused, and audited.
      const wrong = await stack.admin('POST', '/admin/payments/OPS-RCV-OK/approve', {
        operator: 'dora',
        reason: 'meant acknowledge',
      });
      expect(wrong).toMatchObject({
        status: 409,
        body: { error: 'nothing is held on OPS-RCV-OK to approve', details: { rule: 'nothing_held' } },
      });
      expect((await audit('OPS-RCV-OK')).at(-1)).toMatchObject({
        action: 'approve_refused',
        actor: 'dora',
        reason: 'meant acknowledge',
      });
      expect(await queryState('OPS-RCV-OK')).toMatchObject({ attention: ['dispute:PP-D-1234'] });

      // A dispute must be answered at PayPal: a blanket acknowledge does not close it, naming it does.
      expect(
        await stack.admin('POST', '/admin/payments/OPS-RCV-OK/acknowledge', { operator: 'dora', reason: 'all' }),
      ).toMatchObject({ status: 409, body: { details: { rule: 'matter_needs_own_decision' } } });
      expect(
        (
          await stack.admin('POST', '/admin/payments/OPS-RCV-OK/acknowledge', {
            operator: 'dora',
            reason: 'evidence sent to PayPal',
            matter: 'dispute:PP-D-1234',
          })
        ).status,
      ).toBe(200);
      expect(await queryState('OPS-RCV-OK')).toMatchObject({ attention: [] });
      expect((await heldPayments()).some((p) => p.txnId === 'OPS-RCV-OK')).toBe(false);
      expect((await audit('OPS-RCV-OK')).at(-1)).toMatchObject({
        action: 'acknowledge',
        actor: 'dora',
        reason: 'evidence sent to PayPal',
        details: { closed: ['dispute:PP-D-1234'], open: [] },
      });
      // Nothing is left to acknowledge: a second click is refused, not silently accepted.
      expect(
        (await stack.admin('POST', '/admin/payments/OPS-RCV-OK/acknowledge', { operator: 'dora', reason: 'again' }))
          .status,
      ).toBe(409);
      expect(await entriesOf('OPS-RCV-OK')).toHaveLength(1);
      expect(await balanceMinor(stack, 'c-known', 'USD')).toBe(before);
      await expectLedgerSound();
    },
  );
});
