import { LRUCache } from 'lru-cache';
import type { Models } from '../shared/db/models';
import { perHandle } from '../shared/db/per-handle';

/** Customers remembered per process; a payment names one of its few thousand active customers at most. */
const KNOWN_CUSTOMERS = 100_000;
/** Per database handle: every reader in this process shares what it has seen. */
const knownOf = perHandle(() => new LRUCache<string, true>({ max: KNOWN_CUSTOMERS }));

/**
 * Whether a customer exists, read once per customer and process. Nothing deletes a customer (no route,
 * no job: their ledger entries and payments keep naming them), so one found exists for good, and a
 * payment naming its customer in `custom` reads no customer document after the first. One not found
 * is not remembered: a customer created a moment ago is found at once.
 */
export async function customerExists(models: Models, customerId: string): Promise<boolean> {
  const known = knownOf(models);
  if (known.has(customerId)) return true;
  // Through the driver: one _id, no document machinery.
  const found = await models.Customer.collection.findOne({ _id: customerId as never }, { projection: { _id: 1 } });
  if (found) known.set(customerId, true);
  return found !== null;
}
