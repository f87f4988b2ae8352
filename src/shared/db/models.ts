import mongoose, { Schema, type Connection, type InferSchemaType } from 'mongoose';
import { bindPayoutModels } from '../../masspay/models';
import { bindWebhookModels } from '../../webhooks/models';
import { bindOperatorModels } from '../../operators/models';
import { MoneyModeSchema } from '../money-mode';
import { bindTopupModels } from '../../topups/models';

/**
 * One integration = one PayPal business account connection. Field validation lives in the
 * admin API's zod schema; this schema only fixes storage shape.
 */
const integrationSchema = new Schema(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    mode: { type: String, enum: MoneyModeSchema.options, required: true },
    ipnEnabled: { type: Boolean, required: true },
    verifyTransaction: { type: Boolean, required: true },
    allowedTxnTypes: { type: [String], default: [] },
    allowedCurrencies: { type: [String], default: [] },
    receiverEmails: { type: [String], default: [] },
    receiverIds: { type: [String], default: [] },
    feePolicy: { type: String, enum: ['gross', 'net'], required: true },
    matchBy: { type: [String], default: ['custom', 'email'] },
    nvpCredentialsEnv: String,
    payoutsRestEnv: String,
    payoutCaps: Schema.Types.Mixed,
    topups: Schema.Types.Mixed,
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
const emailClaimSchema = new Schema(
  { _id: { type: String, required: true }, customerId: { type: String, required: true } },
  { versionKey: false },
);

/** Every delivery PayPal made, raw bytes first. Hot paths read and write it by _id only. */
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
    /** received → dispatched → one of the outcomes the workflow records (messages/state.ts MessageState). */
    state: { type: String, required: true },
    flags: { type: [String], default: [] },
    outcome: String,
    /** Where it belongs (messages/classify.ts RouteSchema), decided once at intake from its bytes. */
    route: Schema.Types.Mixed,
    workflowId: String,
    dispatchedAt: Date,
    duplicateOf: String,
    /** The event derived after verifying this message: what its payment (or profile) may apply. */
    routedEvent: Schema.Types.Mixed,
    /** A Mass Pay IPN's items paid to us, each an event its payment entity may apply. */
    receivedEvents: Schema.Types.Mixed,
    /** When the current outcome was recorded: a settled message's retention counts from here. */
    outcomeAt: Date,
    /** Raw bytes emptied by the retention (RAW_BODY_RETENTION_DAYS); their length and digest stay. */
    rawDroppedAt: Date,
    rawBytes: Number,
    rawSha256: String,
  },
  { versionKey: false },
);
// Present, but possibly empty: mongoose's `required` refuses an empty Buffer, and a body that
// cannot be stored is answered 503 and resent forever. `required: true` above keeps the inferred
// type; mongoose documents a function here, its typings admit only a boolean.
const rawIsMissing = function (this: { raw?: unknown }) {
  return !Buffer.isBuffer(this.raw);
};
ipnMessageSchema
  .path('raw')
  .required(false)
  .required(rawIsMissing as unknown as boolean, 'raw bytes are required');
// For the admin API's lists; no hot path filters on these.
ipnMessageSchema.index({ state: 1, receivedAt: 1 });
ipnMessageSchema.index({ integrationId: 1, txnId: 1 });

/**
 * Messages not yet handed to a workflow, the relay's whole worklist: _id is the message's _id, so
 * the relay scans a collection as small as the backlog, oldest first, by _id (see ipn/intake.ts).
 */
const ipnOutboxSchema = new Schema({ _id: { type: Schema.Types.ObjectId, required: true } }, { versionKey: false });

/**
 * The first delivery of each (integration, txn, status): `_id` is `<integration>:<txn>:<status>`,
 * unique, so inserting the claim is the duplicate check and a duplicate finds its claimant by _id.
 */
const ipnClaimSchema = new Schema(
  { _id: { type: String, required: true }, messageId: { type: String, required: true } },
  { versionKey: false },
);

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
    /** The hold's reason as text (`checks_failed:receiver_mismatch`); `holdCause` is the same as a typed value. */
    holdReason: String,
    holdCause: Schema.Types.Mixed,
    flags: { type: [String], default: [] },
    payerEmail: String,
    needsOperator: { type: Boolean, default: false },
    /** Matters for a person that block no money (disputes, alerts): `acknowledge` closes them. */
    attention: { type: [String], default: [] },
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
    /** Absent on entries from before modes existed: those are live. */
    mode: { type: String, enum: MoneyModeSchema.options },
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

/** idempotencyKey → the entry that moved money under it: the posting path's lookup by _id. */
const ledgerKeySchema = new Schema(
  { _id: { type: String, required: true }, entryId: { type: String, required: true } },
  { versionKey: false },
);

const balanceSchema = new Schema(
  {
    _id: { type: String, required: true },
    customerId: { type: String, required: true },
    currency: { type: String, required: true },
    mode: { type: String, enum: MoneyModeSchema.options },
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

/** A recurring profile as its workflow last saved it: `_id` is `<integration>:<profileId>`; flat fields for lists. */
const recurringProfileSchema = new Schema(
  {
    _id: { type: String, required: true },
    integrationId: { type: String, required: true },
    profileId: { type: String, required: true },
    status: String,
    customerId: String,
    needsOperator: { type: Boolean, default: false },
    attention: { type: [String], default: [] },
    /** Cycle payments waiting for a person: `{ txnId, reason (text), cause (typed) }`. */
    holds: { type: [Schema.Types.Mixed], default: [] },
    snapshot: Schema.Types.Mixed,
  },
  { timestamps: true, versionKey: false },
);
recurringProfileSchema.index({ status: 1, _id: 1 });
recurringProfileSchema.index({ customerId: 1, _id: 1 });
recurringProfileSchema.index({ needsOperator: 1 });
recurringProfileSchema.index({ profileId: 1 });

/** Cycle payment `<integration>:<txnId>` → its profile: refunds and reversals of it are routed there, by _id. */
const profileTxnSchema = new Schema(
  { _id: { type: String, required: true }, profileId: { type: String, required: true } },
  { versionKey: false },
);

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
    IpnOutbox: conn.model('IpnOutbox', ipnOutboxSchema, 'ipn_outbox'),
    IpnClaim: conn.model('IpnClaim', ipnClaimSchema, 'ipn_claims'),
    Payment: conn.model('Payment', paymentSchema, 'payments'),
    LedgerEntry: conn.model('LedgerEntry', ledgerEntrySchema, 'ledger_entries'),
    LedgerKey: conn.model('LedgerKey', ledgerKeySchema, 'ledger_keys'),
    Balance: conn.model('Balance', balanceSchema, 'balances'),
    AuditEvent: conn.model('AuditEvent', auditEventSchema, 'audit_events'),
    RecurringProfile: conn.model('RecurringProfile', recurringProfileSchema, 'recurring_profiles'),
    ProfileTxn: conn.model('ProfileTxn', profileTxnSchema, 'profile_txns'),
    ...bindPayoutModels(conn),
    ...bindWebhookModels(conn),
    ...bindOperatorModels(conn),
    ...bindTopupModels(conn),
  };
}

export type Models = ReturnType<typeof bindModels>;
