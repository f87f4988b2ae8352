import { Schema, type Connection } from 'mongoose';

/**
 * One top-up: `_id` is its id (`tu_…`), every read by _id. What the buyer-facing pages and the admin
 * API show, flat, and the workflow's whole state in `snapshot`. No payer data is kept: PayPal's payer
 * id only, which the Express Checkout capture needs.
 */
const topupSchema = new Schema(
  {
    _id: { type: String, required: true },
    integrationId: { type: String, required: true },
    customerId: { type: String, required: true },
    api: { type: String, enum: ['orders', 'express'], required: true },
    mode: { type: String, enum: ['live', 'sandbox'], required: true },
    currency: { type: String, required: true },
    amountMinor: { type: Number, required: true },
    /** `creating` until PayPal answered the order's creation; then the workflow's phase. */
    phase: { type: String, required: true },
    paypalRef: String,
    approveUrl: String,
    /** The portal's pages (API top-ups); absent for the hosted page's. */
    returnUrl: String,
    cancelUrl: String,
    expiresAt: { type: Date, required: true },
    createdBy: { type: String, required: true },
    captureId: String,
    creditEntryId: String,
    snapshot: Schema.Types.Mixed,
  },
  { timestamps: true, versionKey: false },
);

/** /admin/held lists held top-ups. */
topupSchema.index({ phase: 1 });

export function bindTopupModels(conn: Connection) {
  return { Topup: conn.model('Topup', topupSchema, 'topups') };
}
