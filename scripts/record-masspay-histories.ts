/**
 * Records masspayBatch workflow histories into test/histories/ for the replay test (see
 * record-histories.ts for the why). Kept apart from the message and entity histories: each script
 * records one workflow family, so re-recording one never rewrites another's fixtures.
 *
 *   npx tsx scripts/record-masspay-histories.ts
 *
 * `masspay-batch-api-lost-answer` and `masspay-batch-upload-resolve` were recorded before the
 * issue 13 rules (one MassPay attempt, identities, contradictions, release waiting period): they
 * replay through the legacy branches behind patched('masspay-guarded-payouts').
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { startTemporalServer } from '../src/dev/services/temporal-server';
import { startMongoServer } from '../src/dev/services/mongo-server';
import { payoutWorkflowId } from '../src/domain/contracts';
import { createTestStack, waitFor, withFields, type TestStack } from '../test/support/stack';

const OUT = path.resolve(__dirname, '../test/histories');
const FIXTURES = path.resolve(__dirname, '../test/fixtures/ipn');
const CREDS = { username: 'rec_api1.example.com', password: 'sim-password', signature: 'sim-signature' };

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
    });
    const payees = ['rec-one@example.com', 'rec-two@example.com'];
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

    // 1. Sent through the API; the first answer is lost, the retry is refused as a duplicate (8331).
    const api = await create();
    await act(api.id, 'approve', { operator: 'bob', note: 'checked' });
    await waitFor('approved', async () => (await batch(api.id)).state === 'approved');
    stack.sim.nvp.faults.push({ kind: 'lost_answer' });
    await act(api.id, 'send', { operator: 'carol', note: 'pay' });
    await waitFor('completed', async () => (await batch(api.id)).state === 'completed', 60_000);
    await save(stack, 'masspay-batch-api-lost-answer', payoutWorkflowId(api.id));

    // 2. Uploaded; approved by "Alice" (the creator's name, capitalised); an Unclaimed item resolved
    //    Failed at once, then PayPal's Completed says it was paid after all.
    const up = await create();
    await act(up.id, 'approve', { operator: 'Alice', note: 'checked' });
    await waitFor('approved', async () => (await batch(up.id)).state === 'approved');
    await act(up.id, 'submitted', { operator: 'bob', note: 'uploaded' });
    const base = fs.readFileSync(path.join(FIXTURES, 'masspay_processed_01.ipn'));
    const ipn = (status: string, second: string) =>
      withFields(base, {
        payment_status: status,
        unique_id_1: up.uniqueIds[0]!,
        status_1: 'Completed',
        mc_gross_1: '2.00',
        masspay_txn_id_1: 'RECTXN1',
        unique_id_2: up.uniqueIds[1]!,
        status_2: second,
        mc_gross_2: '3.00',
        masspay_txn_id_2: 'RECTXN2',
      });
    const deliver = async (raw: Buffer, applied: number) => {
      await stack.sim.sendIpn({ listenerUrl: `${stack.baseUrl}/ipn/rec`, body: raw }).done;
      await waitFor('applied', async () => (await batch(up.id)).appliedMessages.length === applied);
    };
    await deliver(ipn('Processed', 'Unclaimed'), 1);
    await act(up.id, `items/${up.uniqueIds[1]}/resolve`, { operator: 'bob', note: 'gave up', state: 'Failed' });
    await waitFor('resolved', async () => (await batch(up.id)).counts.Failed === 1);
    await deliver(ipn('Completed', 'Completed'), 2);
    await save(stack, 'masspay-batch-upload-resolve', payoutWorkflowId(up.id));
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
