import type { Models } from '../shared/db/models';
import { Ledger, LedgerError, type AccountHead } from '../shared/ledger';
import { describeMoney } from '../shared/money';
import { mongoItemStore } from '../../activities/masspay';
import { ItemsEngine } from './items-engine';
import { reservationPosting } from './rules';
import type { PayoutBatchState, PayoutItem } from './state';

/** A payee whose balance did not cover their items when the batch was created. */
export interface ShortPayee {
  customerId: string;
  /** What their items of this batch asked for, in minor units of the batch's currency. */
  askedMinor: number;
}

export type CreationReservation = { ok: true } | { ok: false; short: ShortPayee[] };

/**
 * Creating a batch answers only once its reservations are posted: every item's reservation goes into
 * the ledger here, before the answer, in a few bulk writes (the ledger's per-account chain refuses a
 * debit the balance no longer covers, so two batches created at once cannot both take one balance).
 * If any is refused, that item's claim is withdrawn and the others are released under their usual
 * idempotent keys (the items are cancelled through the item rules, which release exactly the reserved
 * ones): nothing stays reserved.
 *
 * The items are stored claiming `reserved` before this runs (rewriting 15,000 documents after would
 * cost more than all the postings). A crash in between leaves a `created` batch that is not
 * `reserved`: its workflow's reserve step posts every item's reservation again under the same keys
 * (nothing twice) and sets each claim to what the ledger did, before anything else may touch an item.
 */
export async function reserveAtCreation(
  models: Models,
  items: PayoutItem[],
  by: { operator: string; now: string; heads?: ReadonlyMap<string, AccountHead> },
): Promise<CreationReservation> {
  const batchId = items[0]?.batchId;
  if (!batchId) return { ok: true };
  const results = await new Ledger(models).postMany(items.map(reservationPosting), by.heads);
  const refused = items.filter((_, i) => results[i] instanceof LedgerError);
  // The items were stored claiming their reservation: nothing more to write when every one is posted.
  if (refused.length === 0) return { ok: true };
  const store = mongoItemStore(models);
  await store.save(refused.map((i) => ({ item: { ...i, reserved: false }, was: null })));
  await new ItemsEngine(store).applyAll(batchId, 'Cancelled', { messageId: null, operator: by.operator }, by.now);
  const short = new Map<string, number>();
  for (const item of refused) short.set(item.customerId, (short.get(item.customerId) ?? 0) + item.amountMinor);
  return { ok: false, short: [...short].map(([customerId, askedMinor]) => ({ customerId, askedMinor })) };
}

/** The stored batch once its reservations are posted: what the workflow's reserve step would have said. */
export function reservedState(s: PayoutBatchState, now: string): PayoutBatchState {
  return {
    ...s,
    reserved: true,
    history: [
      ...s.history,
      {
        at: now,
        what: `reserved ${describeMoney(s.totalMinor, s.currency)} over ${s.itemCount} item(s) at creation`,
        messageId: null,
      },
    ],
  };
}

/** The stored batch refused at creation: cancelled, nothing reserved, the short payees named. */
export function refusedState(s: PayoutBatchState, short: ShortPayee[], now: string): PayoutBatchState {
  const names = short.map((p) => p.customerId).join(', ');
  return {
    ...s,
    state: 'cancelled',
    counts: { Cancelled: s.itemCount },
    history: [
      ...s.history,
      { at: now, what: `refused at creation: ${names} short; every reservation released`, messageId: null },
    ],
  };
}
