import { createMessageActivities } from '../../activities/messages';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import { createLogger } from '../../src/shared/logger';
import { storeIpn } from '../../src/messages/intake';
import { createTestStack, sample, waitFor, withField, type TestStack } from '../support/stack';

/**
 * Intake, dispatch, relay, message load and duplicate detection must be answered by _id, so their
 * cost does not grow with stored history. This records every command the service sends to the
 * message collections while real deliveries go through, then asks the server how it runs each.
 */
// Intake, dispatch, relay, message load, duplicates; then payment state, customer match, ledger post.
const HOT = [
  'ipn_messages',
  'ipn_outbox',
  'ipn_claims',
  'integrations',
  'payments',
  'customers',
  'customer_email_claims',
  'ledger_entries',
  'ledger_keys',
  'balances',
];
interface Call {
  coll: string;
  method: string;
  args: any[];
}
const calls: Call[] = [];

let stack: TestStack;
let probe: Database; // the test's own reads, kept out of `calls`
beforeAll(async () => {
  stack = await createTestStack('hot-path');
  const seller = 'seller@paypalsandbox.com';
  const shop = { name: 'Shop', mode: 'sandbox', allowedCurrencies: ['USD'], receiverEmails: [seller] };
  expect((await stack.admin('PUT', '/admin/integrations/shop', shop)).status).toBe(200);
  const customer = { name: 'C1', paypalEmails: ['buyer@paypalsandbox.com'] };
  expect((await stack.admin('PUT', '/admin/customers/c1', customer)).status).toBe(200);
  probe = await connectDatabase(stack.config.MONGODB_URI, stack.config.MONGODB_DB);
});
afterAll(async () => {
  await probe?.close();
  await stack?.close();
});

const settledAs = (raw: Buffer, state: string) =>
  waitFor(`message reaching ${state}`, async () => {
    const recent = await probe.models.IpnMessage.find({ integrationId: 'shop' }).sort({ _id: -1 }).limit(20).lean();
    return recent.find((m) => m.state === state && Buffer.from(m.raw.buffer).equals(raw));
  });

/** Every stage name in a MongoDB plan tree (classic or slot-based). */
function stages(plan: any): Array<{ stage: string; indexName?: string }> {
  if (!plan || typeof plan !== 'object') return [];
  const here = typeof plan.stage === 'string' ? [{ stage: plan.stage, indexName: plan.indexName }] : [];
  return [...here, ...Object.values(plan).flatMap((v) => (Array.isArray(v) ? v.flatMap(stages) : stages(v)))];
}

test(
  'every query the pipeline sends to the message ' + 'collections goes by _id, and the server answers it by key',
  async () => {
    const base = sample('web_accept_completed_ipn_simulator_01');
    const first = withField(base, 'txn_id', 'HOT1');
    const relayed = withField(base, 'txn_id', 'HOT2');
    for (const raw of [first, relayed]) stack.sim.registerMessage(raw);

    stack.db.connection.set('debug', (coll: string, method: string, ...args: any[]) => {
      if (HOT.includes(coll)) calls.push({ coll, method, args });
    });
    try {
      // Intake and immediate dispatch, then load (claiming HOT1:Completed)...
      expect((await stack.postIpn('shop', first)).status).toBe(200);
      await settledAs(first, 'applied:credited');
      // ...the same delivery again: its claim finds the first one's...
      expect((await stack.postIpn('shop', first)).status).toBe(200);
      expect((await settledAs(first, 'duplicate')).duplicateOf).toBeDefined();
      // ...and a message only the relay dispatches (stored with no immediate dispatch).
      await storeIpn(stack.db.models, { integrationId: 'shop', raw: relayed, ipnEnabled: true });
      await settledAs(relayed, 'applied:credited');
    } finally {
      stack.db.connection.set('debug', false);
    }

    // A bulk write is one command of several statements: each is judged as if sent alone.
    const statements = calls.flatMap((c): Call[] =>
      c.method === 'bulkWrite'
        ? (c.args[0] as Array<Record<string, { filter: unknown }>>).flatMap((op) =>
            Object.entries(op).map(([kind, { filter }]) => ({
              coll: c.coll,
              method: `bulkWrite.${kind}`,
              args: [filter],
            })),
          )
        : [c],
    );
    const seen = new Set(statements.map((c) => `${c.coll}.${c.method}`));
    for (const expected of [
      // The door's inserts and the dispatch's delete go gathered (src/shared/db/gathered.ts).
      'ipn_outbox.insertMany',
      'ipn_messages.insertMany',
      'ipn_messages.updateOne',
      'ipn_outbox.bulkWrite.deleteOne',
      'ipn_outbox.find',
      'ipn_messages.findOne',
      'ipn_claims.insertMany',
      'ipn_claims.findOne',
      'payments.findOne',
      // A new payment's document is inserted (gathered too), a known one's updated (activities/payments.ts).
      'payments.insertMany',
      'payments.updateOne',
      'customer_email_claims.findOne',
      'customers.findOne',
      // A first posting reads only the balance: the entry's unique keys judge the rest (src/shared/ledger.ts);
      // a lone posting's entry and key inserts go gathered.
      'balances.findOne',
      'ledger_entries.insertMany',
      'ledger_keys.insertMany',
      'balances.updateOne',
    ])
      expect([expected, seen.has(expected)]).toEqual([expected, true]);

    // Every filter is on _id alone: equality, or a range on the small outbox.
    const inserts = ['insertOne', 'insertMany', 'createIndex', 'createIndexes'];
    const queries = statements.filter((c) => !inserts.includes(c.method));
    const shapes = new Map<string, Call>();
    for (const c of queries) {
      const filter = c.args[0] as Record<string, unknown>;
      expect([c.coll, c.method, Object.keys(filter)]).toEqual([c.coll, c.method, ['_id']]);
      const ranged = typeof filter._id === 'object' && filter._id !== null && '$lt' in filter._id;
      if (ranged) expect(c.coll).toBe('ipn_outbox');
      shapes.set(`${c.coll}.${c.method}.${ranged}`, c);
    }

    // The server's own account of each (as a find with the same filter, sort and limit).
    const db = probe.connection.db!;
    const ferretdb = 'ferretdbVersion' in (await db.admin().command({ buildInfo: 1 }));
    for (const [shape, c] of shapes) {
      const options = (c.args[1] ?? {}) as { sort?: unknown; limit?: number };
      const find = {
        find: c.coll,
        filter: c.args[0],
        ...(options.sort ? { sort: options.sort } : {}),
        ...(options.limit ? { limit: options.limit } : {}),
      };
      const explained = await db.command({ explain: find, verbosity: 'queryPlanner' });
      const ranged = shape.endsWith('.true');
      if (ferretdb) {
        // FerretDB v1.24 (SQLite) evaluates an _id equality in SQL instead of decoding every
        // document; it pushes down nothing else, so a range stays a read of the small outbox.
        expect([shape, explained.filterPushdown]).toEqual([shape, !ranged]);
      } else {
        const plan = stages(explained.queryPlanner?.winningPlan);
        expect([shape, plan.some((s) => s.stage === 'COLLSCAN')]).toEqual([shape, false]);
        const idStages = ['IDHACK', 'EXPRESS_IXSCAN', 'CLUSTERED_IXSCAN', 'EXPRESS_CLUSTERED_IXSCAN'];
        const byId = plan.some((s) => idStages.includes(s.stage) || (s.stage === 'IXSCAN' && s.indexName === '_id_'));
        expect([shape, byId]).toEqual([shape, true]);
      }
    }
  },
);

test(
  'duplicate claims: the first delivery loaded claims ' +
    '(integration, txn, status); loading it again is no duplicate',
  async () => {
    const { db, client, config } = stack;
    const { loadMessage } = createMessageActivities({ db, client, config, logger: createLogger('silent') });
    const raw = withField(sample('web_accept_completed_ipn_simulator_01'), 'txn_id', 'HOT3');
    // Stored, taken out of the relay's reach, and loaded here as processIpn's first activity would.
    const a = await storeIpn(stack.db.models, { integrationId: 'shop', raw, ipnEnabled: true });
    const b = await storeIpn(stack.db.models, { integrationId: 'shop', raw, ipnEnabled: true });
    const refunded = withField(raw, 'payment_status', 'Refunded');
    const refund = await storeIpn(stack.db.models, { integrationId: 'shop', raw: refunded, ipnEnabled: true });
    await stack.db.models.IpnOutbox.deleteMany({ _id: { $in: [a._id, b._id, refund._id] } });
    expect((await loadMessage(a._id)).duplicateOf).toBeNull();
    expect((await loadMessage(a._id)).duplicateOf).toBeNull(); // an activity retry finds its own claim
    expect((await loadMessage(b._id)).duplicateOf).toBe(a._id);
    expect((await loadMessage(refund._id)).duplicateOf).toBeNull();
    const claim = await probe.models.IpnClaim.findById('shop:HOT3:Completed').lean();
    expect(claim).toEqual({ _id: 'shop:HOT3:Completed', messageId: a._id });
    expect((await probe.models.IpnMessage.findById(b._id).lean())!.duplicateOf).toBe(a._id);
  },
);
