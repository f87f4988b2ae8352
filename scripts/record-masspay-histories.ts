/**
 * Records masspayBatch workflow histories into test/histories/ for the replay test (see
 * record-histories.ts for the why). Kept apart from the message and entity histories: each script
 * records one workflow family, so re-recording one never rewrites another's fixtures.
 *
 *   npx tsx scripts/record-masspay-histories.ts [name...]   (default: the guarded-* ones)
 *
 * `masspay-batch-api-lost-answer` and `masspay-batch-upload-resolve` were recorded before the
 * issue 13 rules (one MassPay attempt, identities, contradictions, release waiting period): they
 * replay through the legacy branches behind patched('masspay-guarded-payouts'). Recorded again with
 * today's code they would take the new branches and stop covering the old: name them only on the
 * code they describe.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { startTemporalServer } from '../tools/dev/services/temporal-server';
import { startMongoServer } from '../tools/dev/services/mongo-server';
import { payoutWorkflowId } from '../src/shared/contract';
import { createTestStack, waitFor, withFields, type TestStack } from '../test/support/stack';

const OUT = path.resolve(__dirname, '../test/histories');
const FIXTURES = path.resolve(__dirname, '../test/fixtures/ipn');
const CREDS = { username: 'rec_api1.example.com', password: 'sim-password', signature: 'sim-signature' };
const LEGACY = ['masspay-batch-api-lost-answer', 'masspay-batch-upload-resolve'];
const GUARDED = ['masspay-batch-guarded-reconciled', 'masspay-batch-guarded-contradiction'];

async function save(stack: TestStack, name: string, workflowId: string) {
  const handle = stack.client.workflow.getHandle(workflowId);
  await handle.result();
  const history = await handle.fetchHistory();
  fs.writeFileSync(
    path.join(OUT, `${name}.json`),
    JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) }, null, 1),
  );
  console.log(`recorded ${name} (${history.events?.length} events)`);
}

async function main() {
  const wanted = new Set(process.argv.slice(2).length ? process.argv.slice(2) : GUARDED);
  for (const name of wanted) if (![...LEGACY, ...GUARDED].includes(name)) throw new Error(`no scenario ${name}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-record-'));
  const temporal = await startTemporalServer({ headless: true, logFile: path.join(dir, 't.log') });
  const mongo = await startMongoServer({ logFile: path.join(dir, 'm.log') });
  process.env.TEMPORAL_ADDRESS = temporal.address;
  process.env.MONGODB_URI = mongo.uri;
  process.env.PAYPAL_NVP_REC_USERNAME = CREDS.username;
  process.env.PAYPAL_NVP_REC_PASSWORD = CREDS.password;
  process.env.PAYPAL_NVP_REC_SIGNATURE = CREDS.signature;
  const stack = await createTestStack('record-masspay', { PAYMENT_IDLE_CLOSE_SECONDS: '2' });
  const batch = async (id: string) => (await stack.admin('GET', `/admin/payouts/${id}`)).body;
  const act = async (id: string, what: string, body: Record<string, unknown>) => {
    const res = await stack.admin('POST', `/admin/payouts/${id}/${what}`, body);
    if (res.status !== 202) throw new Error(`${what} answered ${res.status}: ${JSON.stringify(res.body)}`);
  };
  try {
    stack.sim.nvp.credentials = CREDS;
    stack.sim.nvp.masspay.settings = {
      listenerUrl: `${stack.baseUrl}/ipn/rec`,
      payerEmail: 'payouts@rec.example.com',
      processedDelayMs: 100,
      completedDelayMs: 300,
    };
    await stack.admin('PUT', '/admin/integrations/rec', {
      name: 'Recorded payouts',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['payouts@rec.example.com'],
      nvpCredentialsEnv: 'PAYPAL_NVP_REC',
      // Every batch of these scenarios (2.00 + 3.00) is over it: two approvals under the guarded rules.
      ...(wanted.has(LEGACY[0]!) || wanted.has(LEGACY[1]!) ? {} : { payoutCaps: { perBatchMinor: { USD: 400 } } }),
    });
    // unclaimed-…: the simulator leaves it Unclaimed, then returns it.
    const payees = ['rec-one@example.com', 'unclaimed-rec@example.com'];
    await stack.admin('PUT', '/admin/customers/rc', { name: 'RC', paypalEmails: payees });
    await stack.ledger.post({
      customerId: 'rc',
      currency: 'USD',
      amountMinor: 10_000,
      idempotencyKey: 'fund:rc',
      reason: 'manual',
      mode: 'sandbox',
    });
    const create = async () => {
      const res = await stack.admin('POST', '/admin/payouts', {
        integrationId: 'rec',
        currency: 'USD',
        operator: 'alice',
        items: payees.map((receiverEmail, i) => ({ customerId: 'rc', receiverEmail, amount: `${i + 2}.00` })),
      });
      if (res.status !== 201) throw new Error(`create answered ${res.status}: ${JSON.stringify(res.body)}`);
      const id = res.body.id as string;
      await waitFor('reserved', async () => (await batch(id)).reserved);
      return { id, uniqueIds: (res.body.items as Array<{ uniqueId: string }>).map((i) => i.uniqueId) };
    };

    /** PayPal's IPNs for an uploaded two-item batch: the first item Completed, the second as given. */
    const uploadIpns = (up: { id: string; uniqueIds: string[] }, txnIds: [string, string]) => {
      const base = fs.readFileSync(path.join(FIXTURES, 'masspay_processed_01.ipn'));
      const ipn = (status: string, second: string) =>
        withFields(base, {
          payment_status: status,
          unique_id_1: up.uniqueIds[0]!,
          status_1: 'Completed',
          mc_gross_1: '2.00',
          masspay_txn_id_1: txnIds[0],
          unique_id_2: up.uniqueIds[1]!,
          status_2: second,
          mc_gross_2: '3.00',
          masspay_txn_id_2: txnIds[1],
        });
      const deliver = async (raw: Buffer, applied: number) => {
        await stack.sim.sendIpn({ listenerUrl: `${stack.baseUrl}/ipn/rec`, body: raw }).done;
        await waitFor('applied', async () => (await batch(up.id)).appliedMessages.length === applied);
      };
      return { ipn, deliver };
    };

    // 1. Sent through the API; the first answer is lost, the retry is refused as a duplicate (8331).
    if (wanted.has('masspay-batch-api-lost-answer')) {
      const api = await create();
      await act(api.id, 'approve', { operator: 'bob', note: 'checked' });
      await waitFor('approved', async () => (await batch(api.id)).state === 'approved');
      stack.sim.nvp.faults.push({ kind: 'lost_answer' });
      await act(api.id, 'send', { operator: 'carol', note: 'pay' });
      await waitFor('completed', async () => (await batch(api.id)).state === 'completed', 60_000);
      await save(stack, 'masspay-batch-api-lost-answer', payoutWorkflowId(api.id));
    }

    // 2. Uploaded; approved by "Alice" (the creator's name, capitalised); an Unclaimed item resolved
    //    Failed at once, then PayPal's Completed says it was paid after all.
    if (wanted.has('masspay-batch-upload-resolve')) {
      const up = await create();
      await act(up.id, 'approve', { operator: 'Alice', note: 'checked' });
      await waitFor('approved', async () => (await batch(up.id)).state === 'approved');
      await act(up.id, 'submitted', { operator: 'bob', note: 'uploaded' });
      const { ipn, deliver } = uploadIpns(up, ['RECTXN1', 'RECTXN2']);
      await deliver(ipn('Processed', 'Unclaimed'), 1);
      await act(up.id, `items/${up.uniqueIds[1]}/resolve`, { operator: 'bob', note: 'gave up', state: 'Failed' });
      await waitFor('resolved', async () => (await batch(up.id)).counts.Failed === 1);
      await deliver(ipn('Completed', 'Completed'), 2);
      await save(stack, 'masspay-batch-upload-resolve', payoutWorkflowId(up.id));
    }

    // 3. Over its cap: approved by two; sent by a third; the answer is lost and no IPN comes; the
    //    operator's reconciliation (TransactionSearch) finds the items; PayPal's IPNs then settle them.
    if (wanted.has('masspay-batch-guarded-reconciled')) {
      const api = await create();
      await act(api.id, 'approve', { operator: 'bob', note: 'checked' });
      await waitFor('first approval', async () => (await batch(api.id)).approvals.length === 1);
      await act(api.id, 'approve', { operator: 'carol', note: 'checked too' });
      await waitFor('approved', async () => (await batch(api.id)).state === 'approved');
      const listenerUrl = stack.sim.nvp.masspay.settings.listenerUrl;
      stack.sim.nvp.masspay.settings.listenerUrl = null;
      stack.sim.nvp.faults.push({ kind: 'lost_answer' });
      await act(api.id, 'send', { operator: 'dave', note: 'pay' });
      await waitFor('uncertain', async () => (await batch(api.id)).send?.chunks[0]?.state === 'uncertain');
      await act(api.id, 'reconcile', { operator: 'dave', note: 'look it up' });
      await waitFor('reconciled', async () => (await batch(api.id)).send?.chunks[0]?.state === 'acked');
      stack.sim.nvp.masspay.settings.listenerUrl = listenerUrl;
      const payment = stack.sim.nvp.masspay.payments.find((p) =>
        p.items.some((i) => api.uniqueIds.includes(i.uniqueId)),
      )!;
      for (const status of ['Processed', 'Completed'] as const)
        await stack.sim.sendIpn({ listenerUrl: listenerUrl!, body: stack.sim.nvp.masspay.ipn(payment, status) }).done;
      await waitFor('completed', async () => (await batch(api.id)).state === 'completed', 60_000);
      await save(stack, 'masspay-batch-guarded-reconciled', payoutWorkflowId(api.id));
    }

    // 4. Uploaded; an Unclaimed item's release asked by one operator, confirmed by another; PayPal's
    //    Completed then says it was paid: a contradiction, which stopWaiting (from the Web UI) does
    //    not clear and its own decision does.
    if (wanted.has('masspay-batch-guarded-contradiction')) {
      const up = await create();
      await act(up.id, 'approve', { operator: 'bob', note: 'checked' });
      await waitFor('first approval', async () => (await batch(up.id)).approvals.length === 1);
      await act(up.id, 'approve', { operator: 'carol', note: 'checked too' });
      await waitFor('approved', async () => (await batch(up.id)).state === 'approved');
      await act(up.id, 'submitted', { operator: 'bob', note: 'uploaded' });
      const { ipn, deliver } = uploadIpns(up, ['RECTXN3', 'RECTXN4']);
      await deliver(ipn('Processed', 'Unclaimed'), 1);
      const resolve = { note: 'gave up', state: 'Failed' };
      await act(up.id, `items/${up.uniqueIds[1]}/resolve`, { operator: 'bob', ...resolve });
      await waitFor('requested', async () => (await batch(up.id)).pendingReleases.length === 1);
      await act(up.id, `items/${up.uniqueIds[1]}/resolve`, { operator: 'carol', ...resolve });
      await waitFor('resolved', async () => (await batch(up.id)).counts.Failed === 1);
      await deliver(ipn('Completed', 'Completed'), 2);
      const handle = stack.client.workflow.getHandle(payoutWorkflowId(up.id));
      await handle.signal('stopWaitingPayout', { operator: 'eve', note: 'make it go away' });
      await waitFor('refused', async () =>
        (await batch(up.id)).history.some((h: { what: string }) => /eve tried to stopWaiting/.test(h.what)),
      );
      const [c] = (await batch(up.id)).contradictions as Array<{ id: string }>;
      await act(up.id, 'clear-contradiction', { operator: 'carol', note: 'debited by hand', contradictionId: c!.id });
      await save(stack, 'masspay-batch-guarded-contradiction', payoutWorkflowId(up.id));
    }
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
