import mongoose from 'mongoose';
import type { Models } from '../src/shared/db/models';
import { accountIdOf } from '../src/shared/ledger';
import { waitFor, withFields } from '../test/support/stack';

type Doc = Record<string, unknown>;
const { ObjectId } = mongoose.mongo;

/** The documents one real, credited payment left behind; the preload copies their shapes. */
export interface PaymentTemplate {
  txnId: string;
  customerId: string;
  message: Doc;
  payment: Doc;
  entry: Doc;
  balance: Doc;
  customer: Doc;
}

/**
 * Reads what the service stored for a payment it credited (raw documents, exactly as stored),
 * once it stored all of it: the payment's state and the balance are saved just after the entry.
 */
export async function captureTemplate(
  models: Models,
  integrationId: string,
  txnId: string,
  entryId: string,
): Promise<PaymentTemplate> {
  let found: Record<string, Doc | null> = {};
  const template = await waitFor(
    `the documents of credited payment ${integrationId}/${txnId}`,
    async () => {
      const entry = await models.LedgerEntry.collection.findOne({ _id: entryId as never });
      const message = await models.IpnMessage.collection.findOne({ integrationId, txnId });
      const payment = await models.Payment.collection.findOne({ _id: `${integrationId}:${txnId}` as never });
      const balance = entry && (await models.Balance.collection.findOne({ _id: entry.accountId }));
      const customer = entry && (await models.Customer.collection.findOne({ _id: entry.customerId }));
      found = { entry, message, payment, balance, customer };
      if (!entry || !message || !payment || !balance || !customer || payment.creditedMinor !== entry.amountMinor)
        return undefined;
      return { txnId, customerId: entry.customerId as string, message, payment, entry, balance, customer };
    },
    30_000,
  ).catch((err: Error) => {
    throw new Error(
      `${err.message}; found ${JSON.stringify(Object.fromEntries(Object.entries(found).map(([k, v]) => [k, !!v])))}`,
    );
  });
  return template;
}

/** Copies `value`, replacing every occurrence of each key of `swap` inside strings; ids, dates, binaries stay. */
function rewrite<T>(value: T, swap: Array<[string, string]>): T {
  if (typeof value === 'string') return swap.reduce((s, [from, to]) => s.split(from).join(to), value as string) as T;
  if (Array.isArray(value)) return value.map((v) => rewrite(v, swap)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v, swap)])) as T;
  }
  return value;
}

/**
 * Writes `count` IPNs as the service would have left them after crediting each: the stored
 * message (raw body padded to ~1.5 KB), its payment, its ledger entry, spread over customers of
 * `perCustomer` payments each, with each account's balance at the head of its chain. Direct
 * insertMany in batches: the point is a big store, not the path that filled it.
 */
export async function preload(
  models: Models,
  t: PaymentTemplate,
  baseRaw: Buffer,
  count: number,
  opts: { perCustomer?: number; batch?: number; onProgress?: (done: number) => void } = {},
): Promise<void> {
  const perCustomer = opts.perCustomer ?? 100;
  const batch = opts.batch ?? 500;
  const amount = t.entry.amountMinor as number;
  const currency = t.entry.currency as string;
  const oldMsgId = String(t.message._id);
  const oldAccount = t.entry.accountId as string;
  const pad = 'x'.repeat(Math.max(0, 1500 - baseRaw.length - 40));
  const run = new ObjectId().toHexString().slice(-6);
  const customerOf = (i: number) => `pre${run}-c${Math.floor(i / perCustomer)}`;

  for (let from = 0; from < count; from += batch) {
    const messages: Doc[] = [];
    const payments: Doc[] = [];
    const entries: Doc[] = [];
    const balances: Doc[] = [];
    const customers: Doc[] = [];
    for (let i = from; i < Math.min(count, from + batch); i++) {
      const txnId = `PRE${run}X${i}`;
      const customerId = customerOf(i);
      const accountId = accountIdOf(customerId, currency, 'sandbox'); // the template is a sandbox payment
      const seq = (i % perCustomer) + 1;
      const msgId = new ObjectId();
      const swap: Array<[string, string]> = [
        [t.txnId, txnId],
        [oldMsgId, msgId.toHexString()],
        [oldAccount, accountId],
        [t.customerId, customerId],
      ];
      messages.push({
        ...rewrite(t.message, swap),
        _id: msgId,
        raw: withFields(baseRaw, { txn_id: txnId, memo: pad }),
      });
      payments.push(rewrite(t.payment, swap));
      entries.push({ ...rewrite(t.entry, swap), _id: `${accountId}:${seq}`, seq, balanceAfterMinor: seq * amount });
      const last = i === count - 1 || seq === perCustomer;
      if (last) {
        balances.push({ ...rewrite(t.balance, swap), balanceMinor: seq * amount, seq });
        customers.push({
          ...rewrite(t.customer, swap),
          _id: customerId,
          name: `Preloaded ${customerId}`,
          paypalEmails: [],
        });
      }
    }
    await models.IpnMessage.collection.insertMany(messages, { ordered: false });
    await models.Payment.collection.insertMany(payments, { ordered: false });
    await models.LedgerEntry.collection.insertMany(entries, { ordered: false });
    if (balances.length > 0) await models.Balance.collection.insertMany(balances, { ordered: false });
    if (customers.length > 0) await models.Customer.collection.insertMany(customers, { ordered: false });
    opts.onProgress?.(Math.min(count, from + batch));
  }
}
