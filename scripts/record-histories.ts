/**
 * Records real workflow histories into test/histories/ for the replay test, which proves that
 * workflow code changes stay compatible with histories already on a server. Re-record only
 * when an incompatible change is deliberate (and, once released, versioned with patched()).
 * Histories of an earlier shape stay beside them while such workflows may still be running:
 * `process-ipn-pending` and `payment-lifecycle-held-assigned` / `-pending-completed-refund-duplicate`
 * are payments from before they went straight to their entity (ipnEvent from processIpn), and
 * `payment-lifecycle-direct-*` payments that verified their messages in their queue (before
 * `verify-messages-beside-the-queue`), `process-ipn-refund` / `-invalid-refund` and
 * `payment-lifecycle-beside-*` refunds checked by processIpn and sent on as `ipnEvent` (before
 * `adjustments-through-the-payment-door`). `payment-lifecycle-door-over-limit-refund-approved` was recorded
 * after hold reasons became typed values; `payment-lifecycle-door-pending-completed-refund-duplicate` is the
 * same payment as `payment-lifecycle-fewer-steps-*` before fewer steps per message (workflows/shared/patches.ts),
 * and `payment-lifecycle-started-before-fewer-steps` one started without `fewerSteps` in its input (it asks
 * patched()); `payment-lifecycle-fewer-steps-*` is in turn the same payment as
 * `payment-lifecycle-fewer-activations-*` before a payment took fewer activations per message.
 * `payment-lifecycle-first-take-*` is a payment whose first message was taken in the step that loads it,
 * and `payment-lifecycle-alarm-*` one that waits for input on timers it never cancels (`waitsOnAlarm`).
 * RECORD_HISTORIES_DIR writes elsewhere (to pick new files).
 *
 *   npx tsx scripts/record-histories.ts
 */
import fs from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import os from 'node:os';
import path from 'node:path';
import { startTemporalServer } from '../tools/dev/services/temporal-server';
import { startMongoServer } from '../tools/dev/services/mongo-server';
import { paymentWorkflowId } from '../src/shared/ids';
import { createTestStack, sample, waitFor, withField, withFields, type TestStack } from '../test/support/stack';
import { profileWorkflowId } from '../src/profiles/state';
import { storeIpn } from '../src/messages/intake';
import { ipnMessageSignal, PAYMENT_LIFECYCLE, paymentStartOptions } from '../src/payments/contract';
import type { PaymentLifecycleWorkflow } from '../src/payments/contract';
import type { MessageRef } from '../src/shared/contract';

const OUT = path.resolve(process.env.RECORD_HISTORIES_DIR ?? path.resolve(__dirname, '../test/histories'));

async function save(stack: TestStack, name: string, workflowId: string) {
  const handle = stack.client.workflow.getHandle(workflowId);
  await waitFor(`${workflowId} started`, () => handle.describe().then(() => true)); // dispatch follows the 200
  await handle.result();
  const history = await handle.fetchHistory();
  // The canonical proto3 JSON, as `temporal workflow show --output json` writes it.
  fs.writeFileSync(
    path.join(OUT, `${name}.json`),
    JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) }, null, 1),
  );
  console.log(`recorded ${name} (${history.events?.length} events)`);
}

/** A workflow that waits for more (an entity): its history so far replays just the same. */
async function saveRunning(stack: TestStack, name: string, workflowId: string) {
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  const json = JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) }, null, 1);
  fs.writeFileSync(path.join(OUT, `${name}.json`), json);
  console.log(`recorded ${name} (${history.events?.length} events, still running)`);
}

async function messageWorkflow(stack: TestStack, txnId: string, status: string) {
  const msg = await waitFor(`message ${txnId}`, () =>
    stack.db.models.IpnMessage.findOne({ txnId, paymentStatus: status, workflowId: { $exists: true } }).lean(),
  );
  return msg.workflowId!;
}

/** A refund of `parentTxnId` (its own txn id, a negative gross) built from a payment's fields. */
function refundOf(
  payment: Buffer,
  txnId: string,
  parentTxnId: string,
  gross: string,
  more: Record<string, string> = {},
) {
  return withFields(payment, {
    txn_id: txnId,
    parent_txn_id: parentTxnId,
    payment_status: 'Refunded',
    mc_gross: gross,
    ...more,
  });
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-record-'));
  const temporal = await startTemporalServer({ headless: true, logFile: path.join(dir, 't.log') });
  const mongo = await startMongoServer({ logFile: path.join(dir, 'm.log') });
  process.env.TEMPORAL_ADDRESS = temporal.address;
  process.env.MONGODB_URI = mongo.uri;
  process.env.PAYPAL_NVP_RECORD_USERNAME = 'record_api1.example.com';
  process.env.PAYPAL_NVP_RECORD_PASSWORD = 'sim-password';
  process.env.PAYPAL_NVP_RECORD_SIGNATURE = 'sim-signature';
  const stack = await createTestStack('record', { PAYMENT_IDLE_CLOSE_SECONDS: '2' });
  stack.sim.nvp.credentials = {
    username: 'record_api1.example.com',
    password: 'sim-password',
    signature: 'sim-signature',
  };
  try {
    await stack.admin('PUT', '/admin/integrations/shop', {
      name: 'Shop',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
      nvpCredentialsEnv: 'PAYPAL_NVP_RECORD',
    });
    await stack.admin('PUT', '/admin/customers/c1', { name: 'C1', paypalEmails: ['buyer@paypalsandbox.com'] });
    const url = `${stack.baseUrl}/ipn/shop`;
    const base = sample('web_accept_completed_ipn_simulator_01');

    // 1. Pending, then Completed, then a partial refund, then a duplicate of the Completed.
    const pending = withField(withField(base, 'txn_id', 'REC1'), 'payment_status', 'Pending');
    await stack.sim.sendIpn({ listenerUrl: url, body: pending }).done;
    const completed = withField(base, 'txn_id', 'REC1');
    await stack.sim.sendIpn({ listenerUrl: url, body: completed }).done;
    const refund = withField(
      withField(withField(withField(base, 'txn_id', 'REC1R'), 'parent_txn_id', 'REC1'), 'payment_status', 'Refunded'),
      'mc_gross',
      '-5.00',
    );
    await stack.sim.sendIpn({ listenerUrl: url, body: refund }).done;
    await stack.sim.sendIpn({ listenerUrl: url, body: completed }).done;
    const sandboxUsd = async () => (await stack.ledger.balances('c1', 'sandbox'))[0]?.balanceMinor;
    await waitFor('refund applied', async () => (await sandboxUsd()) === 734);
    // One door: the refund goes to its payment's entity by message id, like the payment's own messages.
    if ((await messageWorkflow(stack, 'REC1R', 'Refunded')) !== paymentWorkflowId('shop', 'REC1'))
      throw new Error('the refund was not dispatched to its payment');
    const rec1 = 'payment-lifecycle-fewer-activations-pending-completed-refund-duplicate';
    await save(stack, rec1, paymentWorkflowId('shop', 'REC1'));

    // 1b. A payment started as before fewer steps per message (its input without `fewerSteps`), whose
    // messages then reach today's code: it asks patched('fewer-steps-per-message') and takes them.
    const before = withField(base, 'txn_id', 'REC7');
    stack.sim.registerMessage(before);
    const stored = await storeIpn(stack.db.models, { integrationId: 'shop', raw: before, ipnEnabled: true });
    const start = paymentStartOptions({
      integrationId: 'shop',
      paymentTxnId: 'REC7',
      taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
      config: stack.config,
    });
    const oldInput = { ...start.args[0] };
    delete oldInput.fewerSteps;
    delete oldInput.fewerActivations;
    await stack.client.workflow.signalWithStart<PaymentLifecycleWorkflow, [MessageRef]>(PAYMENT_LIFECYCLE, {
      ...start,
      args: [oldInput],
      signal: ipnMessageSignal,
      signalArgs: [{ messageId: stored._id }],
    });
    await save(stack, 'payment-lifecycle-started-before-fewer-steps', paymentWorkflowId('shop', 'REC7'));

    // 1c. Completed at once (its first step posts and saves: takeFirstMessage), then a partial refund,
    //     then a duplicate of the Completed.
    const taken = withField(base, 'txn_id', 'REC8');
    const beforeTaken = (await sandboxUsd()) ?? 0;
    await stack.sim.sendIpn({ listenerUrl: url, body: taken }).done;
    await waitFor('taken at once', async () => (await sandboxUsd()) === beforeTaken + 1234);
    const takenRefund = refundOf(base, 'REC8R', 'REC8', '-5.00');
    await stack.sim.sendIpn({ listenerUrl: url, body: takenRefund }).done;
    await stack.sim.sendIpn({ listenerUrl: url, body: taken }).done;
    await waitFor('taken, then refunded', async () => (await sandboxUsd()) === beforeTaken + 734);
    await save(stack, 'payment-lifecycle-first-take-completed-refund-duplicate', paymentWorkflowId('shop', 'REC8'));

    // 1d. The same, waiting on its alarm (workflows/shared/alarm.ts): the refund comes a second after the
    //     credit, the first timer then fires before the moved deadline, and the payment waits on.
    const alarmed = withField(base, 'txn_id', 'REC9');
    const beforeAlarmed = (await sandboxUsd()) ?? 0;
    await stack.sim.sendIpn({ listenerUrl: url, body: alarmed }).done;
    await waitFor('credited', async () => (await sandboxUsd()) === beforeAlarmed + 1234);
    await new Promise((r) => setTimeout(r, 1_000));
    await stack.sim.sendIpn({ listenerUrl: url, body: refundOf(base, 'REC9R', 'REC9', '-5.00') }).done;
    await stack.sim.sendIpn({ listenerUrl: url, body: alarmed }).done;
    await waitFor('credited, then refunded', async () => (await sandboxUsd()) === beforeAlarmed + 734);
    await save(stack, 'payment-lifecycle-alarm-completed-refund-duplicate', paymentWorkflowId('shop', 'REC9'));

    // 2. No customer matches: held, then an operator assigns one.
    const stranger = withField(
      withField(withField(base, 'txn_id', 'REC2'), 'payer_email', 'stranger%40example.com'),
      'custom',
      '',
    );
    await stack.sim.sendIpn({ listenerUrl: url, body: stranger }).done;
    await waitFor(
      'held',
      async () => (await stack.db.models.Payment.findById('shop:REC2').lean())?.holdReason === 'no_customer_match',
    );
    await stack.client.workflow.getHandle(paymentWorkflowId('shop', 'REC2')).signal('assignCustomer', {
      customerId: 'c1',
      ...(await stack.operators.proof('recorder')),
      reason: 'replay fixture',
    });
    await save(stack, 'payment-lifecycle-beside-held-assigned', paymentWorkflowId('shop', 'REC2'));

    // 2b. A refund larger than what remains credited: held with a typed reason, then an operator
    //     approves capping it (the admin API's Update). Recorded after hold reasons became typed values.
    await stack.sim.sendIpn({ listenerUrl: url, body: withField(base, 'txn_id', 'REC6') }).done;
    const overRefund = refundOf(base, 'REC6R', 'REC6', '-500.00');
    await stack.sim.sendIpn({ listenerUrl: url, body: overRefund }).done;
    await waitFor(
      'over-limit refund held',
      async () =>
        (await stack.db.models.Payment.findById('shop:REC6').lean())?.holdReason === 'refund_exceeds_original:REC6R',
    );
    const approved = await stack.admin('POST', '/admin/payments/REC6/approve?integrationId=shop', {
      operator: 'recorder',
      reason: 'replay fixture',
    });
    if (approved.status !== 200) throw new Error(`approve answered ${approved.status}`);
    await save(stack, 'payment-lifecycle-door-over-limit-refund-approved', paymentWorkflowId('shop', 'REC6'));

    // 4. A recurring profile: created, then a cycle payment credited once (still running: it waits for more).
    const profile = (name: string, fields: Record<string, string>) =>
      withFields(sample(name), {
        recurring_payment_id: 'I-RECORDED0001',
        payer_email: 'buyer%40paypalsandbox.com',
        receiver_email: 'seller%40paypalsandbox.com',
        ...fields,
      });
    const beforeCycle = (await sandboxUsd()) ?? 0;
    await stack.sim.sendIpn({ listenerUrl: url, body: profile('recurring_payment_profile_created_01', {}) }).done;
    const cycle = profile('recurring_payment_completed_01', { txn_id: 'REC4' });
    await stack.sim.sendIpn({ listenerUrl: url, body: cycle }).done;
    await waitFor('cycle payment credited', async () => (await sandboxUsd()) === beforeCycle + 2995);
    await saveRunning(stack, 'recurring-profile-created-paid', profileWorkflowId('shop', 'I-RECORDED0001'));
    // Its refund comes to the payment's door, which hands it to the profile that credited the payment.
    const cycleRefund = refundOf(cycle, 'REC4R', 'REC4', '-5.00', { mc_fee: '-0.15' });
    await stack.sim.sendIpn({ listenerUrl: url, body: cycleRefund }).done;
    await waitFor('cycle payment refunded', async () => (await sandboxUsd()) === beforeCycle + 2495);
    await save(stack, 'payment-lifecycle-door-profile-refund', paymentWorkflowId('shop', 'REC4'));

    // 3. A message PayPal never sent: INVALID (a payment: its entity verifies it), and one that is no payment.
    const spoof = withField(base, 'txn_id', 'REC3');
    const res = await stack.postIpn('shop', spoof);
    if (res.status !== 200) throw new Error(`spoof POST answered ${res.status}`);
    await save(stack, 'payment-lifecycle-beside-invalid', paymentWorkflowId('shop', 'REC3'));
    const spoofedRefund = withFields(base, { txn_id: 'REC3R', parent_txn_id: 'REC3', payment_status: 'Refunded' });
    if ((await stack.postIpn('shop', spoofedRefund)).status !== 200) throw new Error('spoofed refund POST failed');
    await waitFor('spoofed refund settled', async () => {
      const m = await stack.db.models.IpnMessage.findOne({ txnId: 'REC3R' }).lean();
      return m?.state === 'invalid';
    });
    await save(stack, 'payment-lifecycle-door-invalid-refund', paymentWorkflowId('shop', 'REC3'));

    // 5. A profile's BillOutstandingAmount whose answer is lost: held as uncertain, a second bill
    //    refused, a refresh finds PayPal's balance lower (carried out), the slow IPN credits once.
    const owing = 'I-RECORDED0002';
    const about = (name: string, fields: Record<string, string>) =>
      withFields(sample(name), {
        recurring_payment_id: owing,
        payer_email: 'buyer%40paypalsandbox.com',
        receiver_email: 'seller%40paypalsandbox.com',
        ...fields,
      });
    await stack.sim.sendIpn({ listenerUrl: url, body: about('recurring_payment_profile_created_01', {}) }).done;
    const failedCycle = about('recurring_payment_failed_utf8_01', {
      txn_type: 'recurring_payment_failed',
      amount_per_cycle: '29.95',
      amount: '29.95',
      outstanding_balance: '59.90',
      residence_country: 'US',
    });
    await stack.sim.sendIpn({ listenerUrl: url, body: failedCycle }).done;
    const profilePath = `/admin/profiles/${owing}?integrationId=shop`;
    await waitFor('balance owed', async () => (await stack.admin('GET', profilePath)).body?.outstandingMinor === 5990);
    stack.sim.nvp.upsertProfile({
      id: owing,
      status: 'Active',
      currency: 'USD',
      amountPerCycleMinor: 2995,
      outstandingMinor: 5990,
      failedPaymentCount: 1,
      nextBillingDate: new Date(Date.now() + 10 * 86400_000).toISOString(),
      listenerUrl: url,
      receiverEmail: 'seller@paypalsandbox.com',
      payerEmail: 'buyer@paypalsandbox.com',
      holdBillIpn: true,
    });
    const profileAction = (action: string, body: Record<string, string> = {}) =>
      stack.admin('POST', `/admin/profiles/${owing}/${action}?integrationId=shop`, {
        operator: 'recorder',
        note: 'replay fixture',
        ...body,
      });
    stack.sim.nvp.faults.push({ kind: 'lost_answer' });
    const bill = await profileAction('bill-outstanding', { amount: '50.00' });
    if (bill.status !== 502) throw new Error(`the lost bill answered ${bill.status}`);
    // From the Web UI (the API would refuse it before the workflow): refused inside, on the record.
    await stack.client.workflow
      .getHandle(profileWorkflowId('shop', owing))
      .signal('billOutstanding', { operator: 'recorder', note: 'again', amount: '50.00' });
    await waitFor('PayPal collected', async () => stack.sim.nvp.profiles.get(owing)!.outstandingMinor === 990);
    const refreshed = await profileAction('refresh');
    if (refreshed.status !== 200) throw new Error(`refresh answered ${refreshed.status}`);
    stack.sim.nvp.releaseHeldIpns();
    await waitFor('credited', async () => (await stack.admin('GET', profilePath)).body?.creditedMinor === 5000);
    await saveRunning(stack, 'recurring-profile-bill-uncertain', profileWorkflowId('shop', owing));

    // 6. A Mass Pay IPN (its items read in an activity): one item paid to us, one matching no batch.
    const masspay = withFields(sample('masspay_processed_02'), {
      receiver_email_1: 'seller%40paypalsandbox.com',
      masspay_txn_id_1: 'REC5',
      payer_email: 'buyer%40paypalsandbox.com',
    });
    await stack.sim.sendIpn({
      listenerUrl: url,
      body: Buffer.concat([
        masspay,
        Buffer.from('&status_2=Completed&unique_id_2=REC5B&mc_gross_2=1.00&mc_currency_2=USD'),
      ]),
    }).done;
    const mp = await waitFor('masspay message', () =>
      stack.db.models.IpnMessage.findOne({ txnType: 'masspay', workflowId: { $exists: true } }).lean(),
    );
    await save(stack, 'process-ipn-masspay', mp.workflowId!);
  } finally {
    await stack.close();
    await temporal.stop();
    await mongo.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
