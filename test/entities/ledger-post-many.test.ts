import crypto from 'node:crypto';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import { Ledger, LedgerError, accountIdOf, type AccountHead, type PostingRequest } from '../../src/shared/ledger';

/**
 * `postMany` over hundreds of accounts (a large batch's reservations): its accounts go in groups
 * side by side, each group's entries layer after layer. A chain another writer moved meanwhile, or
 * a debit its balance cannot cover, takes the careful path; everything else posts once, exactly.
 */
let db: Database;
let ledger: Ledger;

beforeAll(async () => {
  db = await connectDatabase(process.env.MONGODB_URI!, `test-postmany-${crypto.randomBytes(3).toString('hex')}`);
  await db.models.LedgerEntry.init();
  ledger = new Ledger(db.models);
});
afterAll(async () => {
  await db.connection.dropDatabase().catch(() => {});
  await db.close();
});

const ACCOUNTS = 320;
const customer = (k: number) => `pm${k}`;
const credit = (k: number, n: number, amountMinor: number): PostingRequest => ({
  customerId: customer(k),
  currency: 'USD',
  mode: 'sandbox',
  amountMinor,
  idempotencyKey: `pm:${k}:${n}`,
  reason: 'manual',
});

test('every account chained exactly, a moved chain and an uncovered debit answered by the careful path', async () => {
  // Heads read now, handed over stale: account 7 moves before postMany writes (another writer).
  const heads = new Map<string, AccountHead>();
  for (const k of [7, 150, 301]) {
    heads.set(accountIdOf(customer(k), 'USD', 'sandbox'), await ledger.head(customer(k), 'USD', 'sandbox'));
  }
  await ledger.post({ ...credit(7, 0, 1_000), idempotencyKey: 'elsewhere:7' });
  const reqs: PostingRequest[] = [];
  for (let n = 0; n < 3; n++) for (let k = 0; k < ACCOUNTS; k++) reqs.push(credit(k, n, 100 + n));
  // Account 150 is debited more than it holds, on a debit that must stay covered.
  const uncovered = reqs.push({ ...credit(150, 3, -1_000), mustStayCovered: true }) - 1;
  reqs.push(credit(150, 4, 5));

  const results = await ledger.postMany(reqs, heads);
  expect(results[uncovered]).toBeInstanceOf(LedgerError);
  expect((results[uncovered] as LedgerError).message).toMatch(/^insufficient balance/);
  const applied = results.filter((r) => !(r instanceof LedgerError) && r.applied);
  expect(applied).toHaveLength(reqs.length - 1);
  expect(results.find((r, i) => i !== uncovered && (r instanceof LedgerError || !r.applied))).toBeUndefined();

  const balance = async (k: number) => (await ledger.balances(customer(k), 'sandbox'))[0];
  expect(await balance(0)).toEqual({ currency: 'USD', balanceMinor: 303, seq: 3 });
  expect(await balance(ACCOUNTS - 1)).toEqual({ currency: 'USD', balanceMinor: 303, seq: 3 });
  expect(await balance(7)).toEqual({ currency: 'USD', balanceMinor: 1_303, seq: 4 });
  expect(await balance(150)).toEqual({ currency: 'USD', balanceMinor: 308, seq: 4 });
  expect(await db.models.LedgerKey.countDocuments({ _id: { $regex: /^pm:/ } })).toBe(reqs.length - 1);
  expect((await ledger.check()).problems).toEqual([]);

  // Retried whole (a caller that lost the answer): the same answers, nothing posted twice.
  const again = await ledger.postMany(reqs);
  expect(again[uncovered]).toBeInstanceOf(LedgerError);
  expect(again.filter((r) => !(r instanceof LedgerError) && r.applied)).toHaveLength(0);
  expect(await db.models.LedgerEntry.countDocuments({})).toBe(reqs.length - 1 + 1);
  expect(await balance(150)).toEqual({ currency: 'USD', balanceMinor: 308, seq: 4 });
});
