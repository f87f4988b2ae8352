import { Schema, type Connection } from 'mongoose';

/** One Mass Pay batch we send: flat fields for the admin lists, the workflow's whole state in `snapshot`. */
const payoutBatchSchema = new Schema(
  {
    _id: { type: String, required: true },
    integrationId: { type: String, required: true },
    state: { type: String, required: true },
    currency: { type: String, required: true },
    itemCount: { type: Number, required: true },
    totalMinor: { type: Number, required: true },
    createdBy: { type: String, required: true },
    needsOperator: { type: Boolean, default: false },
    attention: { type: [String], default: [] },
    /** Open contradictions and releases awaiting a second operator: what /admin/held shows of the batch. */
    contradictions: { type: [Schema.Types.Mixed], default: [] },
    pendingReleases: { type: [Schema.Types.Mixed], default: [] },
    /** Calls to PayPal whose answer was lost and that nobody reconciled yet (chunk indexes). */
    uncertainChunks: { type: [Number], default: [] },
    snapshot: Schema.Types.Mixed,
    /**
     * The items' counts by state, kept as webhooks apply (so a pass need not count 15,000 items), and
     * the key of the last set that shifted them (a set decided again after a crash shifts nothing).
     * Absent: counted from the items at the next pass.
     */
    itemCounts: Schema.Types.Mixed,
    itemCountsKey: String,
  },
  { timestamps: true, versionKey: false },
);
payoutBatchSchema.index({ needsOperator: 1 });

/**
 * One item: `_id` is `<batchId>:<uniqueId>`, so a batch's items are one bounded _id range. `rev`
 * (absent until the first save) is raised by every save and guards the next (activities/item-cache.ts).
 */
const payoutItemSchema = new Schema(
  {
    _id: { type: String, required: true },
    batchId: { type: String, required: true },
    uniqueId: { type: String, required: true },
    index: { type: Number, required: true },
    state: { type: String, required: true },
  },
  { strict: false, versionKey: false },
);

/**
 * How an IPN finds its batch by _id: `u:<uniqueId>` (unique across all batches: inserting it is the
 * uniqueness check) and `t:<integrationId>:<masspay_txn_id>` once PayPal named the item's txn.
 */
const payoutRefSchema = new Schema(
  {
    _id: { type: String, required: true },
    batchId: { type: String, required: true },
    uniqueId: { type: String, required: true },
    integrationId: { type: String, required: true },
    mode: { type: String, required: true },
  },
  { versionKey: false },
);

export function bindPayoutModels(conn: Connection) {
  return {
    PayoutBatch: conn.model('PayoutBatch', payoutBatchSchema, 'payout_batches'),
    PayoutItem: conn.model('PayoutItem', payoutItemSchema, 'payout_items'),
    PayoutRef: conn.model('PayoutRef', payoutRefSchema, 'payout_refs'),
  };
}
