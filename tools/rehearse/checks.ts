import type { Client } from '@temporalio/client';
import type mongoose from 'mongoose';
import { ROLL_PATCH_ID } from './builds';
import { LOAD_CUSTOMERS, PAYEE, SUBSCRIBER, type Admin, type PaymentRecord } from './traffic';

interface Entry {
  customerId: string;
  txnId?: string;
  parentTxnId?: string;
  reason: string;
  amountMinor: number;
}

export interface Verdict {
  /** Answered 200 (or sent by PayPal, for cycles), never moved: payments, refunds, profile cycles, batch items. */
  lost: string[];
  /** Moved more than once. */
  doubled: string[];
  problems: string[];
  notes: string[];
  workflows: number;
  rolledWorkflows: number;
}

/**
 * What the rehearsal promises, read from the ledger itself (not from the service's own summaries): each answered
 * payment credited once, each answered refund debited once, each profile cycle credited once, the batch's items
 * completed once; then the ledger check, /admin/held, and every workflow history.
 */
export async function verify(opts: {
  db: mongoose.mongo.Db;
  admin: Admin;
  client: Client;
  payments: PaymentRecord[];
  cycles: string[];
  profileId: string;
  batch: { id: string; items: number };
}): Promise<Verdict> {
  const v: Verdict = { lost: [], doubled: [], problems: [], notes: [], workflows: 0, rolledWorkflows: 0 };
  const customers = [...LOAD_CUSTOMERS, PAYEE, SUBSCRIBER];
  const entries = (await opts.db
    .collection('ledger_entries')
    .find({ customerId: { $in: customers } })
    .project({ customerId: 1, txnId: 1, parentTxnId: 1, reason: 1, amountMinor: 1 })
    .toArray()) as unknown as Entry[];
  const count = (pred: (e: Entry) => boolean) => entries.filter(pred).length;
  const once = (what: string, n: number) => {
    if (n === 0) v.lost.push(what);
    if (n > 1) v.doubled.push(`${what} (${n}×)`);
  };
  let unanswered = 0;
  for (const p of opts.payments) {
    const credits = count((e) => e.reason === 'payment' && e.txnId === p.txnId);
    if (p.answered) once(`payment ${p.txnId}`, credits);
    else {
      unanswered++;
      if (credits > 1) v.doubled.push(`payment ${p.txnId} (never answered 200, ${credits}×)`);
    }
    if (p.refund?.answered) {
      const r = p.refund.txnId;
      once(
        `refund ${r}`,
        count((e) => e.reason === 'refund' && (e.txnId === r || e.parentTxnId === p.txnId)),
      );
    }
  }
  if (unanswered) v.problems.push(`${unanswered} payments never answered 200 after 30 POSTs`);
  for (const c of opts.cycles)
    once(
      `profile cycle ${c}`,
      count((e) => e.reason === 'payment' && e.txnId === c),
    );

  const profile = await opts.admin('GET', `/admin/profiles/${opts.profileId}?integrationId=reh`);
  if (profile.status !== 200) v.problems.push(`profile ${opts.profileId}: ${profile.status}`);
  else v.notes.push(`profile ${opts.profileId}: ${profile.body.status}, credited ${profile.body.creditedMinor} minor`);

  const batch = (await opts.admin('GET', `/admin/payouts/${opts.batch.id}`)).body as {
    state: string;
    counts: Record<string, number>;
    items: Array<{ uniqueId: string; state: string; released: boolean }>;
  };
  if (batch.state !== 'completed') v.problems.push(`batch ${opts.batch.id} is ${batch.state}, not completed`);
  for (const item of batch.items) {
    if (item.state !== 'Completed') v.lost.push(`batch item ${item.uniqueId} (${item.state})`);
    if (item.released) v.doubled.push(`batch item ${item.uniqueId} released after completing`);
  }
  const reserved = -entries
    .filter((e) => e.customerId === PAYEE && e.reason === 'payout_reserve')
    .reduce((a, e) => a + e.amountMinor, 0);
  const released = count((e) => e.customerId === PAYEE && e.reason === 'payout_release');
  if (reserved !== opts.batch.items * 200) {
    (reserved < opts.batch.items * 200 ? v.lost : v.doubled).push(`batch reservation ${reserved} minor`);
  }
  if (released) v.doubled.push(`${released} payout releases for completed items`);
  v.notes.push(`batch ${opts.batch.id}: ${batch.state}, ${JSON.stringify(batch.counts)}, reserved ${reserved} minor`);

  const check = await opts.admin('GET', '/admin/ledger/check');
  if (check.status !== 200 || !check.body.ok) v.problems.push(`ledger check: ${JSON.stringify(check.body)}`);
  else v.notes.push(`ledger check: ok, ${check.body.accounts} accounts, ${check.body.entries} entries`);

  const held = (await opts.admin('GET', '/admin/held')).body as Record<string, unknown>;
  for (const [list, rows] of Object.entries(held)) {
    if (Array.isArray(rows) && rows.length && list !== 'truncated') {
      v.problems.push(`/admin/held ${list}: ${rows.length} (${JSON.stringify(rows[0]).slice(0, 300)})`);
    }
  }

  // Every history: no WorkflowTaskFailed (the guard of test/support/workflow-task-failures.ts, here with markers).
  for await (const wf of opts.client.workflow.list()) {
    v.workflows++;
    const history = await opts.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    let rolled = false;
    for (const e of history.events ?? []) {
      const failed = e.workflowTaskFailedEventAttributes;
      if (failed) v.problems.push(`WorkflowTaskFailed in ${wf.workflowId}: ${failed.failure?.message ?? ''}`);
      const marker = e.markerRecordedEventAttributes;
      // A patch marker (`core_patch`) carries {"id": ..., "deprecated": ...} as a payload under `patch-data`.
      const payloads = Object.values(marker?.details ?? {}).flatMap((p) => p.payloads ?? []);
      if (payloads.some((p) => p.data && Buffer.from(p.data).toString('utf8').includes(ROLL_PATCH_ID))) rolled = true;
    }
    if (rolled) v.rolledWorkflows++;
  }
  if (v.rolledWorkflows === 0) v.problems.push(`no workflow history carries the patch ${ROLL_PATCH_ID}: did B run?`);
  return v;
}
