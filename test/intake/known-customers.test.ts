import crypto from 'node:crypto';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import { customerExists } from '../../src/customers/known';
import { findCustomerForPayer, saveCustomer } from '../../src/customers/store';

/**
 * The customer a payment names in `custom`, looked up for every payment (src/customers/known.ts): read
 * once per customer and process, since nothing deletes a customer; one not found is read again.
 */
let db: Database;
/** A second handle on the same database: another process. */
let other: Database;

beforeAll(async () => {
  db = await connectDatabase(process.env.MONGODB_URI!, `test-known-customers-${crypto.randomBytes(3).toString('hex')}`);
  other = await connectDatabase(process.env.MONGODB_URI!, db.connection.name);
  await saveCustomer(db.models, 'c1', { name: 'C1', paypalEmails: ['c1@example.com'] }, 'test');
});
afterAll(async () => {
  await db.connection.dropDatabase().catch(() => {});
  await other.close();
  await db.close();
});

const spyReads = (d: Database) => jest.spyOn(d.models.Customer.collection, 'findOne');

test('a customer found once is not read again by this process, whoever asks', async () => {
  const reads = spyReads(db);
  try {
    expect(await customerExists(db.models, 'c1')).toBe(true);
    const payer = { custom: 'c1', payerEmail: null };
    expect(await findCustomerForPayer(db.models, 'shop', payer, ['custom', 'email'])).toBe('c1');
    expect(await customerExists(db.models, 'c1')).toBe(true);
    expect(reads).toHaveBeenCalledTimes(1);
  } finally {
    reads.mockRestore();
  }
});

test('one not found is read again: a customer created a moment later, even by another process, is found', async () => {
  const reads = spyReads(other);
  try {
    expect(await customerExists(other.models, 'c2')).toBe(false);
    await saveCustomer(db.models, 'c2', { name: 'C2' }, 'test');
    expect(await customerExists(other.models, 'c2')).toBe(true);
    expect(await customerExists(other.models, 'c2')).toBe(true);
    expect(reads).toHaveBeenCalledTimes(2);
  } finally {
    reads.mockRestore();
  }
});

test('an id that names no customer matches none; the payer email still may', async () => {
  const payer = { custom: 'nobody', payerEmail: 'C1@example.com' };
  expect(await findCustomerForPayer(db.models, 'shop', payer, ['custom', 'email'])).toBe('c1');
  expect(await findCustomerForPayer(db.models, 'shop', { ...payer, payerEmail: null }, ['custom'])).toBeNull();
});
