import mongoose, { Schema, type Connection, type InferSchemaType } from 'mongoose';

/**
 * One integration = one PayPal business account connection. Field validation lives in the
 * admin API's zod schema; this schema only fixes storage shape.
 */
const integrationSchema = new Schema(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    mode: { type: String, enum: ['live', 'sandbox'], required: true },
    ipnEnabled: { type: Boolean, required: true },
    verifyTransaction: { type: Boolean, required: true },
    allowedTxnTypes: { type: [String], default: [] },
    allowedCurrencies: { type: [String], default: [] },
    receiverEmails: { type: [String], default: [] },
    receiverIds: { type: [String], default: [] },
    feePolicy: { type: String, enum: ['gross', 'net'], required: true },
    matchBy: { type: [String], default: ['custom', 'email'] },
  },
  { timestamps: true, versionKey: false },
);

const customerSchema = new Schema(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    paypalEmails: { type: [String], default: [] },
  },
  { timestamps: true, versionKey: false },
);

/** An email belongs to at most one customer: the claim's _id is the lowercased email. */
const emailClaimSchema = new Schema({ _id: { type: String, required: true }, customerId: { type: String, required: true } }, { versionKey: false });

/** Every delivery PayPal made, raw bytes first; also the outbox the relay drains. */
const ipnMessageSchema = new Schema(
  {
    integrationId: { type: String, required: true },
    receivedAt: { type: Date, required: true },
    raw: { type: Buffer, required: true },
    contentType: String,
    remoteAddress: String,
    charset: String,
    decodeError: String,
    txnType: String,
    txnId: String,
    parentTxnId: String,
    paymentStatus: String,
    testIpn: Boolean,
    resend: Boolean,
    /** received → dispatched → one of the outcomes the workflow records. */
    state: { type: String, required: true },
    flags: { type: [String], default: [] },
    outcome: String,
    workflowId: String,
    dispatchedAt: Date,
    duplicateOf: String,
  },
  { versionKey: false },
);
// Present, but possibly empty: mongoose's `required` refuses an empty Buffer, and a body that
// cannot be stored is answered 503 and resent forever. `required: true` above keeps the inferred
// type; mongoose documents a function here, its typings admit only a boolean.
const rawIsMissing = function (this: { raw?: unknown }) {
  return !Buffer.isBuffer(this.raw);
};
ipnMessageSchema.path('raw').required(false).required(rawIsMissing as unknown as boolean, 'raw bytes are required');
ipnMessageSchema.index({ state: 1, receivedAt: 1 });
ipnMessageSchema.index({ integrationId: 1, txnId: 1 });

/** Current state of one PayPal transaction as its lifecycle workflow sees it (money lives in the ledger). */
const paymentSchema = new Schema(
  {
    _id: { type: String, required: true },
    integrationId: { type: String, required: true },
    txnId: { type: String, required: true },
    state: { type: String, required: true },
    paymentStatus: String,
    customerId: String,
    currency: String,
    grossMinor: Number,
    creditedMinor: { type: Number, default: 0 },
    debitedMinor: { type: Number, default: 0 },
    holdReason: String,
    flags: { type: [String], default: [] },
    payerEmail: String,
    needsOperator: { type: Boolean, default: false },
    /** The lifecycle workflow's whole state, for resuming in a later run. */
    snapshot: Schema.Types.Mixed,
  },
  { timestamps: true, versionKey: false },
);
paymentSchema.index({ needsOperator: 1 });
paymentSchema.index({ txnId: 1 });

const ledgerEntrySchema = new Schema(
  {
    _id: { type: String, required: true },
    accountId: { type: String, required: true },
    customerId: { type: String, required: true },
    currency: { type: String, required: true },
    seq: { type: Number, required: true },
    amountMinor: { type: Number, required: true },
    balanceAfterMinor: { type: Number, required: true },
    kind: { type: String, enum: ['credit', 'debit'], required: true },
    reason: { type: String, required: true },
    idempotencyKey: { type: String, required: true },
    integrationId: String,
    txnId: String,
    parentTxnId: String,
    messageId: String,
    operator: String,
    note: String,
    createdAt: { type: Date, required: true },
  },
  { versionKey: false },
);
ledgerEntrySchema.index({ idempotencyKey: 1 }, { unique: true });
ledgerEntrySchema.index({ accountId: 1, seq: 1 }, { unique: true });
ledgerEntrySchema.index({ customerId: 1, createdAt: 1 });

const balanceSchema = new Schema(
  {
    _id: { type: String, required: true },
    customerId: { type: String, required: true },
    currency: { type: String, required: true },
    balanceMinor: { type: Number, required: true },
    seq: { type: Number, required: true },
  },
  { timestamps: true, versionKey: false },
);
balanceSchema.index({ customerId: 1 });

const auditEventSchema = new Schema(
  {
    at: { type: Date, required: true },
    actor: { type: String, required: true },
    action: { type: String, required: true },
    reason: String,
    integrationId: String,
    txnId: String,
    customerId: String,
    details: Schema.Types.Mixed,
  },
  { versionKey: false },
);
auditEventSchema.index({ txnId: 1, at: 1 });

export type IntegrationDoc = InferSchemaType<typeof integrationSchema>;
export type CustomerDoc = InferSchemaType<typeof customerSchema>;
export type IpnMessageDoc = InferSchemaType<typeof ipnMessageSchema> & { _id: mongoose.Types.ObjectId };
export type PaymentDoc = InferSchemaType<typeof paymentSchema>;
export type LedgerEntryDoc = InferSchemaType<typeof ledgerEntrySchema>;
export type BalanceDoc = InferSchemaType<typeof balanceSchema>;

/** Models bound to one connection, so tests can give each file its own database. */
export function bindModels(conn: Connection) {
  return {
    Integration: conn.model('Integration', integrationSchema, 'integrations'),
    Customer: conn.model('Customer', customerSchema, 'customers'),
    EmailClaim: conn.model('EmailClaim', emailClaimSchema, 'customer_email_claims'),
    IpnMessage: conn.model('IpnMessage', ipnMessageSchema, 'ipn_messages'),
    Payment: conn.model('Payment', paymentSchema, 'payments'),
    LedgerEntry: conn.model('LedgerEntry', ledgerEntrySchema, 'ledger_entries'),
    Balance: conn.model('Balance', balanceSchema, 'balances'),
    AuditEvent: conn.model('AuditEvent', auditEventSchema, 'audit_events'),
  };
}

export type Models = ReturnType<typeof bindModels>;
