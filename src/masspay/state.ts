import { z } from 'zod';
import { MoneyModeSchema } from '../shared/money-mode';
import { isSupportedCurrency, parseAmount } from '../shared/money';
import { IdentifiedOperatorNameSchema, operatorActionSchema } from '../shared/operator-actions';

/**
 * Mass Pay batches we send (money out of customers' balances to their PayPal accounts), as stored
 * documents and workflow state. Pure (bundled into workflows): zod only.
 *
 * A batch's items live in their own documents (`<batchId>:<uniqueId>`), never in the workflow's
 * state: a 5,000-item batch keeps a workflow of a few kilobytes.
 */

export const BATCH_STATES = [
  'created',
  'approved',
  'submitted',
  'processed',
  'completed',
  'denied',
  'cancelled',
] as const;
export const BatchStateSchema = z.enum(BATCH_STATES);
export type BatchState = z.infer<typeof BatchStateSchema>;

/** PayPal's per-item statuses (status_x), plus the two a batch imposes: Denied and Cancelled. */
export const ITEM_STATES = [
  'Pending',
  'Unclaimed',
  'Completed',
  'Returned',
  'Failed',
  'Reversed',
  'Blocked',
  'Denied',
  'Cancelled',
] as const;
export const ItemStateSchema = z.enum(ITEM_STATES);
export type ItemState = z.infer<typeof ItemStateSchema>;
/** What PayPal may say about an item in status_x. */
export const PAYPAL_ITEM_STATUSES: readonly ItemState[] = [
  'Pending',
  'Unclaimed',
  'Completed',
  'Returned',
  'Failed',
  'Reversed',
  'Blocked',
];
/** Statuses whose money comes back to us: the item's reservation is released (once). */
export const RELEASING_STATES: readonly ItemState[] = [
  'Returned',
  'Failed',
  'Reversed',
  'Blocked',
  'Denied',
  'Cancelled',
];

/** PayPal's Mass Pay limits (upload file and NVP); unique ids as short as the IPN guide allows. */
export const MASSPAY_MAX_ITEMS = 5000;
export const UNIQUE_ID_MAX_CHARS = 13;
export const NVP_MAX_ITEMS_PER_CALL = 250;

/** PayPal's Payouts REST API takes up to 15,000 items in one call (one `sender_batch_id`). */
export const PAYOUTS_REST_MAX_ITEMS = 15_000;
/**
 * Items one batch of ours may hold: two Payouts calls' worth (a batch above 15,000 is split, each part
 * its own `sender_batch_id`), 120 MassPay NVP calls of 250. Mass Pay's upload file stays at PayPal's
 * MASSPAY_MAX_ITEMS (its download refuses a larger batch).
 */
export const PAYOUT_BATCH_MAX_ITEMS = 2 * PAYOUTS_REST_MAX_ITEMS;

/**
 * How a batch reached PayPal: `upload` (an operator uploaded the file and said so), `api` (we sent
 * it through the MassPay NVP API), `rest` (through Payouts REST: the channel PayPal still opens to
 * new merchants; followed by signed webhooks and polling).
 */
export const PAYOUT_CHANNELS = ['upload', 'api', 'rest'] as const;
export const PayoutChannelSchema = z.enum(PAYOUT_CHANNELS);
export type PayoutChannel = z.infer<typeof PayoutChannelSchema>;
/** The channels we send through ourselves, and how many items one call to PayPal may carry. */
export const SEND_CHANNEL_MAX_ITEMS = { api: NVP_MAX_ITEMS_PER_CALL, rest: PAYOUTS_REST_MAX_ITEMS } as const;
export type SendChannel = keyof typeof SEND_CHANNEL_MAX_ITEMS;
/**
 * PayPal's answer to a MassPay call repeating a unique id it already has (the "duplicate" code of
 * the Mass Pay reason codes): nothing new was paid, the earlier call's items stand.
 */
export const NVP_DUPLICATE_UNIQUE_ID = '8331';

/** One call to PayPal carrying the items whose `index` is in [from, to). */
export const SendChunkSchema = z.object({
  index: z.number().int().min(0),
  from: z.number().int().min(0),
  to: z.number().int().min(1),
  /**
   * `pending`: not yet answered; `acked`: PayPal has these items (never sent again); `refused`:
   * PayPal said no for good; `uncertain`: no answer came back, PayPal may have them (held until
   * reconciled); `not_found`: reconciled, PayPal has none of them: may be sent again.
   */
  state: z.enum(['pending', 'acked', 'refused', 'uncertain', 'not_found']),
  /** Requests made for this chunk so far (any of them may have reached PayPal). */
  calls: z.number().int().min(0),
  correlationId: z.string().nullable(),
  error: z.string().nullable(),
  /** When a request for it last went unanswered: where a search of PayPal's transactions starts. */
  uncertainSince: z.string().nullable().default(null),
  /** How an uncertain chunk was settled: PayPal's IPNs for its items, or a search of its transactions. */
  reconciled: z
    .object({
      at: z.string(),
      by: z.enum(['ipn', 'search']),
      operator: z.string().nullable(),
      items: z.number().int(),
      found: z.number().int(),
    })
    .nullable()
    .default(null),
});
export type SendChunk = z.infer<typeof SendChunkSchema>;

export const SendChannelSchema = z.enum(['api', 'rest']);
export const SendStateSchema = z.object({
  channel: SendChannelSchema,
  operator: z.string(),
  startedAt: z.string(),
  emailSubject: z.string(),
  chunks: z.array(SendChunkSchema),
});
export type SendState = z.infer<typeof SendStateSchema>;

export const ItemHistoryEntrySchema = z.object({
  at: z.string(),
  /** The PayPal status or operator decision applied, or what was ignored. */
  what: z.string(),
  messageId: z.string().nullable(),
  operator: z.string().nullable(),
});

const contradictionBase = {
  /** Stable for the same fact (a second message saying it again raises nothing new). */
  id: z.string(),
  messageId: z.string().nullable(),
  at: z.string(),
};
/**
 * PayPal contradicting what we hold final, each kind its own shape. Never silence: each blocks the
 * batch (shown in /admin/held, alerted, audited) until an operator clears that very one by its id;
 * `stopWaiting` never does. Money is not moved for them: which way it should go is for a person.
 * - `state_contradicts_final`: an item we hold final one way (paid out: Completed; or released:
 *   Failed, Returned, Blocked, Denied, Cancelled) and PayPal reports it final the other way.
 * - `second_txn_id`: a second masspay_txn_id for one unique id: possibly paid twice.
 * - `batch_contradicts_final`: the batch is denied or cancelled (money released) and PayPal reports
 *   it processed or completed, or it is processed or completed and PayPal reports it denied.
 * - `sent_unapproved`: PayPal reports a batch nobody approved or sent.
 */
export const PayoutContradictionSchema = z.discriminatedUnion('code', [
  z.object({
    code: z.literal('state_contradicts_final'),
    ...contradictionBase,
    uniqueId: z.string(),
    ours: ItemStateSchema,
    paypal: z.string(),
  }),
  z.object({
    code: z.literal('second_txn_id'),
    ...contradictionBase,
    uniqueId: z.string(),
    firstTxnId: z.string(),
    txnId: z.string(),
  }),
  z.object({
    code: z.literal('batch_contradicts_final'),
    ...contradictionBase,
    ours: BatchStateSchema,
    paypal: z.string(),
  }),
  z.object({ code: z.literal('sent_unapproved'), ...contradictionBase, ours: BatchStateSchema, paypal: z.string() }),
]);
export type PayoutContradiction = z.infer<typeof PayoutContradictionSchema>;

/** One payee's payment in a batch: `_id` is `<batchId>:<uniqueId>`. */
export const PayoutItemSchema = z.object({
  batchId: z.string(),
  uniqueId: z.string(),
  /** 0-based position in the batch as created: the upload file's row order. */
  index: z.number().int().min(0),
  integrationId: z.string(),
  customerId: z.string(),
  receiverEmail: z.string(),
  currency: z.string(),
  mode: MoneyModeSchema,
  amountMinor: z.number().int().positive(),
  note: z.string().nullable(),
  state: ItemStateSchema,
  /** The reservation (debit) is posted; `released` once it was credited back. */
  reserved: z.boolean(),
  released: z.boolean(),
  masspayTxnId: z.string().nullable(),
  /** Payouts REST: PayPal's `payout_item_id` (what its cancel of an unclaimed item names). */
  paypalItemId: z.string().optional(),
  feeMinor: z.number().int().nullable(),
  reasonCode: z.string().nullable(),
  /** Things a person should look at (an amount that differs from what we reserved, ...). */
  problems: z.array(z.string()),
  /** What PayPal said against what we hold final: blocking until a person clears it on the batch. */
  contradictions: z.array(PayoutContradictionSchema).default([]),
  history: z.array(ItemHistoryEntrySchema),
});
export type PayoutItem = z.infer<typeof PayoutItemSchema>;

/** Who an item pays, what and from which batch: all a new item needs (see newPayoutItem). */
export type NewPayoutItem = Pick<
  PayoutItem,
  | 'batchId'
  | 'uniqueId'
  | 'index'
  | 'integrationId'
  | 'customerId'
  | 'receiverEmail'
  | 'currency'
  | 'mode'
  | 'amountMinor'
> & { note?: string | null };

/**
 * An item as a batch is created with it: Pending, nothing from PayPal yet, and claiming its
 * reservation (`reserved`) before that is posted. Should the creating process die in between, the
 * batch is not `reserved` and its workflow's reserve step settles the flag item by item.
 */
export function newPayoutItem(fields: NewPayoutItem): PayoutItem {
  return {
    ...fields,
    note: fields.note ?? null,
    state: 'Pending',
    reserved: true,
    released: false,
    masspayTxnId: null,
    feeMinor: null,
    reasonCode: null,
    problems: [],
    contradictions: [],
    history: [],
  };
}

/** Which cap a batch is over (integration settings `payoutCaps`), in the batch's currency. */
export const CapExceededSchema = z.object({
  cap: z.enum(['per_batch', 'per_day']),
  currency: z.string(),
  capMinor: z.number().int(),
  /** The batch's total (per_batch), or the day's total with this batch (per_day). */
  totalMinor: z.number().int(),
});
export type CapExceeded = z.infer<typeof CapExceededSchema>;

/** An item resolution that releases money, asked for before the waiting period: a second operator confirms it. */
export const PendingReleaseSchema = z.object({
  uniqueId: z.string(),
  state: z.enum(['Returned', 'Failed', 'Reversed', 'Blocked']),
  operator: z.string(),
  note: z.string(),
  at: z.string(),
});
export type PendingRelease = z.infer<typeof PendingReleaseSchema>;

export const payoutItemId = (batchId: string, uniqueId: string) => `${batchId}:${uniqueId}`;

/** Counts of items per state: what the Web UI and the admin API show for a batch. */
export const ItemCountsSchema = z.record(z.string(), z.number().int());
export type ItemCounts = z.infer<typeof ItemCountsSchema>;

export const PayoutBatchStateSchema = z.object({
  id: z.string(),
  integrationId: z.string(),
  currency: z.string(),
  mode: MoneyModeSchema,
  createdBy: z.string(),
  createdAt: z.string(),
  note: z.string().nullable(),
  itemCount: z.number().int(),
  totalMinor: z.number().int(),
  state: BatchStateSchema,
  /** Every item's reservation is posted: only then may the batch be approved. */
  reserved: z.boolean(),
  approvedBy: z.string().nullable(),
  /** Approvals needed: 2 once the batch is over a cap (a second, distinct approver). */
  requiredApprovals: z.number().int().min(1).max(2).default(1),
  capsExceeded: z.array(CapExceededSchema).default([]),
  /** Who approved so far; the batch is approved once there are requiredApprovals distinct ones. */
  approvals: z.array(z.object({ operator: z.string(), at: z.string() })).default([]),
  submittedAt: z.string().nullable(),
  processedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  /** How the batch reached PayPal; null until it did (batches stored before channels: read as null). */
  channel: PayoutChannelSchema.nullable().default(null),
  /** Our own sending through PayPal's API, chunk by chunk; null for an uploaded batch. */
  send: SendStateSchema.nullable().default(null),
  counts: ItemCountsSchema,
  /** Matters for a person (deadlines passed, sends halted, ...); shown in /admin/held. */
  attention: z.array(z.string()),
  /** Blocking problems, each cleared only by its own decision (see PayoutContradictionSchema). */
  contradictions: z.array(PayoutContradictionSchema).default([]),
  /** Ids of contradictions a person cleared: the same fact said again raises nothing new. */
  clearedContradictions: z.array(z.string()).default([]),
  pendingReleases: z.array(PendingReleaseSchema).default([]),
  /** An operator said to stop waiting for PayPal: deadlines no longer raise attention. */
  stoppedWaiting: z.boolean(),
  /** Messages applied (bounded): a redelivered message is recognised before touching items. */
  appliedMessages: z.array(z.string()),
  history: z.array(z.object({ at: z.string(), what: z.string(), messageId: z.string().nullable() })),
});
export type PayoutBatchState = z.infer<typeof PayoutBatchStateSchema>;

const text = (max: number) => z.string().trim().min(1).max(max);
/** Notes end up in a tab-delimited file: no tabs or line breaks. */
const noteText = z
  .string()
  .trim()
  .max(1000)
  // eslint-disable-next-line no-control-regex -- exactly these control characters would corrupt the upload file
  .refine((s) => !/[\t\r\n\u0000]/.test(s), 'must not contain tabs, line breaks or NUL');

/** An operator's name: it must say who, once case, accents, punctuation and invisible characters are gone. */
const operatorName = IdentifiedOperatorNameSchema;

/** An operator's decision on a batch: who (a name four eyes can compare), and why (`reason`; `note` read as it). */
export const PayoutActionSchema = operatorActionSchema(() => ({}), IdentifiedOperatorNameSchema);
export type PayoutAction = z.infer<typeof PayoutActionSchema>;
export const SubmittedActionSchema = operatorActionSchema(
  () => ({ submittedAt: z.iso.datetime().optional() }),
  IdentifiedOperatorNameSchema,
);
export type SubmittedAction = z.infer<typeof SubmittedActionSchema>;
/**
 * An operator sends an approved batch through PayPal's API (the subject payees' emails carry):
 * `rest` (Payouts) or `api` (MassPay NVP); without a channel, Payouts when the integration names a
 * REST app, else MassPay NVP.
 */
export const SendActionSchema = operatorActionSchema(
  () => ({ emailSubject: text(255).optional(), channel: SendChannelSchema.optional() }),
  IdentifiedOperatorNameSchema,
);
export type SendAction = z.infer<typeof SendActionSchema>;
/** A person settles an item PayPal never reported (or reported wrongly), as if PayPal had said so. */
export const ResolveItemActionSchema = operatorActionSchema(
  () => ({
    uniqueId: text(UNIQUE_ID_MAX_CHARS),
    state: z.enum(['Completed', 'Returned', 'Failed', 'Reversed', 'Blocked']),
  }),
  IdentifiedOperatorNameSchema,
);
export type ResolveItemAction = z.infer<typeof ResolveItemActionSchema>;
/** Payouts REST: an operator asks PayPal to cancel one UNCLAIMED item (it then comes back, Returned). */
export const CancelUnclaimedActionSchema = operatorActionSchema(
  () => ({ uniqueId: text(UNIQUE_ID_MAX_CHARS) }),
  IdentifiedOperatorNameSchema,
);
export type CancelUnclaimedAction = z.infer<typeof CancelUnclaimedActionSchema>;
/** A person's own decision on one contradiction, named by its id: nothing else clears it. */
export const ClearContradictionActionSchema = operatorActionSchema(
  () => ({ contradictionId: text(200) }),
  IdentifiedOperatorNameSchema,
);
export type ClearContradictionAction = z.infer<typeof ClearContradictionActionSchema>;

/** The admin API's batch request, before the amounts are read (that needs the currency). */
export const CreatePayoutRequestSchema = z.object({
  integrationId: text(64),
  currency: z.string().regex(/^[A-Z]{3}$/, 'a 3-letter currency code'),
  operator: operatorName,
  note: noteText.optional(),
  items: z
    .array(
      z.object({
        customerId: text(64),
        receiverEmail: z
          .email()
          .max(127)
          .transform((e) => e.toLowerCase()),
        amount: z.string().max(32),
        note: noteText.optional(),
      }),
    )
    .min(1)
    .max(PAYOUT_BATCH_MAX_ITEMS, `a payout batch takes at most ${PAYOUT_BATCH_MAX_ITEMS} items`),
});
/** The request with every amount read in the batch's currency: each bad one named by item and field. */
export const CreatePayoutSchema = CreatePayoutRequestSchema.transform((req, ctx) => {
  if (!isSupportedCurrency(req.currency)) {
    ctx.addIssue({ code: 'custom', path: ['currency'], message: `${req.currency} is not a PayPal currency` });
    return z.NEVER;
  }
  const items = req.items.map((item, i) => {
    let amountMinor = 0;
    try {
      amountMinor = parseAmount(item.amount, req.currency);
      if (amountMinor <= 0)
        ctx.addIssue({
          code: 'custom',
          path: ['items', i, 'amount'],
          message: `must be positive, got ${JSON.stringify(item.amount)}`,
        });
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['items', i, 'amount'], message: (err as Error).message });
    }
    return { ...item, amountMinor };
  });
  return { ...req, items };
});
export type CreatePayout = z.infer<typeof CreatePayoutSchema>;

/** One item as a Mass Pay IPN reports it, amounts already in minor units. */
export const MasspayItemReportSchema = z.object({
  uniqueId: z.string(),
  status: z.string().nullable(),
  masspayTxnId: z.string().nullable(),
  grossMinor: z.number().int().nullable(),
  feeMinor: z.number().int().nullable(),
  currency: z.string().nullable(),
  reasonCode: z.string().nullable(),
});
export type MasspayItemReport = z.infer<typeof MasspayItemReportSchema>;

/**
 * What processIpn stores on a verified Mass Pay message as its routedEvent: the batch workflows
 * apply only what a stored, verified message says, never what a signal claims.
 */
export const MasspayRoutedSchema = z.object({
  kind: z.literal('masspay'),
  integrationId: z.string(),
  paymentStatus: z.string().nullable(),
  sandbox: z.boolean(),
  batches: z.record(z.string(), z.array(MasspayItemReportSchema)),
  unmatched: z.array(z.string()),
});
export type MasspayRouted = z.infer<typeof MasspayRoutedSchema>;
