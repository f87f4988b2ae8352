import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '.';
import type { Models } from '../src/db/models';
import { batchNeedsPerson, type ItemsApplied, type SendChunkOutcome } from '../src/domain/masspay-decide';
import {
  MasspayRoutedSchema,
  PayoutBatchStateSchema,
  PayoutItemSchema,
  payoutItemId,
  type ItemCounts,
  type MasspayItemReport,
  type MasspayRouted,
  type PayoutBatchState,
  type PayoutItem,
  type ResolveItemAction,
  type SendChannel,
} from '../src/domain/masspay';
import type { MasspayItem } from '../src/domain/ipn-summary';
import { isSupportedCurrency, parseAmount } from '../src/domain/money';
import { PayoutBatchIdKey, IntegrationIdKey, payoutWorkflowId } from '../src/domain/contracts';
import { Ledger, LedgerError } from '../src/ledger/ledger';
import { ItemsEngine, type ItemStore } from '../src/payouts/items-engine';
import { masspayCall, sendCredentials } from '../src/payouts/nvp-masspay';
import { callNvp, nvpUrl } from '../src/paypal/nvp-client';
import { masspayBatch, masspayIpnSignal } from '../workflows/masspay-batch';

const PAGE = 500;

/** A batch's items are the _id range `<batchId>:` … `<batchId>;` (';' follows ':'): bounded, by _id. */
export const batchRange = (batchId: string) => ({ _id: { $gt: `${batchId}:`, $lt: `${batchId};` } });

export function mongoItemStore(models: Models, heartbeat: (progress: string) => void = () => {}): ItemStore {
  const ledger = new Ledger(models);
  const { PayoutItem: Items, PayoutRef } = models;
  const parse = (doc: unknown) => PayoutItemSchema.parse(doc);
  return {
    async get(batchId, uniqueIds) {
      const docs = await Items.find({ _id: { $in: uniqueIds.map((u) => payoutItemId(batchId, u)) } }).lean();
      return new Map(docs.map((d) => [d.uniqueId, parse(d)]));
    },
    async forEach(batchId, fn) {
      let after = `${batchId}:`;
      for (;;) {
        const docs = await Items.find({ _id: { $gt: after, $lt: `${batchId};` } })
          .sort({ _id: 1 })
          .limit(PAGE)
          .lean();
        if (docs.length === 0) return;
        await fn(docs.map(parse));
        after = docs.at(-1)!._id;
        heartbeat(after);
      }
    },
    async counts(batchId) {
      const counts: ItemCounts = {};
      for (const d of await Items.find(batchRange(batchId), { state: 1 }).lean())
        counts[d.state] = (counts[d.state] ?? 0) + 1;
      return counts;
    },
    async save(item: PayoutItem) {
      const _id = payoutItemId(item.batchId, item.uniqueId);
      await Items.replaceOne({ _id }, { _id, ...item }, { upsert: true });
      if (item.masspayTxnId) {
        // Later messages may name the item only by PayPal's txn id.
        const ref = {
          batchId: item.batchId,
          uniqueId: item.uniqueId,
          integrationId: item.integrationId,
          mode: item.mode,
        };
        await PayoutRef.updateOne(
          { _id: `t:${item.integrationId}:${item.masspayTxnId}` },
          { $setOnInsert: ref },
          { upsert: true },
        );
      }
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
  for (const item of m.items) {
    // PayPal's txn id only when the message carries no unique id: an unknown unique id is not ours,
    // whatever item its txn id once named.
    const ref = item.uniqueId
      ? await models.PayoutRef.findById(`u:${item.uniqueId}`).lean()
      : item.masspayTxnId
        ? await models.PayoutRef.findById(`t:${m.integrationId}:${item.masspayTxnId}`).lean()
        : null;
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

export function createPayoutActivities({ db, client, config, logger }: ActivityDeps) {
  const { models } = db;
  // Batch-wide work may touch 5,000 items: these run as regular activities and report progress.
  const engine = () => new ItemsEngine(mongoItemStore(models, (p) => Context.current().heartbeat(p)));
  return {
    async loadBatchState(batchId: string): Promise<PayoutBatchState | null> {
      const doc = await models.PayoutBatch.findById(batchId, { snapshot: 1 }).lean();
      return doc?.snapshot ? PayoutBatchStateSchema.parse(doc.snapshot) : null;
    },

    async saveBatchState(s: PayoutBatchState): Promise<void> {
      await models.PayoutBatch.updateOne(
        { _id: s.id },
        { $set: { state: s.state, needsOperator: batchNeedsPerson(s), attention: s.attention, snapshot: s } },
      );
    },

    async reserveItems(batchId: string) {
      return engine().reserveAll(batchId);
    },

    /** Applies what a stored, verified Mass Pay message says about this batch's items; nothing else. */
    async applyMasspayMessage({
      batchId,
      integrationId,
      messageId,
    }: {
      batchId: string;
      integrationId: string;
      messageId: string;
    }) {
      type Result = { ok: false; reason: string } | (ItemsApplied & { ok: true; paymentStatus: string | null });
      const msg = await models.IpnMessage.findById(messageId, { integrationId: 1, routedEvent: 1 })
        .lean<{ integrationId: string; routedEvent?: unknown }>()
        .catch(() => null);
      if (!msg) return { ok: false, reason: `no stored message ${messageId.slice(0, 40)}` } as Result;
      const routed = MasspayRoutedSchema.safeParse(msg.routedEvent);
      if (msg.integrationId !== integrationId || !routed.success) {
        return {
          ok: false,
          reason: 'the message was never verified and routed as Mass Pay for this integration',
        } as Result;
      }
      const reports = routed.data.batches[batchId];
      if (!reports) return { ok: false, reason: 'the message reports no item of this batch' } as Result;
      const applied = await engine().applyReports(batchId, reports, messageId, new Date().toISOString());
      return { ok: true, paymentStatus: routed.data.paymentStatus, ...applied } as Result;
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
      return engine().applyOne(batchId, action, new Date().toISOString());
    },

    /**
     * One call to PayPal for one chunk of a batch, with the integration's credentials read here from
     * the environment (never in a workflow's history). PayPal's answers are returned, refusals
     * included; a transport failure throws, for the workflow's retry policy: a request whose answer
     * was lost may have reached PayPal, and the retry is refused as a duplicate if it did.
     */
    async sendPayoutChunk(a: {
      batchId: string;
      integrationId: string;
      mode: 'live' | 'sandbox';
      currency: string;
      channel: SendChannel;
      chunk: { index: number; from: number; to: number };
      emailSubject: string;
    }): Promise<SendChunkOutcome> {
      const attempt = Context.current().info.attempt;
      const earlier = attempt - 1;
      const integration = await models.Integration.findById(a.integrationId, {
        mode: 1,
        nvpCredentialsEnv: 1,
      }).lean();
      const creds = sendCredentials(
        integration && {
          id: a.integrationId,
          mode: integration.mode,
          nvpCredentialsEnv: integration.nvpCredentialsEnv,
        },
        { id: a.batchId, mode: a.mode },
        process.env,
      );
      if (!creds.ok) return { outcome: 'unsendable', message: creds.reason, calls: earlier };
      const docs = await models.PayoutItem.find(
        { ...batchRange(a.batchId), index: { $gte: a.chunk.from, $lt: a.chunk.to } },
        { receiverEmail: 1, amountMinor: 1, uniqueId: 1, note: 1, index: 1, state: 1 },
      ).lean<Array<Pick<PayoutItem, 'receiverEmail' | 'amountMinor' | 'uniqueId' | 'note' | 'index' | 'state'>>>();
      docs.sort((x, y) => x.index - y.index);
      if (docs.length !== a.chunk.to - a.chunk.from || docs.some((d) => d.state !== 'Pending')) {
        const message = `items ${a.chunk.from + 1}-${a.chunk.to} are not all stored and pending`;
        return { outcome: 'unsendable', message, calls: earlier };
      }
      const call = masspayCall(docs, a.currency, a.emailSubject);
      const answer = await callNvp(nvpUrl(a.mode, config.PAYPAL_SANDBOX_NVP_URL), creds.credentials, call);
      logger.info(
        {
          integrationId: a.integrationId,
          batchId: a.batchId,
          chunk: a.chunk.index,
          items: docs.length,
          attempt,
          ack: answer.ack,
        },
        'PayPal MassPay call',
      );
      if (answer.ack === 'Success') {
        return { outcome: 'acked', correlationId: answer.fields.CORRELATIONID ?? null, calls: attempt };
      }
      if (answer.ack === 'Failure') {
        const message = `${answer.shortMessage}: ${answer.longMessage}`.slice(0, 250);
        return { outcome: 'refused', code: answer.code, message, calls: attempt };
      }
      return { outcome: 'unreachable', message: answer.message, calls: attempt };
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
        await client.workflow.signalWithStart(masspayBatch, {
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

export function batchWorkflowInput(
  batchId: string,
  config: Pick<
    ActivityDeps['config'],
    'MASSPAY_PROCESSED_DEADLINE_SECONDS' | 'MASSPAY_COMPLETED_DEADLINE_SECONDS' | 'PAYMENT_IDLE_CLOSE_SECONDS'
  >,
) {
  return {
    batchId,
    idleCloseSeconds: config.PAYMENT_IDLE_CLOSE_SECONDS,
    deadlines: {
      processedWithinSeconds: config.MASSPAY_PROCESSED_DEADLINE_SECONDS,
      completedWithinSeconds: config.MASSPAY_COMPLETED_DEADLINE_SECONDS,
    },
  };
}
