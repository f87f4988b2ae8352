/**
 * Compares the embedded store backends (FerretDB on SQLite, FerretDB on PostgreSQL) on what the
 * product does: `_id` point reads, inserts and updates, insert-or-duplicate-key claims, concurrent
 * writers, and an unindexed count (admin queries), on an empty store and on one preloaded with N
 * ipn_messages-shaped documents. Prints a table; asserts nothing.
 *
 *   npx tsx bench/store-backends.ts [N=100000] [backends=sqlite,postgres]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { startMongoServer, type DbBackend } from '../tools/dev/services/mongo-server';

type Doc = Record<string, unknown> & { _id: string };
type Stats = { p50: number; p99: number; n: number; unit: 'ms' | 'ops/s' };
type Row = { op: string; empty?: Stats; loaded?: Stats };

const SAMPLES = 300;
/** An operation that scans the collection gets fewer samples, so a slow backend still finishes. */
const OP_BUDGET_MS = 15_000;
const WRITERS = 4;
const WRITERS_MS = 5_000;
const RAW = crypto.randomBytes(1100).toString('base64'); // ~1.5 KB, like a stored IPN body

let seq = 0;
const errors = new Map<string, number>();

function ipnDoc(id: string): Doc {
  const txnId = `TXN${id}`;
  return {
    _id: id,
    integrationId: 'shop',
    receivedAt: new Date(),
    raw: Buffer.from(RAW),
    contentType: 'application/x-www-form-urlencoded',
    remoteAddress: '173.0.82.126',
    charset: 'windows-1252',
    txnType: 'web_accept',
    txnId,
    paymentStatus: seq % 50 === 0 ? 'Refunded' : 'Completed',
    testIpn: true,
    resend: false,
    state: 'received',
    flags: [],
  };
}
const nextId = (tag: string) => `${tag}-${process.pid}-${++seq}`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: samples.length, unit: 'ms' };
}
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}
/** Up to `max` timings of fn(0), fn(1)..., stopping early (after at least 5) once the budget is spent. */
async function sample(max: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const deadline = Date.now() + OP_BUDGET_MS;
  const out: number[] = [];
  for (let i = 0; i < max && (i < 5 || Date.now() < deadline); i++) out.push(await timed(() => fn(i)));
  return out;
}
function noteError(op: string, err: unknown): void {
  const e = err as { code?: unknown; codeName?: unknown; message?: string };
  const key =
    `${op}: code ${String(e.code)} ${String(e.codeName ?? '')} ` +
    `${(e.message ?? String(err)).split('\n')[0]!.slice(0, 100)}`;
  errors.set(key, (errors.get(key) ?? 0) + 1);
}

/** Each measurement on its own documents, so the phases do not warm each other's rows. */
async function measure(db: mongoose.mongo.Db): Promise<Map<string, Stats>> {
  const ipn = db.collection<Doc>('ipn_messages');
  const claims = db.collection<{ _id: string }>('ipn_claims');
  const out = new Map<string, Stats>();

  const inserted: string[] = [];
  out.set(
    'insert',
    stats(
      await sample(SAMPLES, async () => {
        const doc = ipnDoc(nextId('ins'));
        await ipn.insertOne(doc);
        inserted.push(doc._id);
      }),
    ),
  );

  out.set(
    '_id point read',
    stats(
      await sample(inserted.length, async (i) => {
        if (!(await ipn.findOne({ _id: inserted[i]! }))) throw new Error(`${inserted[i]} not found`);
      }),
    ),
  );

  out.set(
    '_id update',
    stats(
      await sample(inserted.length, async (i) => {
        const id = inserted[i]!;
        const res = await ipn.updateOne(
          { _id: id },
          { $set: { state: 'dispatched', workflowId: `wf-${id}`, dispatchedAt: new Date() } },
        );
        if (res.matchedCount !== 1) throw new Error(`${id}: matched ${res.matchedCount}`);
      }),
    ),
  );

  // Every other claim repeats the previous key: the duplicate-key answer is the hot path of a resend.
  let duplicates = 0;
  const claim = await sample(SAMPLES, async (i) => {
    const id = i % 2 === 1 ? `claim-${process.pid}-${seq}` : `claim-${process.pid}-${++seq}`;
    try {
      await claims.insertOne({ _id: id });
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
      duplicates++;
    }
  });
  if (duplicates !== Math.floor(claim.length / 2))
    throw new Error(`claims: ${duplicates} duplicate-key answers in ${claim.length}`);
  out.set('claim insert (50% dup key)', stats(claim));

  let writes = 0;
  const deadline = Date.now() + WRITERS_MS;
  const writer = async () => {
    while (Date.now() < deadline) {
      try {
        const id = nextId('cw');
        await ipn.insertOne(ipnDoc(id));
        await ipn.updateOne({ _id: id }, { $set: { state: 'dispatched' } });
        writes += 2;
      } catch (err) {
        noteError(`${WRITERS} writers`, err);
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: WRITERS }, writer));
  const throughput = (writes * 1000) / (Date.now() - started);
  out.set(`${WRITERS} writers (insert+update)`, { p50: throughput, p99: throughput, n: writes, unit: 'ops/s' });

  out.set('unindexed count', stats(await sample(3, () => ipn.countDocuments({ paymentStatus: 'Refunded' }))));
  return out;
}

async function preload(db: mongoose.mongo.Db, n: number): Promise<number> {
  const ipn = db.collection<Doc>('ipn_messages');
  const start = Date.now();
  for (let done = 0; done < n;) {
    const batch = Array.from({ length: Math.min(1000, n - done) }, () => ipnDoc(nextId('pre')));
    await ipn.insertMany(batch, { ordered: false });
    done += batch.length;
  }
  return (Date.now() - start) / 1000;
}

function duSync(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    try {
      total += entry.isDirectory() ? duSync(p) : fs.statSync(p).size;
    } catch {
      // postgres may remove a temporary file while we walk
    }
  }
  return total;
}

async function bench(backend: DbBackend, n: number): Promise<{ rows: Row[]; notes: string[] }> {
  const env: NodeJS.ProcessEnv = { ...process.env, IPNFLOW_DB_BACKEND: backend };
  delete env.MONGODB_URI;
  const mongo = await startMongoServer({
    env,
    logFile: path.join(os.tmpdir(), `ipnflow-bench-${backend}-${process.pid}.log`),
  });
  const client = new mongoose.mongo.MongoClient(mongo.uri);
  try {
    const db = client.db('bench');
    // The product's own indexes on ipn_messages, so writes pay what they pay in production.
    await db
      .collection('ipn_messages')
      .createIndexes([{ key: { state: 1, receivedAt: 1 } }, { key: { integrationId: 1, txnId: 1 } }]);
    const empty = await measure(db);
    const loadSeconds = await preload(db, n);
    const loaded = await measure(db);
    const rows = [...empty.keys()].map((op) => ({ op, empty: empty.get(op), loaded: loaded.get(op) }));
    const notes = [
      `preload of ${n} docs: ${loadSeconds.toFixed(1)} s (${Math.round(n / loadSeconds)} ` +
        `docs/s), store ${(duSync(mongo.dataDir) / 2 ** 20).toFixed(0)} MiB`,
    ];
    return { rows, notes };
  } finally {
    await client.close();
    await mongo.stop();
  }
}

const fmt = (s?: Stats) => {
  if (!s) return '-';
  if (s.unit === 'ops/s') return `${s.p50.toFixed(s.p50 < 10 ? 1 : 0)} ops/s`;
  return `${s.p50.toFixed(2)} / ${s.p99.toFixed(2)}${s.n < SAMPLES ? ` (n=${s.n})` : ''}`;
};

async function main() {
  const n = Number(process.argv[2] ?? 100_000);
  const backends = (process.argv[3] ?? 'sqlite,postgres').split(',') as DbBackend[];
  console.log(`store backends, N=${n}, ${SAMPLES} samples per op, ${os.cpus().length} CPUs; times p50 / p99 in ms`);
  for (const backend of backends) {
    const { rows, notes } = await bench(backend, n);
    console.log(`\n${backend}: ${notes.join('; ')}`);
    console.log(
      `| ${'operation'.padEnd(28)} | ${'empty p50 / p99'.padEnd(17)} | ${`N=${n} p50 / p99`.padEnd(26)} | p50 ratio |`,
    );
    console.log(`|${'-'.repeat(30)}|${'-'.repeat(19)}|${'-'.repeat(28)}|-----------|`);
    for (const r of rows) {
      const ratio = r.empty && r.loaded ? (r.loaded.p50 / r.empty.p50).toFixed(2) : '-';
      console.log(
        `| ${r.op.padEnd(28)} | ${fmt(r.empty).padEnd(17)} | ${fmt(r.loaded).padEnd(26)} | ${ratio.padStart(9)} |`,
      );
    }
  }
  console.log(
    errors.size ? `\nerrors seen:\n${[...errors].map(([k, v]) => `  ${v} x ${k}`).join('\n')}` : '\nno errors seen',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
