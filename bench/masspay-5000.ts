/**
 * A 5,000-item Mass Pay batch through the real stack: created over the admin API, every item
 * reserved, the upload file generated, then reconciled from one Processed and one Completed IPN
 * (each reporting all 5,000 items). Prints each phase's time, how long the batch's slices of each
 * IPN took (from the workflow's history), and the process's peak RSS (API, worker and simulator
 * share this process); checks that the end state is exact.
 *
 *   npx tsx bench/masspay-5000.ts [items=5000]
 */
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { startTemporalServer } from '../tools/dev/services/temporal-server';
import { startMongoServer } from '../tools/dev/services/mongo-server';
import { tsToMs } from '@temporalio/common/lib/time';
import { payoutWorkflowId } from '../src/shared/contract';
import { createTestStack, waitFor, type TestStack } from '../test/support/stack';

const CUSTOMERS = 50;

/** The batch's slice activities scheduled after `since`: how many, the longest, first start to last end. */
async function sliceTimes(stack: TestStack, batchId: string, since: number) {
  const history = await stack.client.workflow.getHandle(payoutWorkflowId(batchId)).fetchHistory();
  const scheduled = new Map<string, number>();
  const spans: Array<[number, number]> = [];
  for (const e of history.events ?? []) {
    const at = tsToMs(e.eventTime);
    if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'applyMasspaySlice' && at >= since)
      scheduled.set(String(e.eventId), at);
    const done = e.activityTaskCompletedEventAttributes;
    const from = done ? scheduled.get(String(done.scheduledEventId)) : undefined;
    if (from !== undefined) spans.push([from, at]);
  }
  if (spans.length === 0) return 'no slices';
  const longest = Math.max(...spans.map(([a, b]) => b - a));
  const wall = spans.at(-1)![1] - spans[0]![0];
  return `${spans.length} slices in ${(wall / 1000).toFixed(1)} s, longest ${(longest / 1000).toFixed(1)} s`;
}

async function main() {
  const count = Number(process.argv[2] ?? 5000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-bench-'));
  const temporal = process.env.TEMPORAL_ADDRESS
    ? undefined
    : await startTemporalServer({ headless: true, logFile: path.join(dir, 'temporal.log') });
  const mongo = process.env.MONGODB_URI ? undefined : await startMongoServer({ logFile: path.join(dir, 'db.log') });
  process.env.TEMPORAL_ADDRESS ??= temporal!.address;
  process.env.MONGODB_URI ??= mongo!.uri;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);

  // One IPN carries every item: up to 1 MB.
  const stack = await createTestStack('bench-masspay', { IPN_MAX_BODY_BYTES: String(1024 * 1024) });
  const t = () => process.hrtime.bigint();
  const secs = (from: bigint) => (Number(t() - from) / 1e9).toFixed(1);
  try {
    // No postback: the simulator's postback takes at most 64 KB, a 5,000-item IPN is ~600 KB.
    await stack.admin('PUT', '/admin/integrations/mp', {
      name: 'Bench',
      mode: 'sandbox',
      verifyTransaction: false,
      allowedCurrencies: ['USD'],
      receiverEmails: ['payer@example.com'],
    });
    for (let c = 0; c < CUSTOMERS; c++) {
      await stack.admin('PUT', `/admin/customers/b${c}`, { name: `b${c}`, paypalEmails: [`b${c}@example.com`] });
      await stack.ledger.post({
        customerId: `b${c}`,
        currency: 'USD',
        amountMinor: 1_000_000,
        idempotencyKey: `fund:b${c}`,
        reason: 'manual',
        mode: 'sandbox',
      });
    }
    const items = Array.from({ length: count }, (_, i) => ({
      customerId: `b${i % CUSTOMERS}`,
      receiverEmail: `b${i % CUSTOMERS}@example.com`,
      amount: '1.00',
    }));

    let start = t();
    const created = await stack.admin('POST', '/admin/payouts', {
      integrationId: 'mp',
      currency: 'USD',
      operator: 'alice',
      items,
    });
    if (created.status !== 201)
      throw new Error(`POST /admin/payouts answered ${created.status}: ${JSON.stringify(created.body).slice(0, 300)}`);
    const id = created.body.id as string;
    const uniqueIds = (created.body.items as Array<{ uniqueId: string }>).map((i) => i.uniqueId);
    console.log(`created ${count} items: ${secs(start)} s`);
    start = t();
    const batch = async () => (await stack.admin('GET', `/admin/payouts/${id}`)).body;
    await waitFor(
      'reserved',
      async () => (await stack.db.models.PayoutBatch.findById(id).lean())?.snapshot?.reserved,
      900_000,
    );
    console.log(`reserved ${count} items: ${secs(start)} s`);
    start = t();
    const file = await (
      await fetch(`${stack.baseUrl}/admin/payouts/${id}/masspay-file`, {
        headers: { authorization: `Bearer ${stack.adminToken}` },
      })
    ).text();
    console.log(`upload file: ${file.split('\n').length - 1} lines, ${file.length} bytes, ${secs(start)} s`);
    await stack.admin('POST', `/admin/payouts/${id}/approve`, { operator: 'bob', note: 'ok' });
    await waitFor(
      'approved',
      async () => (await stack.db.models.PayoutBatch.findById(id).lean())?.state === 'approved',
    );
    await stack.admin('POST', `/admin/payouts/${id}/submitted`, { operator: 'alice', note: 'uploaded' });
    await waitFor(
      'submitted',
      async () => (await stack.db.models.PayoutBatch.findById(id).lean())?.state === 'submitted',
    );

    const body = (status: string, itemStatus: (i: number) => string) =>
      Buffer.from(
        `txn_type=masspay&payment_status=${status}&test_ipn=1&charset=windows-1252` +
          '&payer_email=payer%40example.com&verify_sign=x' +
          uniqueIds
            .map(
              (u, i) =>
                `&unique_id_${i + 1}=${u}&status_${i + 1}=${itemStatus(i)}&mc_gross_${i + 1}=1.00` +
                `&mc_currency_${i + 1}=USD&masspay_txn_id_${i + 1}=T${u}`,
            )
            .join(''),
        'latin1',
      );
    for (const [status, itemStatus] of [
      ['Processed', (i: number) => (i % 10 === 0 ? 'Unclaimed' : 'Completed')],
      ['Completed', (i: number) => (i % 10 === 0 ? 'Returned' : 'Completed')],
    ] as const) {
      const raw = body(status, itemStatus);
      start = t();
      const delivery = stack.sim.sendIpn({ listenerUrl: `${stack.baseUrl}/ipn/mp`, body: raw });
      if (!(await delivery.done).delivered) throw new Error('IPN not delivered');
      await waitFor(
        `${status} applied`,
        async () =>
          (await stack.db.models.PayoutBatch.findById(id).lean())?.snapshot?.appliedMessages?.length ===
          (status === 'Processed' ? 1 : 2),
        900_000,
      );
      const slices = await sliceTimes(stack, id, Date.now() - Number(t() - start) / 1e6);
      console.log(`${status} IPN (${raw.length} bytes) reconciled: ${secs(start)} s (${slices})`);
    }
    const end = await batch();
    // b1 pays items 1, 51, 101, ...: every one completed (items 0, 10, 20, ... came back).
    const balances = await stack.ledger.balances('b1', 'sandbox');
    const paid = items.filter((_, n) => n % CUSTOMERS === 1 && n % 10 !== 0).length;
    console.log(
      `end: ${end.state} ${JSON.stringify(end.counts)}; b1 balance ${balances[0]?.balanceMinor} ` +
        `(expected ${1_000_000 - 100 * paid})`,
    );
    const check = await stack.ledger.check();
    console.log(
      `ledger check: ${check.problems.length ? check.problems.slice(0, 3).join('; ') : 'sound'} ` +
        `(${check.entries} entries)`,
    );
    console.log(`PEAK RSS (API + worker + simulator, one process): ${(peakRss / 1024 / 1024).toFixed(0)} MiB`);
  } finally {
    clearInterval(sampler);
    await stack.close();
    await temporal?.stop?.();
    await mongo?.stop?.();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
