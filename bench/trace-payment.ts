import './lib/as-production.mjs';
import fs from 'node:fs';
/**
 * `npx tsx bench/trace-payment.ts [N]`: where one payment's time goes. Posts N payments one after
 * another on the embedded servers, then prints, for the last one, every step from POST to credit
 * (workflow history events and the ledger entry) with its offset in ms.
 */
import { startMongoServer } from '../tools/dev/services/mongo-server';
import { startTemporalServer } from '../tools/dev/services/temporal-server';
import { createTestStack, sample, withField, type TestStack } from '../test/support/stack';
import { accountIdOf } from '../src/shared/ledger';
import { CreditWatch } from './lib/credits';
import { nowMs } from './lib/load';

/**
 * Mean time of each step, over the given payments: from their payment workflow's history, and the
 * ledger entry's createdAt as the moment of credit (no polling delay).
 */
async function printPhases(stack: TestStack, payments: Array<{ txnId: string; wall: number }>): Promise<void> {
  const sums = new Map<string, number>();
  const add = (k: string, v: number) => sums.set(k, (sums.get(k) ?? 0) + v);
  for (const p of payments) {
    const h = await stack.client.workflow.getHandle(`payment:bench:${p.txnId}`).fetchHistory();
    const events = (h.events ?? []) as Array<Record<string, unknown> & { eventTime?: unknown }>;
    const at = (e: (typeof events)[number]) => {
      const t = e.eventTime as { seconds: unknown; nanos?: number };
      return Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
    };
    const of = (key: string) => events.filter((e) => e[key]).map(at);
    const scheduled = of('workflowTaskScheduledEventAttributes');
    const started = of('workflowTaskStartedEventAttributes');
    const entry = await stack.db.models.LedgerEntry.findOne({ txnId: p.txnId }, { createdAt: 1 }).lean();
    const credit = entry!.createdAt.getTime();
    // The workflow tasks up to the credit: each one's wait, and the last one's run until the entry.
    const before = started.filter((t) => t <= credit).length;
    add('POST -> entity signalled (ack, dispatch)', scheduled[0]! - p.wall);
    for (let i = 0; i < before; i++) {
      add(`workflow task ${i + 1} waits for the worker`, started[i]! - scheduled[i]!);
      const end = i + 1 < before ? scheduled[i + 1]! : credit;
      add(
        `workflow task ${i + 1} ${i + 1 < before ? 'and what follows it' : 'until the ledger entry'}`,
        end - started[i]!,
      );
    }
    add('= POST -> ledger entry', credit - p.wall);
  }
  console.log(`mean per step over the last ${payments.length} payments:`);
  for (const [k, v] of sums) console.log(`  ${k.padEnd(48)} ${(v / payments.length).toFixed(1)} ms`);
}

/** CPU clock ticks (user+system) per process name, over this process and its descendants (the servers it started). */
function cpuByProcess(): Map<string, number> {
  const stats = new Map<number, { name: string; ppid: number; ticks: number }>();
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(pid), { name, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 20; p = stats.get(p)?.ppid ?? 0, hops++)
      if (p === process.pid) return true;
    return false;
  };
  const out = new Map<string, number>();
  for (const [pid, st] of stats) {
    if (!ours(pid)) continue;
    const name = pid === process.pid ? 'node (this: API, worker, simulator)' : st.name;
    out.set(name, (out.get(name) ?? 0) + st.ticks);
  }
  return out;
}

/** A marker's kind (a local activity's type, a patch's id) or the search attributes an upsert sets. */
function detailOf(e: Record<string, any>): string {
  const decode = (p?: { data?: Uint8Array | null }) => (p?.data ? Buffer.from(p.data).toString('utf8') : '');
  const marker = e.markerRecordedEventAttributes;
  if (marker) {
    const details = marker.details ?? {};
    const text = ['data', 'patch_data', 'patch-id'].map((k) => decode(details[k]?.payloads?.[0])).join(' ');
    const kind = text.match(/"activity_type":"([^"]+)"/)?.[1] ?? text.match(/"id":"([^"]+)"/)?.[1] ?? text.slice(0, 60);
    return ` ${marker.markerName} ${kind}`;
  }
  const upsert = e.upsertWorkflowSearchAttributesEventAttributes;
  if (upsert) return ` ${Object.keys(upsert.searchAttributes?.indexedFields ?? {}).join(',')}`;
  return '';
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10);
  const temporal = process.env.TEMPORAL_ADDRESS ? undefined : await startTemporalServer({ headless: true });
  const mongo = process.env.MONGODB_URI ? undefined : await startMongoServer({});
  process.env.TEMPORAL_ADDRESS ??= temporal!.address;
  process.env.MONGODB_URI ??= mongo!.uri;
  // Every database command the service sends (API and worker share this process's client), counted per payment.
  const u = new URL(process.env.MONGODB_URI);
  u.searchParams.set('monitorCommands', 'true');
  process.env.MONGODB_URI = u.toString();
  const stack = await createTestStack('trace');
  const commands = new Map<string, number>();
  let counting = false;
  stack.db.connection.getClient().on('commandStarted', (e) => {
    if (!counting) return;
    const cmd = e.command as Record<string, unknown>;
    const key = `${e.commandName} ${String(cmd[e.commandName] ?? '')}`;
    commands.set(key, (commands.get(key) ?? 0) + 1);
  });
  try {
    const admin = async (m: string, p: string, b: unknown) => {
      const r = await stack.admin(m, p, b);
      if (r.status >= 300) throw new Error(`${m} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    };
    await admin('PUT', '/admin/integrations/bench', {
      name: 'Bench',
      mode: 'sandbox',
      allowedCurrencies: ['USD'],
      receiverEmails: ['seller@paypalsandbox.com'],
    });
    await admin('PUT', '/admin/customers/tc', { name: 'T', paypalEmails: ['buyer@paypalsandbox.com'] });
    const watch = new CreditWatch(stack.db.models, accountIdOf('tc', 'USD', 'sandbox'), 5);
    const base = sample('web_accept_completed_ipn_simulator_01');
    const tag = Date.now().toString(36).toUpperCase();
    let last = { txnId: '', t0: 0, wall: 0, credit: 0 };
    const lat: number[] = [];
    const posted: Array<{ txnId: string; wall: number }> = [];
    const conc = Number(process.argv[3] ?? 1);
    const cpu0 = cpuByProcess();
    counting = true;
    const tStart = nowMs();
    let next = 0;
    const one = async (i: number) => {
      const txnId = `T${tag}${i}`;
      const raw = withField(base, 'txn_id', txnId);
      stack.sim.registerMessage(raw);
      const seen = watch.credited(txnId, 30_000);
      const wall = Date.now();
      const t0 = nowMs();
      const res = await fetch(`${stack.baseUrl}/ipn/bench`, {
        method: 'POST',
        body: raw,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      if (res.status !== 200) throw new Error(`POST ${res.status}`);
      const credit = await seen;
      lat.push(credit - t0);
      posted.push({ txnId, wall });
      last = { txnId, t0, wall, credit };
    };
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (next < n) await one(next++);
      }),
    );
    const wallS = (nowMs() - tStart) / 1000;
    const cpu1 = cpuByProcess();
    counting = false;
    console.log(`${n} payments at concurrency ${conc}: ${(n / wallS).toFixed(2)}/s`);
    for (const [name, ticks] of cpu1) {
      const d = (ticks - (cpu0.get(name) ?? 0)) * 10; // clock ticks of 10 ms
      if (d > 0) console.log(`  cpu ${name.padEnd(16)} ${(d / n).toFixed(1)} ms per payment`);
    }
    const total = [...commands.values()].reduce((a, b) => a + b, 0);
    console.log(`database commands per payment: ${(total / n).toFixed(1)} (credit watch's polls included)`);
    for (const [k, c] of [...commands].sort((a, b) => b[1] - a[1]))
      console.log(`  ${(c / n).toFixed(2).padStart(6)}  ${k}`);
    lat.sort((a, b) => a - b);
    console.log(
      `latency POST->credit over ${n}: p50 ${lat[Math.floor(n / 2)]!.toFixed(0)} ms, ` +
        `min ${lat[0]!.toFixed(0)}, max ${lat[n - 1]!.toFixed(0)}`,
    );
    await printPhases(stack, posted.slice(-Math.min(40, posted.length)));
    const ids: string[] = [];
    for await (const wf of stack.client.workflow.list({ query: `PaypalTxnId = '${last.txnId}'` }))
      ids.push(wf.workflowId);
    ids.push(`payment:bench:${last.txnId}`);
    const rows: Array<[number, string]> = [
      [0, 'POST sent'],
      [last.credit - last.t0, 'credit seen by poll (5 ms)'],
    ];
    for (const id of [...new Set(ids)]) {
      const h = await stack.client.workflow.getHandle(id).fetchHistory();
      for (const e of h.events ?? []) {
        const t = Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
        const type = Object.keys(e).find((k) => k.endsWith('Attributes') && (e as any)[k]) ?? '?';
        rows.push([
          t - last.wall,
          `${id.slice(0, 40).padEnd(40)} ${type.replace('EventAttributes', '')}${detailOf(e)}`,
        ]);
      }
    }
    rows.sort((a, b) => a[0] - b[0]);
    for (const [t, what] of rows) console.log(`${String(Math.round(t)).padStart(6)} ms  ${what}`);
    await watch.stop();
  } finally {
    await stack.close();
    await temporal?.stop?.();
    await mongo?.stop?.();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
