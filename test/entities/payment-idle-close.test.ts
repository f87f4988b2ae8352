import type { WorkflowHandle } from '@temporalio/client';
import { storeIpn } from '../../src/messages/intake';
import { ipnMessageSignal, paymentStartOptions, type PaymentLifecycleInput } from '../../src/payments/contract';
import type { PaymentState } from '../../src/payments/state';
import { paymentWorkflowId } from '../../src/shared/ids';
import { createTestStack, deliverIpn, refundOf, sample, waitFor, waitForMessage, withFields } from '../support/stack';
import type { TestStack } from '../support/stack';

/**
 * A payment closes once nothing has come for its idle time, counted from its last input, and waits
 * on timers it never cancels (workflows/shared/alarm.ts): a timer armed for a deadline that input
 * has since moved on only wakes it, and it waits on. Executions started before wait as recorded.
 */
const IDLE_SECONDS = 3;
let stack: TestStack;
const SHOP = 'shop';
const SELLER = 'seller@paypalsandbox.com';
const BASE = sample('web_accept_completed_ipn_simulator_01');
const payment = (txnId: string) => withFields(BASE, { txn_id: txnId });
const refund = (txnId: string, parent: string) => refundOf(BASE, txnId, parent, '2.34');

beforeAll(async () => {
  stack = await createTestStack('idle-close', { PAYMENT_IDLE_CLOSE_SECONDS: String(IDLE_SECONDS) });
  for (const [path, body] of [
    [
      `/admin/integrations/${SHOP}`,
      { name: 'Shop', mode: 'sandbox', allowedCurrencies: ['USD'], receiverEmails: [SELLER] },
    ],
    ['/admin/customers/c-buyer', { name: 'Buyer', paypalEmails: ['buyer@paypalsandbox.com'] }],
  ] as const)
    expect(await stack.admin('PUT', path, body)).toMatchObject({ status: 200 });
});
afterAll(() => stack?.close());

/** The timer events of one execution, and when it closed (ms since the epoch). */
async function timersAndClose(handle: WorkflowHandle) {
  const closed = await waitFor(
    'the payment closed',
    async () => {
      const d = await handle.describe();
      return d.status.name === 'COMPLETED' ? d.closeTime!.getTime() : undefined;
    },
    30_000,
  );
  const events = (await handle.fetchHistory()).events ?? [];
  return {
    closed,
    started: events.filter((e) => e.timerStartedEventAttributes).length,
    canceled: events.filter((e) => e.timerCanceledEventAttributes).length,
  };
}

const creditedAt = async (txnId: string) =>
  (await stack.db.models.LedgerEntry.findOne({ integrationId: SHOP, txnId }).lean())!.createdAt.getTime();

test('a payment that hears nothing more closes after its idle time, on one timer', async () => {
  expect((await deliverIpn(stack, SHOP, payment('IDLE-1'))).state).toBe('applied:credited');
  const credited = await creditedAt('IDLE-1');
  const handle = stack.client.workflow.getHandle(paymentWorkflowId(SHOP, 'IDLE-1'));
  const { closed, started, canceled } = await timersAndClose(handle);
  expect(closed - credited).toBeGreaterThanOrEqual(IDLE_SECONDS * 1000);
  expect({ started, canceled }).toEqual({ started: 1, canceled: 0 });
  expect(await handle.result()).toMatchObject({ phase: 'credited', creditedMinor: 1234 });
});

test('a refund during the wait moves the close to its idle time after the refund; no timer is cancelled', async () => {
  expect((await deliverIpn(stack, SHOP, payment('IDLE-2'))).state).toBe('applied:credited');
  const handle = stack.client.workflow.getHandle(paymentWorkflowId(SHOP, 'IDLE-2'));
  await new Promise((r) => setTimeout(r, 1_500));
  expect((await deliverIpn(stack, SHOP, refund('IDLE-2R', 'IDLE-2'))).state).toBe('applied:credited');
  const refunded = await creditedAt('IDLE-2R');
  // The first deadline passes: its timer fires, and the payment waits on.
  await new Promise((r) => setTimeout(r, Math.max(0, refunded + IDLE_SECONDS * 1000 - 700 - Date.now())));
  const early = (await handle.fetchHistory()).events ?? [];
  expect(early.filter((e) => e.timerFiredEventAttributes)).toHaveLength(1);
  expect((await handle.describe()).status.name).toBe('RUNNING');
  const { closed, started, canceled } = await timersAndClose(handle);
  expect(closed - refunded).toBeGreaterThanOrEqual(IDLE_SECONDS * 1000);
  // One for the first deadline, one armed when it fired early for the moved one.
  expect({ started, canceled }).toEqual({ started: 2, canceled: 0 });
  expect(await handle.result()).toMatchObject<Partial<PaymentState>>({ creditedMinor: 1234, debitedMinor: 234 });
});

test('an execution started before waits as it was recorded: its timer is cancelled by input', async () => {
  const raw = payment('IDLE-OLD');
  stack.sim.registerMessage(raw);
  const stored = await storeIpn(stack.db.models, { integrationId: SHOP, raw, ipnEnabled: true });
  const options = paymentStartOptions({
    workflowId: paymentWorkflowId(SHOP, 'IDLE-OLD'),
    integrationId: SHOP,
    paymentTxnId: 'IDLE-OLD',
    taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
    config: stack.config,
  });
  const { waitsOnAlarm: _new, ...before } = options.args[0];
  await stack.client.workflow.signalWithStart('paymentLifecycle', {
    ...options,
    args: [before as PaymentLifecycleInput],
    signal: ipnMessageSignal,
    signalArgs: [{ messageId: String(stored._id) }],
  });
  await waitForMessage(stack, SHOP, raw, 'applied:credited');
  expect((await deliverIpn(stack, SHOP, refund('IDLE-OLDR', 'IDLE-OLD'))).state).toBe('applied:credited');
  const { started, canceled } = await timersAndClose(stack.client.workflow.getHandle(options.workflowId));
  expect({ started, canceled }).toEqual({ started: 2, canceled: 1 });
});
