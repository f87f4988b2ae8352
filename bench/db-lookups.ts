/**
 * `npx tsx bench/db-lookups.ts`: what one `_id` lookup, update and insert cost the embedded store
 * (FerretDB and PostgreSQL CPU per operation, from /proc), in a small collection and then in one
 * ten times larger. An `_id` lookup must cost the same whatever the size: the large/small ratio
 * printed for each operation should stay near 1.0×.
 */
import fs from 'node:fs';
import mongoose from 'mongoose';
import { startMongoServer } from '../tools/dev/services/mongo-server';

const OPS = 3_000;
const CONCURRENCY = 20;
const SIZES = [5_000, 50_000];

/** CPU clock ticks (10 ms) of the store's processes, by kind. */
function storeTicks(): { ferretdb: number; postgres: number } {
  const t = { ferretdb: 0, postgres: 0 };
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const kind = name.startsWith('ferretdb') ? 'ferretdb' : name.startsWith('postgres') ? 'postgres' : undefined;
      if (kind) t[kind] += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return t;
}

async function measure(op: (i: number) => Promise<unknown>): Promise<{ ferretdb: number; postgres: number }> {
  const before = storeTicks();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < OPS) await op(next++);
    }),
  );
  const after = storeTicks();
  const perOp = (k: 'ferretdb' | 'postgres') => ((after[k] - before[k]) * 10) / OPS;
  return { ferretdb: perOp('ferretdb'), postgres: perOp('postgres') };
}

async function main(): Promise<void> {
  const server = await startMongoServer({});
  const client = await new mongoose.mongo.MongoClient(server.uri).connect();
  try {
    const raw = Buffer.alloc(900, 97);
    const rows: Array<[string, number, { ferretdb: number; postgres: number }]> = [];
    for (const size of SIZES) {
      const col = client.db('lookups').collection<{ _id: string }>(`docs_${size}`);
      for (let k = 0; k < size; k += 1_000)
        await col.insertMany(Array.from({ length: 1_000 }, (_, i) => ({ _id: `acc:${k + i}`, raw, state: 'x' })));
      const id = (i: number) => `acc:${(i * 7919) % size}`;
      rows.push(['find by _id', size, await measure((i) => col.findOne({ _id: id(i) }))]);
      rows.push([
        'update by _id',
        size,
        await measure((i) => col.updateOne({ _id: id(i) }, { $set: { state: `s${i}` } })),
      ]);
      rows.push(['insert', size, await measure((i) => col.insertOne({ _id: `new:${i}`, raw, state: 'n' } as never))]);
    }
    const total = (c: { ferretdb: number; postgres: number }) => c.ferretdb + c.postgres;
    console.log(`store CPU per operation (${OPS} operations at concurrency ${CONCURRENCY}; ${server.kind}):`);
    for (const [name, size, cost] of rows) {
      const small = rows.find(([n, s]) => n === name && s === SIZES[0])![2];
      const ratio = size === SIZES[0] ? '' : `  ${(total(cost) / total(small)).toFixed(2)}× the ${SIZES[0]}-doc cost`;
      console.log(
        `  ${name.padEnd(14)} ${String(size).padStart(6)} docs: ferretdb ${cost.ferretdb.toFixed(2)} ms, ` +
          `postgres ${cost.postgres.toFixed(2)} ms${ratio}`,
      );
    }
  } finally {
    await client.close();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
