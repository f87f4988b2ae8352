/**
 * Records topup workflow histories into test/histories/ for the replay test (see record-histories.ts
 * for the why): a return credited at once, and a pending capture its poll sees completed. Each
 * workflow lingers a minute after it ends (late notices), so this takes a little over a minute.
 *
 *   npx tsx scripts/record-topup-histories.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { startTemporalServer } from '../tools/dev/services/temporal-server';
import { startMongoServer } from '../tools/dev/services/mongo-server';
import { topupWorkflowId } from '../src/shared/ids';
import { createTestStack, waitFor, type TestStack } from '../test/support/stack';

const OUT = path.resolve(__dirname, '../test/histories');
const SHOP = 'rectopup';
const APP = { clientId: 'RecTopupClient', secret: 'rec-topup-secret', webhookId: 'WH-REC-TOPUP' };
const MERCHANT = 'shop@rec-topup.example.com';

async function save(stack: TestStack, name: string, topupId: string) {
  const handle = stack.client.workflow.getHandle(topupWorkflowId(topupId));
  await handle.result();
  const history = await handle.fetchHistory();
  fs.writeFileSync(
    path.join(OUT, `${name}.json`),
    JSON.stringify({ workflowId: topupWorkflowId(topupId), history: JSON.parse(historyToJSON(history)) }, null, 1),
  );
  console.log(`recorded ${name} (${history.events?.length} events)`);
}

async function approvedTopup(stack: TestStack, amount: string): Promise<{ id: string; returnUrl: string }> {
  const res = await stack.admin('POST', '/admin/topups', {
    integrationId: SHOP,
    customerId: 'rec-customer',
    amount,
    currency: 'USD',
    returnUrl: 'https://portal.example.com/done',
    cancelUrl: 'https://portal.example.com/cancelled',
  });
  if (res.status !== 201) throw new Error(`POST /admin/topups: ${res.status} ${JSON.stringify(res.body)}`);
  const token = new URL(res.body.approveUrl).searchParams.get('token')!;
  const approved = await fetch(`${stack.sim.url}/checkoutnow`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, action: 'approve' }),
    redirect: 'manual',
  });
  return { id: res.body.id, returnUrl: approved.headers.get('location')! };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-record-'));
  const temporal = await startTemporalServer({ headless: true, logFile: path.join(dir, 't.log') });
  const mongo = await startMongoServer({ logFile: path.join(dir, 'm.log') });
  process.env.TEMPORAL_ADDRESS = temporal.address;
  process.env.MONGODB_URI = mongo.uri;
  process.env.PAYPAL_REC_TOPUP_CLIENT_ID = APP.clientId;
  process.env.PAYPAL_REC_TOPUP_CLIENT_SECRET = APP.secret;
  process.env.PAYPAL_REC_TOPUP_WEBHOOK_ID = APP.webhookId;
  const stack = await createTestStack('record-topups', { TOPUP_POLL_SECONDS: '1' });
  try {
    stack.sim.rest.addApp({
      ...APP,
      merchantEmail: MERCHANT,
      webhookUrl: `${stack.baseUrl}/webhooks/paypal/${SHOP}`,
      ipnUrl: `${stack.baseUrl}/ipn/${SHOP}`,
    });
    await stack.admin('PUT', `/admin/integrations/${SHOP}`, {
      name: 'Recorded top-ups',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: [MERCHANT],
      payoutsRestEnv: 'PAYPAL_REC_TOPUP',
      topups: { currencies: ['USD'], minMinor: { USD: 100 }, maxMinor: { USD: 100_000 } },
    });
    await stack.admin('PUT', '/admin/customers/rec-customer', { name: 'Rec' });

    const credited = await approvedTopup(stack, '25.00');
    await fetch(credited.returnUrl, { redirect: 'manual' });

    stack.sim.rest.orders.captureOutcomes.push('PENDING');
    const pending = await approvedTopup(stack, '30.00');
    await fetch(pending.returnUrl, { redirect: 'manual' });
    const captureId = stack.sim.rest.orders.orders.get(new URL(pending.returnUrl).searchParams.get('token')!)!.capture!
      .id;
    await stack.sim.rest.settleCapture(captureId, 'COMPLETED');
    await waitFor('pending top-up credited', async () => {
      const doc = await stack.db.models.Topup.findById(pending.id, { phase: 1 }).lean();
      return doc?.phase === 'credited';
    });

    await save(stack, 'topup-return-credited', credited.id);
    await save(stack, 'topup-pending-then-completed', pending.id);
  } finally {
    await stack.close();
    await temporal.stop();
    await mongo.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
