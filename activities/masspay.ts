import { Context } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import type { Models } from '../src/shared/db/models';
import {
  batchNeedsPerson,
  uncertainChunks,
  type ChunkReconciliation,
  type ChunkToReconcile,
  type SendChunkOutcome,
} from '../src/masspay/rules';
import {
  MasspayRoutedSchema,
  PayoutBatchStateSchema,
  PayoutItemSchema,
  ResolveItemActionSchema,
  payoutItemId,
  type ItemCounts,
  type MasspayItemReport,
  type MasspayRouted,
  type PayoutBatchState,
  type PayoutContradiction,
  type PayoutItem,
  type ResolveItemAction,
  type SendChannel,
} from '../src/masspay/state';
import type { MasspayItem } from '../src/messages/summary';
import { isSupportedCurrency, parseAmount } from '../src/shared/money';
import { PayoutBatchIdKey, IntegrationIdKey, payoutWorkflowId } from '../src/shared/contract';
import { Ledger, LedgerError, type MoneyMode } from '../src/shared/ledger';
import { isDuplicateKey } from '../src/shared/db/duplicate-keys';
import { inParallel, ItemsEngine, reportSlice, type ItemStore } from '../src/masspay/items-engine';
import { itemCache } from './item-cache';
import {
  masspayCall,
  matchSearchRows,
  searchRows,
  sendCredentials,
  transactionSearchCall,
  type SearchRow,
} from '../src/masspay/nvp';
import { callNvp, nvpUrl } from '../src/shared/paypal/nvp-client';
import { batchRestApp } from '../src/masspay/rest-app';
import {
  batchWorkflowInput,
  MASSPAY_BATCH,
  masspayIpnSignal,
  type MasspayBatchWorkflow,
} from '../src/masspay/contract';

const PAGE = 500;
/** Reads or writes by _id in flight at once, per activity. */
const DB_AT_ONCE = 32;

/** An unordered insert whose only failures are documents that already exist. */
function onlyDuplicates(err: unknown): boolean {
  type WriteError = { code?: number; err?: { code?: number } };
  const errors = (err as { writeErrors?: WriteError[] } | null)?.writeErrors;
  if (!Array.isArray(errors)) return isDuplicateKey(err);
  return errors.length > 0 && errors.every((e) => (e.code ?? e.err?.code) === 11000);
}

/** A batch's items are the _id range `<batchId>:` … `<batchId>;` (';' follows ':'): bounded, by _id. */
export const batchRange = (batchId: string) => ({ _id: { $gt: `${batchId}:`, $lt: `${batchId};` } });

export function mongoItemStore(models: Models, heartbeat: (progress: string) => void = () => {}): ItemStore {
  const ledger = new Ledger(models);
  const { PayoutItem: Items, PayoutRef, PayoutBatch: Batches } = models;
  const known = itemCache(models);
  return {
    async get(batchId, uniqueIds) {
      // One read by _id each, whatever the count: FerretDB 1.24 answers an _id equality by key but
      // an _id range or an $in by reading the whole collection (every batch's items), so a large slice
      // read as a range cost seconds per page and grew with stored history (docs/performance.md). On
      // the driver itself: the schema parses the document, mongoose's query would only cost CPU.
      // An item this process read or saved last is not read again (see itemCache).
      const found = new Map<string, PayoutItem>();
      await inParallel(uniqueIds, DB_AT_ONCE, async (u) => {
        const id = payoutItemId(batchId, u);
        const cached = known.get(id);
        if (cached) return void found.set(u, cached);
        const doc = await Items.collection.findOne({ _id: id as never });
        if (doc) found.set(u, known.read(id, doc));
      });
      return found;
    },
    async forEach(batchId, fn) {
      // One query over the batch's range, read in pages from its cursor: a page per query would make
      // FerretDB read the whole collection once per page.
      const cursor = Items.collection.find(batchRange(batchId) as never, { batchSize: PAGE }).sort({ _id: 1 });
      let page: PayoutItem[] = [];
      for await (const doc of cursor) {
        page.push(known.read(String(doc._id), doc));
        if (page.length < PAGE) continue;
        await fn(page);
        heartbeat(page.at(-1)!.uniqueId);
        page = [];
      }
      if (page.length > 0) await fn(page);
    },
    async counts(batchId) {
      const counts: ItemCounts = {};
      for (const d of await Items.find(batchRange(batchId), { state: 1 }).lean())
        counts[d.state] = (counts[d.state] ?? 0) + 1;
      // Kept from here on: webhooks shift them (shiftCounts) instead of counting every item again.
      await Batches.collection.updateOne(
        { _id: batchId as never },
        { $set: { itemCounts: counts }, $unset: { itemCountsKey: '' } },
      );
      return counts;
    },
    async shiftCounts(batchId, key, delta) {
      const inc = Object.fromEntries(Object.entries(delta).map(([state, n]) => [`itemCounts.${state}`, n]));
      // Kept counts only (absent ones are counted at the end of the pass), once per key.
      await Batches.collection.updateOne(
        { _id: batchId as never, itemCounts: { $exists: true }, itemCountsKey: { $ne: key } },
        Object.keys(inc).length ? { $inc: inc, $set: { itemCountsKey: key } } : { $set: { itemCountsKey: key } },
      );
    },
    async save(writes) {
      // Later messages may name an item only by PayPal's txn id: its reference goes first, so an
      // item saved with a txn id always has one (inserting an existing one is a no-op).
      const refs = writes
        .map((w) => w.item)
        .filter((i) => i.masspayTxnId)
        .map((i) => ({
          _id: `t:${i.integrationId}:${i.masspayTxnId}`,
          batchId: i.batchId,
          uniqueId: i.uniqueId,
          integrationId: i.integrationId,
          mode: i.mode,
        }));
      if (refs.length > 0) {
        await PayoutRef.insertMany(refs, { ordered: false, lean: true }).catch((err: unknown) => {
          if (!onlyDuplicates(err)) throw err;
        });
      }
      // One writer per item document, each replace keyed by _id and guarded by what the item held
      // when read and its revision: a set applied twice, or a writer in between, matches nothing and
      // the set throws (its retry reads the items again). Not a bulkWrite: FerretDB 1.24 holds a
      // connection for every replace of a command until the command ends, and a 1,000-replace
      // bulkWrite emptied its pool for good (docs/embedded-database.md). On the driver itself: the
      // item is parsed by its schema already, mongoose would only cast it again.
      let stale = 0;
      await inParallel(writes, DB_AT_ONCE, async ({ item, was }) => {
        const id = payoutItemId(item.batchId, item.uniqueId);
        const _id = id as never;
        const { rev, next } = known.guard(was);
        const filter = was
          ? { _id, state: was.state, reserved: was.reserved, released: was.released, ...(rev === null ? {} : { rev }) }
          : { _id };
        known.forget(id); // until the store answers
        // An optional field left undefined is absent, as mongoose would write it (not null).
        const done = await Items.collection.replaceOne(
          filter,
          { _id, ...item, rev: next },
          { upsert: !was, ignoreUndefined: true },
        );
        if (was && done.matchedCount === 0) stale++;
        else known.saved(id, item, next);
      });
      if (stale > 0) throw new Error(`${stale} item(s) changed since read; the set is decided again`);
    },
    async postMany(postings) {
      const results = await ledger.postMany(postings);
      return results.map((r) =>
        r instanceof LedgerError ? { ok: false as const, reason: r.message.slice(0, 300) } : { ok: true as const },
      );
    },
    async post(posting) {
      try {
        await ledger.post(posting);
        return { ok: true };
      } catch (err) {
        if (err instanceof LedgerError && !err.transient) return { ok: false, reason: err.message.slice(0, 300) };
        throw err;
      }
    },
  };
}

type MasspayRef = { batchId: string; uniqueId: string; integrationId: string; mode: string };

/** The items a Mass Pay IPN reports, matched to our batches by unique_id_x, then masspay_txn_id_x. */
export async function matchMasspayItems(
  models: Models,
  m: { integrationId: string; paymentStatus: string | null; sandbox: boolean; items: MasspayItem[] },
): Promise<MasspayRouted> {
  const batches: Record<string, MasspayItemReport[]> = {};
  const unmatched: string[] = [];
  const minor = (amount: string | null, currency: string | null) => {
    if (amount === null || currency === null || !isSupportedCurrency(currency)) return null;
    try {
      return Math.abs(parseAmount(amount, currency));
    } catch {
      return null;
    }
  };
  // PayPal's txn id only when the message carries no unique id: an unknown unique id is not ours,
  // whatever item its txn id once named.
  const refId = (item: MasspayItem) =>
    item.uniqueId ? `u:${item.uniqueId}` : item.masspayTxnId ? `t:${m.integrationId}:${item.masspayTxnId}` : null;
  const refs = new Map<string, MasspayRef>();
  const ids = [...new Set(m.items.map(refId).filter((id): id is string => id !== null))];
  // One read by _id each, several at once: a 5,000-item message is matched in a second or two.
  await inParallel(ids, DB_AT_ONCE, async (id) => {
    const ref = await models.PayoutRef.findById(id).lean();
    if (ref) refs.set(id, ref);
  });
  for (const item of m.items) {
    const id = refId(item);
    const ref = id === null ? undefined : refs.get(id);
    // Another integration's batch, or test money for live reservations (or the reverse), is not ours to settle.
    if (!ref || ref.integrationId !== m.integrationId || (ref.mode === 'sandbox') !== m.sandbox) {
      unmatched.push(`#${item.index} ${item.uniqueId ?? item.masspayTxnId ?? '(no id)'}`.slice(0, 80));
      continue;
    }
    (batches[ref.batchId] ??= []).push({
      uniqueId: ref.uniqueId,
      status: item.status,
      masspayTxnId: item.masspayTxnId,
      grossMinor: minor(item.gross, item.currency),
      feeMinor: minor(item.fee, item.currency),
      currency: item.currency,
      reasonCode: item.reasonCode,
    });
  }
  return {
    kind: 'masspay',
    integrationId: m.integrationId,
    paymentStatus: m.paymentStatus,
    sandbox: m.sandbox,
    batches,
    unmatched,
  };
}

const SLICE_PROBLEMS = 20;
/** Contradictions per slice: each blocks the batch; more than this is one more matter (see the items). */
const SLICE_CONTRADICTIONS = 50;

export interface MessageSlice {
  batchId: string;
  integrationId: string;
  messageId: string;
  slice: number;
}

export type SliceApplied =
  | { ok: false; reason: string }
  | {
      ok: true;
      paymentStatus: string | null;
      moved: number;
      ignored: number;
      problems: string[];
      contradictions: PayoutContradiction[];
      last: boolean;
      /** The batch's items per state, after the last slice (null before). */
      counts: ItemCounts | null;
    };

/** The reports of a stored message routed as Mass Pay for this integration, for this batch; or why not. */
type Reports = { ok: false; reason: string } | { ok: true; reports: MasspayItemReport[]; paymentStatus: string | null };
/** The last message's reports read here: its next slices skip reading and parsing ~1 MB again. */
let lastReports: { key: string; reports: Reports } | null = null;

async function messageReports(models: Models, m: Omit<MessageSlice, 'slice'>): Promise<Reports> {
  const key = JSON.stringify([m.batchId, m.integrationId, m.messageId]);
  if (lastReports?.key === key) return lastReports.reports;
  const reports = await readMessageReports(models, m);
  if (reports.ok) lastReports = { key, reports };
  return reports;
}

async function readMessageReports(
  models: Models,
  { batchId, integrationId, messageId }: Omit<MessageSlice, 'slice'>,
): Promise<Reports> {
  const msg = await models.IpnMessage.findById(messageId, { integrationId: 1, routedEvent: 1 })
    .lean<{ integrationId: string; routedEvent?: unknown }>()
    .catch(() => null);
  if (!msg) return { ok: false, reason: `no stored message ${messageId.slice(0, 40)}` };
  const routed = MasspayRoutedSchema.safeParse(msg.routedEvent);
  if (msg.integrationId !== integrationId || !routed.success) {
    return { ok: false, reason: 'the message was never verified and routed as Mass Pay for this integration' };
  }
  const reports = routed.data.batches[batchId];
  if (!reports) return { ok: false, reason: 'the message reports no item of this batch' };
  return { ok: true, reports, paymentStatus: routed.data.paymentStatus };
}

export function createPayoutActivities({ db, client, config, logger }: ActivityDeps) {
  const { models } = db;
  /** The NVP credentials a batch is sent and searched with: its integration's, read now, for the batch's mode. */
  const batchCredentials = async (a: { batchId: string; integrationId: string; mode: MoneyMode }) => {
    const integration = await models.Integration.findById(a.integrationId, { mode: 1, nvpCredentialsEnv: 1 }).lean();
    const current = integration && {
      id: a.integrationId,
      mode: integration.mode,
      nvpCredentialsEnv: integration.nvpCredentialsEnv,
    };
    return sendCredentials(current, { id: a.batchId, mode: a.mode }, process.env);
  };
  /** One chunk's items, in batch order (by _id range and index). */
  const chunkItems = async <K extends keyof PayoutItem>(
    batchId: string,
    chunk: { from: number; to: number },
    fields: K[],
  ): Promise<Array<Pick<PayoutItem, K | 'index'>>> => {
    const projection = Object.fromEntries([...fields, 'index'].map((f) => [f, 1]));
    const docs = await models.PayoutItem.find(
      { ...batchRange(batchId), index: { $gte: chunk.from, $lt: chunk.to } },
      projection,
    ).lean<Array<Pick<PayoutItem, K | 'index'>>>();
    return docs.sort((x, y) => x.index - y.index);
  };
  // Batch-wide work may touch 5,000 items: these run as regular activities and report progress.
  const engine = () => new ItemsEngine(mongoItemStore(models, (p) => Context.current().heartbeat(p)));
  /**
   * Applies slice `slice` of what a stored, verified Mass Pay message says about this batch's
   * items (SLICE_ITEMS items: a second or two); nothing else. The last slice also counts the
   * batch's items. Re-applied after a crash, a slice changes nothing (see ItemsEngine.applySlice).
   */
  async function applyMasspaySlice(a: MessageSlice): Promise<SliceApplied> {
    const loaded = await messageReports(models, a);
    if (!loaded.ok) return loaded;
    const { reports, last } = reportSlice(loaded.reports, a.slice);
    const store = mongoItemStore(models);
    const applied = await new ItemsEngine(store).applySlice(a.batchId, reports, a.messageId, new Date().toISOString());
    return {
      ok: true,
      paymentStatus: loaded.paymentStatus,
      moved: applied.moved,
      ignored: applied.ignored,
      // Bounded: the workflow's history carries counts, not 5,000 items' matters.
      problems: applied.problems.slice(0, SLICE_PROBLEMS),
      contradictions: applied.contradictions.slice(0, SLICE_CONTRADICTIONS),
      last,
      counts: last ? await store.counts(a.batchId) : null,
    };
  }
  return {
    async loadBatchState(batchId: string): Promise<PayoutBatchState | null> {
      const doc = await models.PayoutBatch.findById(batchId, { snapshot: 1 }).lean();
      return doc?.snapshot ? PayoutBatchStateSchema.parse(doc.snapshot) : null;
    },

    async saveBatchState(s: PayoutBatchState): Promise<void> {
      await models.PayoutBatch.updateOne(
        { _id: s.id },
        {
          $set: {
            state: s.state,
            needsOperator: batchNeedsPerson(s),
            attention: s.attention,
            contradictions: s.contradictions,
            pendingReleases: s.pendingReleases,
            uncertainChunks: uncertainChunks(s).map((c) => c.index),
            snapshot: s,
          },
        },
      );
    },

    async reserveItems(batchId: string) {
      return engine().reserveAll(batchId);
    },

    applyMasspaySlice,

    /** Every slice in one activity, for batch histories recorded before slices (heartbeats per slice). */
    async applyMasspayMessage(a: Omit<MessageSlice, 'slice'>) {
      const total = { moved: 0, ignored: 0, problems: [] as string[], contradictions: [] as PayoutContradiction[] };
      for (let slice = 0; ; slice++) {
        const r = await applyMasspaySlice({ ...a, slice });
        if (!r.ok) return r;
        total.moved += r.moved;
        total.ignored += r.ignored;
        total.problems.push(...r.problems);
        total.contradictions.push(...r.contradictions);
        if (r.counts) return { ok: true as const, paymentStatus: r.paymentStatus, counts: r.counts, ...total };
        Context.current().heartbeat(slice);
      }
    },

    async applyAllItems(a: {
      batchId: string;
      to: 'Denied' | 'Cancelled';
      messageId: string | null;
      operator: string | null;
    }) {
      return engine().applyAll(a.batchId, a.to, a, new Date().toISOString());
    },

    async applyOneItem({ batchId, action }: { batchId: string; action: ResolveItemAction }) {
      // Scheduled by a run from before `reason` (its action says `note`): read alike.
      return engine().applyOne(batchId, ResolveItemActionSchema.parse(action), new Date().toISOString());
    },

    /**
     * Whether the batch can be sent through PayPal's API now: its integration still in the batch's
     * mode, with NVP credentials in the environment. Only the verdict leaves: never the credentials.
     */
    async payoutSendReadiness(a: {
      batchId: string;
      integrationId: string;
      mode: MoneyMode;
      channel?: SendChannel | null;
    }): Promise<{ ok: true; channel: SendChannel } | { ok: false; reason: string }> {
      const integration = await models.Integration.findById(a.integrationId, { payoutsRestEnv: 1 }).lean();
      const channel = a.channel ?? (integration?.payoutsRestEnv ? 'rest' : 'api');
      if (channel === 'rest') {
        const ready = await batchRestApp(models, a);
        return ready.ok ? { ok: true, channel } : { ok: false, reason: ready.reason };
      }
      const ready = await batchCredentials(a);
      return ready.ok ? { ok: true, channel } : { ok: false, reason: ready.reason };
    },

    /** One item's stored state, by _id; null when the batch has no such item. */
    async payoutItemState(a: { batchId: string; uniqueId: string }): Promise<PayoutItem['state'] | null> {
      const item = await models.PayoutItem.findById(payoutItemId(a.batchId, a.uniqueId), { state: 1 }).lean();
      return item ? PayoutItemSchema.shape.state.parse(item.state) : null;
    },

    /**
     * One call to PayPal for one chunk of a batch, with the integration's credentials read here from
     * the environment (never in a workflow's history). Made at most once: PayPal documents no
     * idempotency for MassPay (L_UNIQUEIDn is a tracking field), so a lost answer is returned as
     * `unreachable` (the chunk is held and reconciled), never retried. A retry of this activity (a
     * worker that died mid-call, or a schedule from before one attempt) does not call PayPal again.
     */
    async sendPayoutChunk(a: {
      batchId: string;
      integrationId: string;
      mode: MoneyMode;
      currency: string;
      channel: SendChannel;
      chunk: { index: number; from: number; to: number };
      emailSubject: string;
    }): Promise<SendChunkOutcome> {
      const attempt = Context.current().info.attempt;
      if (attempt > 1) {
        const message = `attempt ${attempt}: an earlier attempt may have reached PayPal; not called again`;
        return { outcome: 'unreachable', message, calls: attempt - 1 };
      }
      let call: ReturnType<typeof masspayCall>;
      let creds: ReturnType<typeof sendCredentials>;
      try {
        creds = await batchCredentials(a);
        if (!creds.ok) return { outcome: 'unsendable', message: creds.reason, calls: 0 };
        const docs = await chunkItems(a.batchId, a.chunk, [
          'receiverEmail',
          'amountMinor',
          'uniqueId',
          'note',
          'state',
        ]);
        if (docs.length !== a.chunk.to - a.chunk.from || docs.some((d) => d.state !== 'Pending')) {
          const message = `items ${a.chunk.from + 1}-${a.chunk.to} are not all stored and pending`;
          return { outcome: 'unsendable', message, calls: 0 };
        }
        call = masspayCall(docs, a.currency, a.emailSubject);
      } catch (err) {
        // Nothing was sent: the database failed us before the call. A person sends again.
        return { outcome: 'unsendable', message: `could not prepare the call: ${(err as Error).message}`, calls: 0 };
      }
      let answer: Awaited<ReturnType<typeof callNvp>>;
      try {
        answer = await callNvp(nvpUrl(a.mode, config.PAYPAL_SANDBOX_NVP_URL), creds.credentials, call);
      } catch (err) {
        return { outcome: 'unreachable', message: (err as Error).message.slice(0, 250), calls: 1 };
      }
      logger.info(
        {
          integrationId: a.integrationId,
          batchId: a.batchId,
          chunk: a.chunk.index,
          items: a.chunk.to - a.chunk.from,
          attempt,
          ack: answer.ack,
        },
        'PayPal MassPay call',
      );
      if (answer.ack === 'Success') {
        return { outcome: 'acked', correlationId: answer.fields.CORRELATIONID ?? null, calls: 1 };
      }
      if (answer.ack === 'Failure') {
        const message = `${answer.shortMessage}: ${answer.longMessage}`.slice(0, 250);
        return { outcome: 'refused', code: answer.code, message, calls: 1 };
      }
      return { outcome: 'unreachable', message: answer.message, calls: 1 };
    },

    /**
     * What PayPal shows of chunks whose call went unanswered: items its IPNs reported (a PayPal
     * transaction id, or a note from a verified message), and with `search`, for chunks with none, a
     * TransactionSearch per payee since the chunk's `since` (read-only: safe to retry), matched by
     * payee, amount and currency. PayPal truncating a search (more than 100 results) cannot prove
     * absence: that chunk is inconclusive.
     */
    async reconcilePayoutChunks(a: {
      batchId: string;
      integrationId: string;
      mode: MoneyMode;
      currency: string;
      search: boolean;
      chunks: ChunkToReconcile[];
    }): Promise<ChunkReconciliation[]> {
      const results: ChunkReconciliation[] = [];
      for (const chunk of a.chunks) {
        // Whole items, histories included (at most 30 notes each): a chunk is at most 250 items.
        const docs = await chunkItems(a.batchId, chunk, ['receiverEmail', 'amountMinor', 'masspayTxnId', 'history']);
        const reported = docs.filter((d) => d.masspayTxnId || d.history.some((h) => h.messageId)).length;
        const result: ChunkReconciliation = { index: chunk.index, items: docs.length, reported, search: null };
        results.push(result);
        if (reported > 0 || !a.search) continue;
        const creds = await batchCredentials(a);
        if (!creds.ok) {
          result.search = { inconclusive: creds.reason };
          continue;
        }
        const byPayee = new Map<string, number[]>();
        for (const d of docs) byPayee.set(d.receiverEmail, [...(byPayee.get(d.receiverEmail) ?? []), d.amountMinor]);
        let found = 0;
        payees: for (const [payee, amounts] of byPayee) {
          const rows: SearchRow[] = [];
          for (const by of ['RECEIVER', 'EMAIL'] as const) {
            const answer = await callNvp(
              nvpUrl(a.mode, config.PAYPAL_SANDBOX_NVP_URL),
              creds.credentials,
              transactionSearchCall({ by, payee, currency: a.currency, since: chunk.since }),
            );
            Context.current().heartbeat(chunk.index);
            if (answer.ack !== 'Success') {
              result.search = {
                inconclusive:
                  answer.ack === 'Failure'
                    ? `TransactionSearch refused: ${answer.code} ${answer.longMessage}`.slice(0, 200)
                    : answer.message.slice(0, 200),
              };
              break payees;
            }
            const got = searchRows(answer.fields);
            if (got.truncated) {
              result.search = { inconclusive: 'PayPal truncated the search for a payee (over 100 transactions)' };
              break payees;
            }
            rows.push(...got.rows);
          }
          found += matchSearchRows(rows, { currency: a.currency, amounts });
        }
        result.search ??= { found };
      }
      logger.info(
        { batchId: a.batchId, chunks: results.map((r) => [r.index, r.reported, r.search]) },
        'Mass Pay reconciliation',
      );
      return results;
    },

    /**
     * Matches a verified Mass Pay IPN to our batches, stores what it says on the message (the only
     * thing a batch will apply), and hands it to each batch's workflow, starting it if closed.
     * Retried whole: signalling twice is harmless (a batch applies a message once).
     */
    async routeMasspay(m: {
      messageId: string;
      integrationId: string;
      paymentStatus: string | null;
      sandbox: boolean;
      items: MasspayItem[];
    }) {
      const routed = await matchMasspayItems(models, m);
      await models.IpnMessage.updateOne({ _id: m.messageId }, { $set: { routedEvent: routed } });
      const batchIds = Object.keys(routed.batches).sort();
      for (const batchId of batchIds) {
        await client.workflow.signalWithStart<MasspayBatchWorkflow, [{ messageId: string }]>(MASSPAY_BATCH, {
          workflowId: payoutWorkflowId(batchId),
          taskQueue: Context.current().info.taskQueue,
          args: [batchWorkflowInput(batchId, config)],
          signal: masspayIpnSignal,
          signalArgs: [{ messageId: m.messageId }],
          typedSearchAttributes: [
            { key: PayoutBatchIdKey, value: batchId },
            { key: IntegrationIdKey, value: m.integrationId },
          ],
        });
      }
      return { batchIds, unmatched: routed.unmatched };
    },
  };
}
