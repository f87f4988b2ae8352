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
const IDLE_SECONDS = 4;
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

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
/** An event's time in ms since the epoch (the server's clock, as the workflow's is). */
const at = (e: HistoryEvent) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
const kinds = (events: HistoryEvent[]) =>
  events.flatMap((e) =>
    e.timerStartedEventAttributes
      ? ['started']
      : e.timerFiredEventAttributes
        ? ['fired']
        : e.timerCanceledEventAttributes
          ? ['canceled']
          : e.workflowExecutionCompletedEventAttributes
            ? ['completed']
            : [],
  );

/**
 * Once the payment has closed: its timer events and completion in order, when it closed, and when its last
 * input came (the last signal: the idle time counts from the workflow's clock then, the task that took it).
 */
async function closedHistory(handle: WorkflowHandle) {
  await waitFor('the payment closed', async () => (await handle.describe()).status.name === 'COMPLETED', 30_000);
  const events = (await handle.fetchHistory()).events ?? [];
  const signals = events.filter((e) => e.workflowExecutionSignaledEventAttributes);
  return { kinds: kinds(events), closed: at(events.at(-1)!), lastInput: at(signals.at(-1)!) };
}

test('a payment that hears nothing more closes after its idle time, on one timer', async () => {
  expect((await deliverIpn(stack, SHOP, payment('IDLE-1'))).state).toBe('applied:credited');
  const handle = stack.client.workflow.getHandle(paymentWorkflowId(SHOP, 'IDLE-1'));
  const { kinds: seen, closed, lastInput } = await closedHistory(handle);
  expect(closed - lastInput).toBeGreaterThanOrEqual(IDLE_SECONDS * 1000);
  expect(seen).toEqual(['started', 'fired', 'completed']);
  expect(await handle.result()).toMatchObject({ phase: 'credited', creditedMinor: 1234 });
});

test('a refund during the wait moves the close to its idle time after the refund; no timer is cancelled', async () => {
  expect((await deliverIpn(stack, SHOP, payment('IDLE-2'))).state).toBe('applied:credited');
  const handle = stack.client.workflow.getHandle(paymentWorkflowId(SHOP, 'IDLE-2'));
  await new Promise((r) => setTimeout(r, 1_000));
  expect((await deliverIpn(stack, SHOP, refund('IDLE-2R', 'IDLE-2'))).state).toBe('applied:credited');
  const { kinds: seen, closed, lastInput } = await closedHistory(handle);
  expect(closed - lastInput).toBeGreaterThanOrEqual(IDLE_SECONDS * 1000);
  // The first timer fired before the moved deadline and only woke the payment, which armed one more and
  // waited on: nothing cancelled, and no close at the first deadline.
  expect(seen).toEqual(['started', 'fired', 'started', 'fired', 'completed']);
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
  const { kinds: seen } = await closedHistory(stack.client.workflow.getHandle(options.workflowId));
  expect(seen).toEqual(['started', 'canceled', 'started', 'fired', 'completed']);
});
