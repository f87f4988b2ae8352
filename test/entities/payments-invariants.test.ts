import { Context } from '@temporalio/activity';
import type { WorkerOptions } from '@temporalio/worker';
import { Types } from 'mongoose';
import { storeIpn } from '../../src/messages/intake';
import { ipnMessageSignal, signalPayment } from '../../src/payments/contract';
import { paymentWorkflowId } from '../../src/shared/ids';
import type { PaymentState } from '../../src/payments/state';
import type { PostingRequest, PostingResult } from '../../src/shared/ledger';
import {
  balanceMinor,
  createTestStack,
  deliverIpn,
  refundOf,
  sample,
  waitFor,
  waitForMessage,
  withFields,
  type TestStack,
} from '../support/stack';

/**
 * The ledger's promises under PayPal's real behaviour: duplicates, resends, out-of-order statuses,
 * crashes, over-refunds, spoofs, postback outages and lost dispatches. Money moves once or not at all.
 */
let stack: TestStack;
const SHOP = 'shop';
const CUSTOMER = 'c-buyer';
// 12.34 USD from buyer@paypalsandbox.com to seller@paypalsandbox.com; variants change single fields.
const BASE = sample('web_accept_completed_ipn_simulator_01');

const payment = (txnId: string, status = 'Completed', gross = '12.34') =>
  withFields(BASE, {
    txn_id: txnId,
    payment_status: status,
    mc_gross: gross,
    mc_gross1: gross,
    ...(status === 'Pending' ? { pending_reason: 'echeck' } : {}),
  });
const refund = (txnId: string, parent: string, gross: string) => refundOf(BASE, txnId, parent, gross);
const reversal = (txnId: string, parent: string, status: 'Reversed' | 'Canceled_Reversal') =>
  withFields(
    sample(status === 'Reversed' ? 'reversal_chargeback_ipn_simulator_01' : 'canceled_reversal_ipn_simulator_01'),
    { txn_id: txnId, parent_txn_id: parent },
  );

const entriesOf = (txnId: string, integrationId = SHOP) =>
  stack.db.models.LedgerEntry.find({ integrationId, txnId }).sort({ seq: 1 }).lean();
const entriesUnder = (parentTxnId: string) =>
  stack.db.models.LedgerEntry.find({ integrationId: SHOP, $or: [{ txnId: parentTxnId }, { parentTxnId }] })
    .sort({ seq: 1 })
    .lean();
const queryState = (txnId: string, integrationId = SHOP) =>
  stack.client.workflow.getHandle(paymentWorkflowId(integrationId, txnId)).query<PaymentState>('state');
const balance = () => balanceMinor(stack, CUSTOMER, 'USD');

async function expectLedgerSound(s = stack): Promise<void> {
  expect(await s.admin('GET', '/admin/ledger/check')).toMatchObject({ status: 200, body: { ok: true, problems: [] } });
}

async function setUp(s: TestStack): Promise<void> {
  const shop = {
    name: 'Shop',
    mode: 'sandbox',
    allowedCurrencies: ['USD'],
    receiverEmails: ['seller@paypalsandbox.com'],
  };
  expect(await s.admin('PUT', `/admin/integrations/${SHOP}`, shop)).toMatchObject({ status: 200 });
  expect(
    await s.admin('PUT', '/admin/integrations/live-shop', { ...shop, name: 'Live shop', mode: 'live' }),
  ).toMatchObject({ status: 200 });
  expect(
    await s.admin('PUT', `/admin/customers/${CUSTOMER}`, { name: 'Buyer', paypalEmails: ['buyer@paypalsandbox.com'] }),
  ).toMatchObject({ status: 200 });
}

beforeAll(async () => {
  stack = await createTestStack('invariants');
  await setUp(stack);
});
afterAll(() => stack?.close());

describe('(a) the same message delivered again moves money once', () => {
  test('delivered twice', async () => {
    const before = await balance();
    const raw = payment('INV-TWICE');
    expect((await deliverIpn(stack, SHOP, raw)).state).toBe('applied:credited');
    const second = await deliverIpn(stack, SHOP, raw);
    expect(second.state).toBe('duplicate');
    expect(second.flags).toContain('duplicate');
    expect((await entriesOf('INV-TWICE')).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    await expectLedgerSound();
  });

  test('ten identical POSTs at once', async () => {
    const before = await balance();
    const raw = payment('INV-TEN');
    stack.sim.registerMessage(raw);
    const answers = await Promise.all(Array.from({ length: 10 }, () => stack.postIpn(SHOP, raw)));
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));

    const messages = await waitFor('all ten settled', async () => {
      const found = await stack.db.models.IpnMessage.find({ integrationId: SHOP, txnId: 'INV-TEN' }).lean();
      return found.length === 10 && found.every((m) => m.state === 'applied:credited' || m.state === 'duplicate')
        ? found
        : undefined;
    });
    // All ten went to the one payment's workflow, which verified each and applied the first.
    expect(new Set(messages.map((m) => m.workflowId))).toEqual(new Set([paymentWorkflowId(SHOP, 'INV-TEN')]));
    expect(messages.filter((m) => m.state === 'applied:credited')).toHaveLength(1);
    expect(messages.filter((m) => m.state === 'duplicate')).toHaveLength(9);
    expect((await entriesOf('INV-TEN')).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    expect(await queryState('INV-TEN')).toMatchObject({ phase: 'credited', creditedMinor: 1234 });
    await expectLedgerSound();
  });
});

describe('(b) PayPal resends', () => {
  test('a resend (resend=true) of a message already processed changes nothing', async () => {
    const before = await balance();
    const raw = payment('INV-RESEND');
    expect((await deliverIpn(stack, SHOP, raw)).state).toBe('applied:credited');
    const resent = await deliverIpn(stack, SHOP, withFields(raw, { resend: 'true' }));
    expect(resent).toMatchObject({ state: 'duplicate', resend: true });
    expect((await entriesOf('INV-RESEND')).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    await expectLedgerSound();
  });

  test('the listener fails the first delivery; PayPal resends and the payment is credited once', async () => {
    const before = await balance();
    const raw = payment('INV-LATE');
    // Nobody configured integration "late" yet: the listener answers 404 and PayPal keeps resending.
    const delivery = stack.sim.sendIpn({ listenerUrl: `${stack.baseUrl}/ipn/late`, body: raw });
    await waitFor('a failed first attempt', async () => delivery.attempts.length >= 1);
    expect(delivery.attempts[0]!.status).toBe(404);
    expect(
      await stack.admin('PUT', '/admin/integrations/late', {
        name: 'Late',
        mode: 'sandbox',
        allowedCurrencies: ['USD'],
        receiverEmails: ['seller@paypalsandbox.com'],
      }),
    ).toMatchObject({ status: 200 });
    const outcome = await delivery.done;
    expect(outcome.delivered).toBe(true);
    expect(outcome.attempts).toBeGreaterThan(1);

    const resendBody = delivery.attempts.at(-1)!.body;
    expect(resendBody.toString('latin1').endsWith('&resend=true')).toBe(true);
    const msg = await waitForMessage(stack, 'late', resendBody);
    expect(msg).toMatchObject({ state: 'applied:credited', resend: true });
    expect(await stack.db.models.IpnMessage.countDocuments({ integrationId: 'late' })).toBe(1);
    expect((await entriesOf('INV-LATE', 'late')).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    await expectLedgerSound();
  });
});

describe('(c) statuses out of order', () => {
  test('Pending then Completed: credited once', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, payment('INV-PC', 'Pending'))).state).toBe('applied:pending');
    expect(await balance()).toBe(before);
    expect((await deliverIpn(stack, SHOP, payment('INV-PC', 'Completed'))).state).toBe('applied:credited');
    expect((await entriesOf('INV-PC')).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    expect(await queryState('INV-PC')).toMatchObject({
      phase: 'credited',
      paymentStatus: 'Completed',
      creditedMinor: 1234,
    });
    await expectLedgerSound();
  });

  test('Completed then a late Pending: credited once, and still Completed', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, payment('INV-CP', 'Completed'))).state).toBe('applied:credited');
    expect((await deliverIpn(stack, SHOP, payment('INV-CP', 'Pending'))).state).toBe('applied:credited');
    expect((await entriesOf('INV-CP')).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    expect(await queryState('INV-CP')).toMatchObject({
      phase: 'credited',
      paymentStatus: 'Completed',
      creditedMinor: 1234,
    });
    expect(await stack.db.models.Payment.findById(`${SHOP}:INV-CP`).lean()).toMatchObject({
      state: 'credited',
      paymentStatus: 'Completed',
    });
    await expectLedgerSound();
  });

  test('a refund delivered before its payment is applied once the payment is credited', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, refund('INV-RF-R', 'INV-RF', '2.34'))).state).toBe(
      'applied:awaiting_payment',
    );
    expect(await balance()).toBe(before);
    expect((await deliverIpn(stack, SHOP, payment('INV-RF'))).state).toBe('applied:credited');
    expect((await entriesUnder('INV-RF')).map((e) => [e.txnId, e.amountMinor])).toEqual([
      ['INV-RF', 1234],
      ['INV-RF-R', -234],
    ]);
    expect(await balance()).toBe(before + 1000);
    await expectLedgerSound();
  });

  test('a reversal cancellation delivered before its reversal: both apply, the money comes back', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, payment('INV-CR'))).state).toBe('applied:credited');
    expect((await deliverIpn(stack, SHOP, reversal('INV-CR-C', 'INV-CR', 'Canceled_Reversal'))).state).toBe(
      'applied:credited',
    );
    expect(await balance()).toBe(before + 1234);
    expect((await deliverIpn(stack, SHOP, reversal('INV-CR-R', 'INV-CR', 'Reversed'))).state).toBe('applied:credited');
    expect((await entriesUnder('INV-CR')).map((e) => [e.txnId, e.amountMinor])).toEqual([
      ['INV-CR', 1234],
      ['INV-CR-R', -1234],
      ['INV-CR-C', 1234],
    ]);
    expect(await balance()).toBe(before + 1234);
    expect(await queryState('INV-CR')).toMatchObject({
      creditedMinor: 1234,
      debitedMinor: 0,
      reversedMinor: 0,
      waiting: [],
      hold: null,
    });
    await expectLedgerSound();
  });
});

describe('one door per payment', () => {
  test('a refund, a reversal and a dispute reach their payment by message id, verified there', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, payment('DOOR-1', 'Completed', '20.00'))).state).toBe('applied:credited');
    const dispute = withFields(payment('DOOR-1'), { txn_type: 'new_case', case_id: 'PP-D-DOOR', payment_status: '' });
    const adjustments = [
      refund('DOOR-1-R', 'DOOR-1', '5.00'),
      reversal('DOOR-1-V', 'DOOR-1', 'Reversed'),
      reversal('DOOR-1-C', 'DOOR-1', 'Canceled_Reversal'),
      dispute,
    ];
    const messages = [];
    for (const raw of adjustments) messages.push(await deliverIpn(stack, SHOP, raw));
    expect(messages.map((m) => [m.state, m.workflowId])).toEqual(
      adjustments.map(() => ['applied:credited', paymentWorkflowId(SHOP, 'DOOR-1')]),
    );
    // The entity heard of each as a stored message to verify (ipnMessage), never as an event (ipnEvent).
    const history = await stack.client.workflow.getHandle(paymentWorkflowId(SHOP, 'DOOR-1')).fetchHistory();
    const signals = (history.events ?? []).flatMap((e) => {
      const signaled = e.workflowExecutionSignaledEventAttributes;
      return signaled ? [signaled.signalName] : [];
    });
    expect(signals).toEqual(['ipnMessage', 'ipnMessage', 'ipnMessage', 'ipnMessage', 'ipnMessage']);
    // Each verified with PayPal (the entity's postback of the exact bytes).
    const verified = (raw: Buffer) =>
      stack.sim.postbacks.some(
        (p) => p.answer === 'VERIFIED' && p.body.equals(Buffer.concat([Buffer.from('cmd=_notify-validate&'), raw])),
      );
    expect(adjustments.map(verified)).toEqual(adjustments.map(() => true));
    expect((await entriesUnder('DOOR-1')).map((e) => [e.txnId, e.amountMinor])).toEqual([
      ['DOOR-1', 2000],
      ['DOOR-1-R', -500],
      ['DOOR-1-V', -1234],
      ['DOOR-1-C', 1234],
    ]);
    expect(await queryState('DOOR-1')).toMatchObject({ attention: ['dispute:PP-D-DOOR'] });
    expect(await balance()).toBe(before + 1500);
    await expectLedgerSound();
  });
});

describe("(c2) a payment's first message: loaded, posted and saved in one step", () => {
  /** The local activities an execution ran, in order (core's marker data names each one's type). */
  /**
   * The local activities in the history, once its task is recorded: the first step saves the message's
   * outcome inside the task, so the message may settle a moment before the task's markers are written.
   */
  const localActivities = (txnId: string, runId?: string) =>
    waitFor(`${txnId}'s workflow task recorded`, async () => {
      const history = await stack.client.workflow.getHandle(paymentWorkflowId(SHOP, txnId), runId).fetchHistory();
      const types = (history.events ?? []).flatMap((e) => {
        const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
        const type = data ? /"activity_type":"([^"]+)"/.exec(Buffer.from(data).toString('utf8'))?.[1] : undefined;
        return type ? [type] : [];
      });
      return types.length > 0 ? types : undefined;
    });

  /** The payment as its document says (what a later execution loads), beside what the workflow holds. */
  const savedAndHeld = async (txnId: string) => {
    const doc = await stack.db.models.Payment.findById(`${SHOP}:${txnId}`).lean<{ snapshot: PaymentState }>();
    return { saved: doc?.snapshot, held: await queryState(txnId) };
  };

  test('a new payment: one step loads it, posts and saves the state it leads to', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, payment('ONE-LOAD'))).state).toBe('applied:credited');
    expect(await localActivities('ONE-LOAD')).toEqual(['takeFirstMessage']);
    expect(await balance()).toBe(before + 1234);
    const { saved, held } = await savedAndHeld('ONE-LOAD');
    expect(held).toMatchObject({ phase: 'credited', creditedMinor: 1234 });
    expect(saved).toEqual(held);
  });

  test('started again after it closed: the saved state is loaded with the refund, which debits once', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, payment('ONE-LOAD-2'))).state).toBe('applied:credited');
    const handle = stack.client.workflow.getHandle(paymentWorkflowId(SHOP, 'ONE-LOAD-2'));
    await handle.terminate('closed, as after its idle time');
    // A message's state names the payment's phase once it is applied (credited, here partly refunded).
    expect((await deliverIpn(stack, SHOP, refund('ONE-LOAD-2R', 'ONE-LOAD-2', '2.34'))).state).toBe('applied:credited');
    const restarted = (await handle.describe()).runId;
    // (An adjustment asks first whether a recurring profile's cycle credited its payment.)
    expect(await localActivities('ONE-LOAD-2', restarted)).toEqual([
      'takeFirstMessage',
      'profileOwningTxn',
      'postAndSavePayment',
    ]);
    // Loaded, not begun afresh: the refund counts against the credit saved by the first execution.
    const { saved, held } = await savedAndHeld('ONE-LOAD-2');
    expect(held).toMatchObject({ creditedMinor: 1234, debitedMinor: 234 });
    expect(saved).toEqual(held);
    expect(await balance()).toBe(before + 1000);
    await expectLedgerSound();
  });

  test('an operator decision that comes with the first message waits for it: credited once, as matched', async () => {
    await stack.admin('PUT', '/admin/customers/c-other', { name: 'Other', paypalEmails: [] });
    const raw = payment('ONE-LOAD-RACE');
    stack.sim.registerMessage(raw);
    const stored = await storeIpn(stack.db.models, { integrationId: SHOP, raw, ipnEnabled: true });
    const to = {
      workflowId: paymentWorkflowId(SHOP, 'ONE-LOAD-RACE'),
      integrationId: SHOP,
      paymentTxnId: 'ONE-LOAD-RACE',
      taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
      config: stack.config,
    };
    const before = await balance();
    // Both in the execution's first workflow task: the message, then an assignment to another customer.
    await stack.stopWorker();
    try {
      await signalPayment(stack.client, to, ipnMessageSignal, { messageId: stored._id });
      await stack.client.workflow.getHandle(to.workflowId).signal('assignCustomer', {
        customerId: 'c-other',
        ...(await stack.operators.proof('assigner')),
        reason: 'sent as the payment arrives',
      });
    } finally {
      await stack.startWorker();
    }
    await waitForMessage(stack, SHOP, raw, 'applied:credited');
    // The first step's decision stood (the assignment came after it, and was refused: already credited).
    const steps = await localActivities('ONE-LOAD-RACE');
    expect(steps).toContain('takeFirstMessage');
    expect(steps).not.toContain('postAndSavePayment');
    const state = await waitFor('the assignment decided', async () => {
      const s = await queryState('ONE-LOAD-RACE');
      return s.history.some((h) => /already credited/.test(h.what)) ? s : undefined;
    });
    expect(state).toMatchObject({ phase: 'credited', customerId: CUSTOMER, creditedMinor: 1234 });
    expect((await entriesOf('ONE-LOAD-RACE')).map((e) => [e.customerId, e.amountMinor])).toEqual([[CUSTOMER, 1234]]);
    expect(await balance()).toBe(before + 1234);
    expect(await balanceMinor(stack, 'c-other', 'USD')).toBe(0);
    await expectLedgerSound();
  });

  test('a message id that names no stored message is recorded and ignored; the payment keeps its state', async () => {
    const missing = new Types.ObjectId().toHexString();
    await signalPayment(
      stack.client,
      {
        workflowId: paymentWorkflowId(SHOP, 'ONE-LOAD-NONE'),
        integrationId: SHOP,
        paymentTxnId: 'ONE-LOAD-NONE',
        taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
        config: stack.config,
      },
      ipnMessageSignal,
      { messageId: missing },
    );
    const state = await waitFor('the missing message recorded', async () => {
      const s = await queryState('ONE-LOAD-NONE').catch(() => undefined);
      return s?.history.some((h) => h.what.includes(`message ${missing} is not stored`)) ? s : undefined;
    });
    expect(state).toMatchObject({ creditedMinor: 0, debitedMinor: 0 });
    expect(await entriesOf('ONE-LOAD-NONE')).toEqual([]);
  });
});

describe('(d) a crash after the ledger write, before the activity reports', () => {
  type Run = Record<string, boolean> | 'crashed';
  /**
   * A worker whose step that posts for `txnId` crashes once right after it ran (its writes made, its
   * result lost), and then records what each retry did: a posting's `applied`, or whether the first
   * message's step (takeFirstMessage) took the message again.
   */
  const crashOnceAfterPosting = (txnId: string, runs: Run[]) => {
    const interceptors: NonNullable<WorkerOptions['interceptors']> = {
      activity: [
        () => ({
          inbound: {
            async execute(input, next) {
              const result = await next(input);
              const type = Context.current().info.activityType;
              const arg = input.args[0] as PostingRequest & { posting?: PostingRequest; txnId?: string };
              const posting = type === 'postToLedger' ? arg : type === 'postAndSavePayment' ? arg.posting : undefined;
              const first = type === 'takeFirstMessage' && arg.txnId === txnId;
              const taken = first && (result as { taken?: unknown }).taken !== undefined;
              const posted = posting?.txnId === txnId || taken;
              if (posted && runs.length === 0) {
                runs.push('crashed');
                throw new Error('simulated crash after write');
              }
              if (posted || (first && runs.length > 0))
                runs.push(posting ? { applied: (result as PostingResult).applied } : { taken });
              return result;
            },
          },
        }),
      ],
    };
    return interceptors;
  };

  /** Delivers through a worker that crashes once after `txnId`'s posting; what each retry did, in order. */
  const deliveredCrashingOnce = async (txnId: string, deliver: (runs: Run[]) => Promise<void>) => {
    const runs: Run[] = [];
    await stack.startWorker({ interceptors: crashOnceAfterPosting(txnId, runs) });
    try {
      await deliver(runs);
    } finally {
      await stack.startWorker();
    }
    return runs;
  };

  test("the first message's step, retried, finds the payment saved: one entry, the right balance", async () => {
    const txnId = 'INV-CRASH';
    const before = await balance();
    const runs = await deliveredCrashingOnce(txnId, async () => {
      expect((await deliverIpn(stack, SHOP, payment(txnId))).state).toBe('applied:credited');
    });
    expect(runs).toEqual(['crashed', { taken: false }]);
    expect((await entriesOf(txnId)).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    expect(await queryState(txnId)).toMatchObject({ phase: 'credited', creditedMinor: 1234 });
    await expectLedgerSound();
  });

  test("a later message's posting, retried, finds its own entry: one entry, the right balance", async () => {
    const txnId = 'INV-CRASH-2';
    const before = await balance();
    const runs = await deliveredCrashingOnce(txnId, async (soFar) => {
      expect((await deliverIpn(stack, SHOP, payment(txnId, 'Pending'))).state).toBe('applied:pending');
      expect(soFar).toEqual([]);
      expect((await deliverIpn(stack, SHOP, payment(txnId))).state).toBe('applied:credited');
    });
    expect(runs).toEqual(['crashed', { applied: false }]);
    expect((await entriesOf(txnId)).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    await expectLedgerSound();
  });
});

describe('(e) refunds never exceed the original', () => {
  test(
    'a full refund, then another refund: the second is held ' + 'and the balance never drops below credited − original',
    async () => {
      const before = await balance();
      expect((await deliverIpn(stack, SHOP, payment('INV-FULL', 'Completed', '20.00'))).state).toBe('applied:credited');
      expect((await deliverIpn(stack, SHOP, refund('INV-FULL-R1', 'INV-FULL', '20.00'))).state).toBe(
        'applied:credited',
      );
      expect(await balance()).toBe(before);
      expect((await deliverIpn(stack, SHOP, refund('INV-FULL-R2', 'INV-FULL', '5.00'))).state).toBe('applied:credited');

      expect(await queryState('INV-FULL')).toMatchObject({
        creditedMinor: 2000,
        debitedMinor: 2000,
        hold: { reason: 'refund_exceeds_original:INV-FULL-R2', on: 'adjustment' },
      });
      const held = await stack.admin('GET', '/admin/held');
      expect(held.body.payments).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            txnId: 'INV-FULL',
            holdReason: 'refund_exceeds_original:INV-FULL-R2',
            needsOperator: true,
          }),
        ]),
      );
      expect((await entriesUnder('INV-FULL')).map((e) => e.amountMinor)).toEqual([2000, -2000]);
      expect(await balance()).toBe(before);
      await expectLedgerSound();
    },
  );

  test('partial refunds add up; an over-limit one approved by an operator is capped at what remains', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, payment('INV-PART', 'Completed', '20.00'))).state).toBe('applied:credited');
    expect((await deliverIpn(stack, SHOP, refund('INV-PART-R1', 'INV-PART', '5.00'))).state).toBe('applied:credited');
    expect((await deliverIpn(stack, SHOP, refund('INV-PART-R2', 'INV-PART', '7.50'))).state).toBe('applied:credited');
    expect(await balance()).toBe(before + 750);
    expect(await queryState('INV-PART')).toMatchObject({ creditedMinor: 2000, debitedMinor: 1250, hold: null });

    // 10.00 more than the 7.50 left: held, then approved, and only 7.50 comes off.
    expect((await deliverIpn(stack, SHOP, refund('INV-PART-R3', 'INV-PART', '10.00'))).state).toBe('applied:credited');
    expect(await queryState('INV-PART')).toMatchObject({ hold: { reason: 'refund_exceeds_original:INV-PART-R3' } });
    expect(await balance()).toBe(before + 750);
    expect(
      (
        await stack.admin('POST', '/admin/payments/INV-PART/approve', {
          operator: 'olivia',
          reason: 'PayPal refunded more than we credited',
        })
      ).status,
    ).toBe(200);
    expect(await queryState('INV-PART')).toMatchObject({ debitedMinor: 2000 });
    expect((await entriesUnder('INV-PART')).map((e) => [e.txnId, e.amountMinor, e.operator ?? null])).toEqual([
      ['INV-PART', 2000, null],
      ['INV-PART-R1', -500, null],
      ['INV-PART-R2', -750, null],
      ['INV-PART-R3', -750, 'olivia'],
    ]);
    expect(await balance()).toBe(before);
    await expectLedgerSound();
  });

  test('approving a flagged refund does not pre-approve a later over-limit one', async () => {
    const before = await balance();
    expect((await deliverIpn(stack, SHOP, payment('INV-ARM', 'Completed', '20.00'))).state).toBe('applied:credited');
    const flagged = withFields(refund('INV-ARM-R1', 'INV-ARM', '5.00'), {
      receiver_email: 'other%40example.com',
      receiver_id: 'other%40example.com',
      business: 'other%40example.com',
    });
    expect((await deliverIpn(stack, SHOP, flagged)).state).toBe('applied:credited');
    expect(await queryState('INV-ARM')).toMatchObject({ hold: { reason: 'adjustment_checks_failed:INV-ARM-R1' } });
    expect(
      (
        await stack.admin('POST', '/admin/payments/INV-ARM/approve', {
          operator: 'olivia',
          reason: 'refund from our other address',
        })
      ).status,
    ).toBe(200);
    expect(await queryState('INV-ARM')).toMatchObject({ debitedMinor: 500 });

    // 20.00 against the 15.00 left: a new decision for a person, not silently capped.
    expect((await deliverIpn(stack, SHOP, refund('INV-ARM-R2', 'INV-ARM', '20.00'))).state).toBe('applied:credited');
    expect(await queryState('INV-ARM')).toMatchObject({
      debitedMinor: 500,
      hold: { reason: 'refund_exceeds_original:INV-ARM-R2' },
    });
    expect((await entriesUnder('INV-ARM')).map((e) => e.amountMinor)).toEqual([2000, -500]);
    expect(await balance()).toBe(before + 1500);
    await expectLedgerSound();
  });
});

describe('(f, g) messages that must never move money', () => {
  test('(f) bytes PayPal never sent are INVALID at the postback: flagged, not credited', async () => {
    const before = await balance();
    const tampered = payment('INV-SPOOF', 'Completed', '999.99'); // never registered with the simulator
    expect((await stack.postIpn(SHOP, tampered)).status).toBe(200);
    const msg = await waitForMessage(stack, SHOP, tampered);
    expect(msg).toMatchObject({ state: 'invalid', flags: ['invalid'] });
    expect(
      stack.sim.postbacks
        .filter((p) => p.body.subarray('cmd=_notify-validate&'.length).equals(tampered))
        .map((p) => p.answer),
    ).toEqual(['INVALID']);
    expect(await stack.db.models.Payment.exists({ txnId: 'INV-SPOOF' })).toBeNull();
    expect(await entriesOf('INV-SPOOF')).toHaveLength(0);
    expect(await balance()).toBe(before);
    await expectLedgerSound();
  });

  test('(g) test_ipn=1 on a live integration: flagged sandbox_on_live, no money', async () => {
    const before = await balance();
    const msg = await deliverIpn(stack, 'live-shop', payment('INV-TEST-ON-LIVE'));
    expect(msg.state).toBe('sandbox_on_live');
    expect(msg.flags).toContain('sandbox_on_live');
    expect(await stack.db.models.Payment.exists({ txnId: 'INV-TEST-ON-LIVE' })).toBeNull();
    expect(await entriesOf('INV-TEST-ON-LIVE', 'live-shop')).toHaveLength(0);
    expect(await balance()).toBe(before);
    await expectLedgerSound();
  });
});

describe('(h) postback faults are retried until PayPal answers', () => {
  test('503, an HTML page and "Fatal Failure", then VERIFIED: credited once', async () => {
    const before = await balance();
    const raw = payment('INV-FAULTS');
    stack.sim.injectFaults([{ kind: 'status', status: 503 }, { kind: 'html' }, { kind: 'fatal' }]);
    expect((await deliverIpn(stack, SHOP, raw)).state).toBe('applied:credited');
    expect(stack.sim.pendingFaults).toEqual([]);
    const answers = stack.sim.postbacks
      .filter((p) => p.body.subarray('cmd=_notify-validate&'.length).equals(raw))
      .map((p) => [p.status, p.fault ?? p.answer]);
    expect(answers).toEqual([
      [503, 'status'],
      [200, 'html'],
      [200, 'fatal'],
      [200, 'VERIFIED'],
    ]);
    expect((await entriesOf('INV-FAULTS')).map((e) => e.amountMinor)).toEqual([1234]);
    expect(await balance()).toBe(before + 1234);
    await expectLedgerSound();
  });
});

describe('(j) the outbox', () => {
  test(
    'a message stored but never dispatched (crash between ' +
      'store and start) is started by the relay and credited once',
    async () => {
      const before = await balance();
      const raw = payment('INV-OUTBOX');
      stack.sim.registerMessage(raw);
      const stored = await storeIpn(stack.db.models, {
        integrationId: SHOP,
        raw,
        contentType: 'application/x-www-form-urlencoded',
        ipnEnabled: true,
      });
      expect(stored.state).toBe('received');

      const msg = await waitForMessage(stack, SHOP, raw);
      expect(msg).toMatchObject({
        state: 'applied:credited',
        workflowId: paymentWorkflowId(SHOP, 'INV-OUTBOX'),
      });
      // Dispatching again (the request path racing the relay) starts nothing new.
      expect(await stack.dispatcher.dispatch(stored)).toBe(msg.workflowId);
      expect(await stack.dispatcher.drainOnce()).toBe(0);
      expect((await entriesOf('INV-OUTBOX')).map((e) => e.amountMinor)).toEqual([1234]);
      expect(await balance()).toBe(before + 1234);
      await expectLedgerSound();
    },
  );
});

describe('(i) a postback that never gets an answer', () => {
  let quick: TestStack;
  beforeAll(async () => {
    quick = await createTestStack('parking', { IPN_VERIFY_GIVE_UP_SECONDS: '3' });
    await setUp(quick);
  });
  afterAll(() => quick?.close());

  test('parks the message for an operator; a retry once PayPal is back credits it', async () => {
    const raw = payment('INV-PARKED');
    quick.sim.injectFaults(Array.from({ length: 50 }, () => ({ kind: 'status' as const, status: 503 as const })));
    const parked = await deliverIpn(quick, SHOP, raw, 'parked');
    expect(parked.flags).toContain('parked');
    const held = await quick.admin('GET', '/admin/held');
    expect(held.body.parkedMessages.map((m: { _id: string }) => m._id)).toContain(String(parked._id));
    expect(await balanceMinor(quick, CUSTOMER, 'USD')).toBe(0);

    quick.sim.clearFaults();
    expect(
      await quick.admin('POST', `/admin/messages/${parked._id}/retry`, {
        operator: 'olivia',
        reason: 'PayPal is back',
      }),
    ).toMatchObject({ status: 202 });
    const done = await waitForMessage(quick, SHOP, raw);
    expect(done.state).toBe('applied:credited');
    expect(done.flags).not.toContain('parked'); // the message no longer waits for anyone
    const audited = await quick.db.models.AuditEvent.find({ action: 'retry_verification' }).lean();
    expect(audited).toEqual([
      expect.objectContaining({
        actor: 'olivia',
        reason: 'PayPal is back',
        details: { messageId: String(parked._id) },
      }),
    ]);
    expect((await quick.admin('GET', '/admin/held')).body.parkedMessages).toEqual([]);
    // A second click on retry once the message is done: refused, not a server error.
    expect(
      await quick.admin('POST', `/admin/messages/${parked._id}/retry`, { operator: 'olivia', reason: 'again' }),
    ).toMatchObject({ status: 409 });
    expect(await quick.db.models.LedgerEntry.countDocuments({ txnId: 'INV-PARKED' })).toBe(1);
    expect(await balanceMinor(quick, CUSTOMER, 'USD')).toBe(1234);
    await expectLedgerSound(quick);
  });

  test('an operator may reject a parked message instead: audited, and no money moves', async () => {
    const raw = payment('INV-PARKED-REJECTED');
    quick.sim.injectFaults(Array.from({ length: 50 }, () => ({ kind: 'status' as const, status: 503 as const })));
    const parked = await deliverIpn(quick, SHOP, raw, 'parked');
    quick.sim.clearFaults();
    expect(
      await quick.admin('POST', `/admin/messages/${parked._id}/reject`, {
        operator: 'olivia',
        reason: 'not ours after all',
      }),
    ).toMatchObject({ status: 202 });
    const done = await waitForMessage(quick, SHOP, raw, 'rejected_by_operator');
    expect(done.outcome).toBe('olivia: not ours after all');
    const audited = await quick.db.models.AuditEvent.find({ action: 'reject_message' }).lean();
    expect(audited).toEqual([
      expect.objectContaining({
        actor: 'olivia',
        reason: 'not ours after all',
        details: { messageId: String(parked._id) },
      }),
    ]);
    expect(await quick.db.models.LedgerEntry.countDocuments({ txnId: 'INV-PARKED-REJECTED' })).toBe(0);
    expect(await balanceMinor(quick, CUSTOMER, 'USD')).toBe(1234);
    await expectLedgerSound(quick);
  });
});
