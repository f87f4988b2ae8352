/**
 * The rules of a Mass Pay batch we send, as pure functions, in two layers:
 * - `decideItem`: one item and one thing said about it (a PayPal status, a batch-wide denial or
 *   cancellation, an operator's resolution) → the item's next state and the ledger postings.
 *   Items only move forward, so duplicates and any delivery order end in the same place.
 * - `decideBatch`: the batch and one input → its next state and effects, asking for facts (the
 *   result of applying a message to the items stored in MongoDB) by re-running, like decidePayment.
 *
 * Money: creating a batch reserves every item's amount (a debit of the payee, `payout_reserve`);
 * Completed settles it (no movement: the reserved money left with PayPal); any status that brings
 * the money back releases it (a credit, `payout_release`) exactly once. Keys are per batch + item.
 */
//
// The rules live in files along their seams; this module is their one door (workflows, activities
// and tests import from here): item rules and their postings, the batch's model, its pure functions,
// and the batch decider in layers (base → send → operator decisions → PayPal's word).
export * from './item-rules';
export * from './postings';
export * from './batch-model';
export * from './batch-rules';
export * from './batch-decider';
