import { Context } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { batchRange, mongoItemStore } from './masspay';
import { itemCache } from './item-cache';
import type { SendChunkOutcome } from '../src/masspay/rules';
import { ItemsEngine } from '../src/masspay/items-engine';
import type { ItemCounts, MasspayItemReport, PayoutContradiction } from '../src/masspay/state';
import {
  payoutsBody,
  restBatchStatus,
  restItemReport,
  RestItemResourceSchema,
  senderBatchId,
  type RestItemResource,
} from '../src/masspay/rest';
import type { MoneyMode } from '../src/shared/ledger';
import { PayPalRestError, restClientFor, restUrl, type PayPalRestClient } from '../src/shared/paypal/rest-client';
import { batchRestApp } from '../src/masspay/rest-app';

/**
 * Waiting webhook events applied per slice: one read of a bounded _id range, one set of item writes.
 * Large, so a 15,000-item batch's webhooks are a few slices (each reads the batch's items once).
 */
const EVENT_SLICE = 5_000;
/** PayPal's largest page of a batch's items. */
const PAGE_SIZE = 1000;
/** Sends of one call: a lost answer or PayPal's 5xx is retried under the same sender_batch_id. */
const SEND_TRIES = 4;
const MAX_PROBLEMS = 50;

interface BatchRef {
  batchId: string;
  integrationId: string;
  mode: MoneyMode;
}

/** What one application of PayPal's word (waiting webhooks, or a poll) did: the shape the batch rules read. */
export type RestApplied =
  | { ok: false; reason: string }
  | {
      ok: true;
      paymentStatus: string | null;
      counts: ItemCounts;
      moved: number;
      ignored: number;
      problems: string[];
      contradictions: PayoutContradiction[];
    };

export function createMasspayRestActivities({ db, config }: ActivityDeps) {
  const { models } = db;

  /** The batch's integration's REST app, for the batch's mode (an integration switched modes sends nothing). */
  async function clientFor(
    a: BatchRef,
  ): Promise<{ ok: true; client: PayPalRestClient } | { ok: false; reason: string }> {
    const app = await batchRestApp(models, a);
    if (!app.ok) return app;
    return { ok: true, client: restClientFor(restUrl(a.mode, config.PAYPAL_SANDBOX_REST_URL), app.credentials) };
  }

  const heartbeat = (p: string) => Context.current().heartbeat(p);
  const engine = () => new ItemsEngine(mongoItemStore(models, heartbeat));

  /** PayPal's batch as it stands now, every page of its items. */
  async function paypalBatch(client: PayPalRestClient, payoutBatchId: string) {
    const items: RestItemResource[] = [];
    let status = '';
    for (let page = 1; ; page++) {
      const { body } = await client.request<{
        batch_header?: { batch_status?: string };
        items?: unknown[];
        total_page?: number;
      }>(
        'GET',
        `/v1/payments/payouts/${encodeURIComponent(payoutBatchId)}?` +
          `page=${page}&page_size=${PAGE_SIZE}&total_required=true`,
        {
          context: `GET payout batch ${payoutBatchId} page ${page}`,
        },
      );
      status = body.batch_header?.batch_status ?? status;
      for (const raw of body.items ?? []) {
        const parsed = RestItemResourceSchema.safeParse(raw);
        if (parsed.success) items.push(parsed.data);
      }
      heartbeat(`${payoutBatchId}:${page}`);
      if (!body.total_page || page >= body.total_page || (body.items ?? []).length === 0) break;
    }
    return { status, items };
  }

  /** The payout_batch_id PayPal gave each call we made (recorded on the batch's send as correlationId). */
  async function paypalBatchIds(batchId: string): Promise<string[]> {
    const doc = await models.PayoutBatch.findById(batchId, { 'snapshot.send': 1 }).lean();
    const chunks = (doc?.snapshot as { send?: { chunks?: { correlationId?: string | null }[] } } | undefined)?.send
      ?.chunks;
    return (chunks ?? []).map((c) => c.correlationId).filter((id): id is string => !!id);
  }

  /**
   * Item events alone say nothing of the batch: the batch stands where it is (a poke whose events an
   * earlier run already applied is no news, not an unknown status for a person). Only a batch that
   * PayPal is processing or has completed stands; any other is left to the rules (null).
   */
  async function standing(batchId: string, seen: Totals): Promise<'Processed' | 'Completed' | null> {
    const doc = await models.PayoutBatch.findById(batchId, { state: 1 }).lean();
    if (doc?.state === 'completed') return 'Completed';
    if (doc?.state === 'processed') return 'Processed';
    // Submitted: an item report is PayPal processing the batch.
    return doc?.state === 'submitted' && seen.moved + seen.ignored > 0 ? 'Processed' : null;
  }

  /** The batch's counts as its applied sets kept them; counted from the items once if none are kept. */
  async function keptCounts(batchId: string): Promise<ItemCounts> {
    const doc = await models.PayoutBatch.findById(batchId, { itemCounts: 1 }).lean<{ itemCounts?: ItemCounts }>();
    if (!doc?.itemCounts) return mongoItemStore(models).counts(batchId);
    return Object.fromEntries(Object.entries(doc.itemCounts).filter(([, n]) => n !== 0));
  }

  /** `counted`: the slice shifts the batch's kept counts (under its message id) instead of leaving them stale. */
  async function applyReports(
    batchId: string,
    reports: MasspayItemReport[],
    messageId: string,
    total: Totals,
    counted = false,
  ) {
    if (reports.length === 0) return;
    const now = new Date().toISOString();
    const r = await engine().applySlice(batchId, reports, messageId, now, counted ? messageId : undefined);
    total.moved += r.moved;
    total.ignored += r.ignored;
    total.problems.push(...r.problems.slice(0, MAX_PROBLEMS - total.problems.length));
    total.contradictions.push(...r.contradictions.slice(0, MAX_PROBLEMS - total.contradictions.length));
  }

  return {
    /**
     * One Payouts call: the items [from, to) under a sender_batch_id derived from the batch and call.
     * A lost answer or a 5xx is sent again under the same id; PayPal's "already exists" answer means
     * an earlier try got through: we take PayPal's batch and go on. Nothing is ever paid twice.
     */
    async sendRestPayout(
      a: BatchRef & {
        currency: string;
        chunk: { index: number; from: number; to: number };
        emailSubject: string;
      },
    ): Promise<SendChunkOutcome> {
      const found = await clientFor(a);
      if (!found.ok) return { outcome: 'unsendable', message: found.reason, calls: 0 };
      // Whole items, kept by this process (itemCache): PayPal's webhooks for them follow within minutes.
      const known = itemCache(models);
      const stored = await models.PayoutItem.collection
        .find({ ...batchRange(a.batchId), index: { $gte: a.chunk.from, $lt: a.chunk.to } } as never)
        .toArray();
      const docs = stored.map((doc) => known.read(String(doc._id), doc)).sort((x, y) => x.index - y.index);
      if (docs.length !== a.chunk.to - a.chunk.from) {
        return {
          outcome: 'unsendable',
          message: `items ${a.chunk.from + 1}-${a.chunk.to} are not all stored`,
          calls: 0,
        };
      }
      const id = senderBatchId(a.batchId, a.chunk.index);
      const body = payoutsBody({ senderBatchId: id, currency: a.currency, emailSubject: a.emailSubject, items: docs });
      let calls = 0;
      let last = '';
      for (let attempt = 1; attempt <= SEND_TRIES; attempt++) {
        calls++;
        try {
          const created = await found.client.request<{ batch_header?: { payout_batch_id?: string } }>(
            'POST',
            '/v1/payments/payouts',
            { body, requestId: id, context: `Payouts create ${id}` },
          );
          return { outcome: 'acked', correlationId: created.body.batch_header?.payout_batch_id ?? null, calls };
        } catch (err) {
          if (err instanceof PayPalRestError && err.errorName === 'USER_BUSINESS_ERROR') {
            if (err.details.some((d) => d.field === 'SENDER_BATCH_ID')) {
              // PayPal has this call already (an earlier try whose answer was lost): find its batch.
              return { outcome: 'acked', correlationId: linkedBatchId(err), calls };
            }
          }
          if (err instanceof PayPalRestError && !err.retryable) {
            return { outcome: 'refused', code: err.errorName, message: refusalText(err, docs), calls };
          }
          last = (err as Error).message.slice(0, 250);
          heartbeat(`send ${id} try ${attempt}`);
          await new Promise((r) => setTimeout(r, 250 * 4 ** (attempt - 1)));
        }
      }
      return { outcome: 'unreachable', message: last, calls };
    },

    /**
     * Applies what PayPal said of a batch sent through Payouts REST: the verified webhook events
     * waiting for it (slice by slice, by _id range, each slice deleted once applied), and with `poll`
     * PayPal's own view of every item (GET batch, page by page). Both feed the same item rules, so a
     * webhook racing a poll changes an item once; a repeated status changes nothing.
     */
    async applyRestUpdates(a: BatchRef & { poll: boolean; messageId: string }): Promise<RestApplied> {
      const total: Totals = { moved: 0, ignored: 0, problems: [], contradictions: [] };
      const batchStatuses: string[] = [];
      for (let after = `${a.batchId}:`; ;) {
        const events = await models.PayoutEvent.find({ _id: { $gt: after, $lt: `${a.batchId};` } })
          .sort({ _id: 1 })
          .limit(EVENT_SLICE)
          .lean();
        if (events.length === 0) break;
        const reports = events.filter((e) => e.report).map((e) => e.report as MasspayItemReport);
        batchStatuses.push(...events.map((e) => e.batchStatus).filter((s): s is string => !!s));
        const sliceId = `${a.messageId}:${events[0]!._id.slice(a.batchId.length + 1)}`;
        await applyReports(a.batchId, reports, sliceId, total, true);
        await models.PayoutEvent.deleteMany({ _id: { $in: events.map((e) => e._id) } });
        after = events.at(-1)!._id;
        heartbeat(after);
      }
      if (a.poll) {
        const found = await clientFor(a);
        if (!found.ok) return { ok: false, reason: found.reason };
        for (const payoutBatchId of await paypalBatchIds(a.batchId)) {
          const batch = await paypalBatch(found.client, payoutBatchId);
          batchStatuses.push(batch.status);
          for (let i = 0; i < batch.items.length; i += EVENT_SLICE) {
            const reports = batch.items.slice(i, i + EVENT_SLICE).map((item) => restItemReport(item));
            await applyReports(a.batchId, reports, `${a.messageId}:${payoutBatchId}:${i}`, total, true);
          }
        }
      }
      const counts = await keptCounts(a.batchId);
      const open = (counts['Pending'] ?? 0) + (counts['Unclaimed'] ?? 0);
      const statuses = batchStatuses.map((s) => restBatchStatus(s, open)).filter((s) => s !== null);
      const paymentStatus = statuses.includes('Denied')
        ? 'Denied'
        : (statuses.at(-1) ?? (open === 0 && total.moved > 0 ? 'Completed' : await standing(a.batchId, total)));
      return { ok: true, paymentStatus, counts, ...total };
    },

    /** PayPal's cancel of one UNCLAIMED item: its money comes back (applied as PayPal's answer says). */
    async cancelUnclaimedItem(
      a: BatchRef & { uniqueId: string; messageId: string },
    ): Promise<{ ok: true; moved: number; counts: ItemCounts } | { ok: false; reason: string }> {
      const found = await clientFor(a);
      if (!found.ok) return found;
      for (const payoutBatchId of await paypalBatchIds(a.batchId)) {
        const batch = await paypalBatch(found.client, payoutBatchId);
        const item = batch.items.find((i) => i.payout_item.sender_item_id === a.uniqueId);
        if (!item) continue;
        let answer: RestItemResource;
        try {
          const res = await found.client.request<unknown>(
            'POST',
            `/v1/payments/payouts-item/${encodeURIComponent(item.payout_item_id)}/cancel`,
            { context: `cancel payout item ${a.uniqueId}` },
          );
          answer = RestItemResourceSchema.parse(res.body);
        } catch (err) {
          if (err instanceof PayPalRestError && !err.retryable) {
            return { ok: false, reason: `PayPal refused the cancel: ${err.errorName}` };
          }
          throw err;
        }
        const total: Totals = { moved: 0, ignored: 0, problems: [], contradictions: [] };
        await applyReports(a.batchId, [restItemReport(answer)], a.messageId, total);
        return { ok: true, moved: total.moved, counts: await mongoItemStore(models).counts(a.batchId) };
      }
      return { ok: false, reason: `PayPal shows no item ${a.uniqueId} in this batch's Payouts` };
    },
  };
}

type Totals = { moved: number; ignored: number; problems: string[]; contradictions: PayoutContradiction[] };

/** PayPal's duplicate answer links the batch it already has for our sender_batch_id. */
function linkedBatchId(err: PayPalRestError): string | null {
  for (const link of err.links) {
    const m = /\/v1\/payments\/payouts\/([A-Za-z0-9]+)(?:\?|$)/.exec(link.href);
    if (m) return m[1]!;
  }
  return null;
}

/** VALIDATION_ERROR names items by position (`items[3].receiver`): said with our unique ids. */
function refusalText(err: PayPalRestError, docs: { uniqueId: string }[]): string {
  const named = err.details.map((d) => {
    const m = /^items\[(\d+)\]\.(\w+)/.exec(d.field ?? '');
    const item = m ? docs[Number(m[1])] : undefined;
    return item ? `item ${item.uniqueId} (${m![2]}): ${d.issue ?? 'invalid'}` : `${d.field ?? '?'}: ${d.issue ?? ''}`;
  });
  return `${err.message}${named.length ? `; ${named.join('; ')}` : ''}`.slice(0, 300);
}
