import crypto from 'node:crypto';
import Router from '@koa/router';
import type { AppDeps } from '../shared/http/deps';
import { HttpError } from '../shared/http/errors';
import { readJson } from '../shared/http/json-body';
import type { Context } from 'koa';
import {
  CreatePayoutSchema,
  PayoutBatchStateSchema,
  PayoutItemSchema,
  MASSPAY_MAX_ITEMS,
  UNIQUE_ID_MAX_CHARS,
  newPayoutItem,
  payoutItemId,
  type CapExceeded,
  type PayoutBatchState,
  type PayoutItem,
} from './state';
import { initialBatchState, wentThroughApi } from './rules';
import { refusedState, reserveAtCreation, reservedState } from './reserve-at-creation';
import { inParallel } from './items-engine';
import type { Integration } from '../integrations/schema';
import { describeMoney, formatMinor } from '../shared/money';
import { IntegrationIdKey, PayoutBatchIdKey, PayoutStateKey, payoutWorkflowId } from '../shared/contract';
import { getIntegration } from '../integrations/store';
import { Ledger, accountIdOf, type AccountHead } from '../shared/ledger';
import { isDuplicateKey } from '../shared/db/duplicate-keys';
import { answerDecision, decideByUpdate } from '../shared/http/operator-update';
import { batchRange } from '../../activities/masspay';
import {
  MASSPAY_BATCH,
  MASSPAY_OPERATOR_ACTIONS,
  masspayActionUpdate,
  type MasspayActionPath,
  type MasspayBatchInput,
  type MasspayBatchWorkflow,
  batchWorkflowInput,
} from './contract';

/**
 * Who is acting on a batch: today the body's `operator` field, as typed. The one place the
 * operators issue replaces with the authenticated identity.
 */
function actingOperator(_ctx: Context, body: unknown): unknown {
  return body !== null && typeof body === 'object' ? (body as { operator?: unknown }).operator : undefined;
}

/** Unique ids go to PayPal and come back in IPNs: short, no spaces, unambiguous to read aloud. */
const ID_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const randomId = (length: number) => Array.from(crypto.randomBytes(length), (b) => ID_ALPHABET[b % 32]).join('');
/** Sortable by creation time (the list's pagination order), then random. */
const batchIdPrefix = (ms: number) => `PB${ms.toString(36).toUpperCase()}`;
const newBatchId = () => `${batchIdPrefix(Date.now())}${randomId(6)}`;
const DAY_MS = 86_400_000;
/** A full batch (PAYOUT_BATCH_MAX_ITEMS) of items of up to ~1 KB each. */
const CREATE_MAX_BODY = '32mb';
/** Payees read at once while a batch is checked. */
const PAYEES_AT_ONCE = 16;
/** A batch's items and unique-id claims go in as inserts of this many documents, INSERTS_AT_ONCE at once. */
const INSERT_CHUNK = 1000;
const INSERTS_AT_ONCE = 3;
const chunks = <T>(list: T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(list.length / size) }, (_, k) => list.slice(k * size, (k + 1) * size));

const itemView = (i: PayoutItem) => ({
  uniqueId: i.uniqueId,
  customerId: i.customerId,
  receiverEmail: i.receiverEmail,
  amountMinor: i.amountMinor,
  state: i.state,
});

/**
 * Mass Pay batches we send (admin API, under /admin: the app-level guard covers it). Creating a
 * batch checks everything PayPal would refuse and every payee's balance before anything is stored;
 * the batch's workflow then reserves the money and takes every later decision.
 */
export function payoutRoutes(deps: AppDeps): Router {
  const { db, client, config } = deps;
  const { models } = db;
  const ledger = new Ledger(models);
  const router = new Router({ prefix: '/admin/payouts', sensitive: true });

  const loadBatch = async (id: string): Promise<PayoutBatchState> => {
    const doc = await models.PayoutBatch.findById(id, { snapshot: 1 }).lean();
    if (!doc) throw new HttpError(404, `no payout batch ${id}`);
    return PayoutBatchStateSchema.parse(doc.snapshot);
  };
  const loadItems = async (batchId: string): Promise<PayoutItem[]> =>
    (await models.PayoutItem.find(batchRange(batchId)).lean())
      .map((d) => PayoutItemSchema.parse(d))
      .sort((a, b) => a.index - b.index);

  router.post('/', async (ctx) => {
    // PAYOUT_BATCH_MAX_ITEMS items of up to ~1 KB each (notes included).
    const req = CreatePayoutSchema.parse(await readJson(ctx, CREATE_MAX_BODY));
    const integration = await getIntegration(models, req.integrationId);
    if (!integration) throw new HttpError(404, `no integration ${req.integrationId}`);
    if (!(integration.allowedCurrencies as string[]).includes(req.currency)) {
      throw new HttpError(
        422,
        `currency: ${req.currency} is not among ${integration.id}'s ` +
          `currencies (${integration.allowedCurrencies.join(', ')})`,
      );
    }
    const mode = integration.mode;
    // Every payee exists, is paid only at an address registered for them, and can afford every item
    // of theirs, in order; nothing is stored (nor reserved) before.
    const available = new Map<string, number>();
    const registered = new Map<string, Set<string>>();
    const heads = new Map<string, AccountHead>();
    // Every payee's addresses and balance read up front, several at once, by _id (a batch of 15,000
    // items may name thousands of payees), a payee's record and balance side by side (a balance read for
    // an unknown id writes nothing); the checks below then go in item order.
    await inParallel([...new Set(req.items.map((i) => i.customerId))], PAYEES_AT_ONCE, async (customerId) => {
      const [customer, head] = await Promise.all([
        models.Customer.findById(customerId, { paypalEmails: 1 }).lean(),
        ledger.head(customerId, req.currency, mode),
      ]);
      if (!customer) return;
      registered.set(customerId, new Set(customer.paypalEmails.map((e) => e.trim().toLowerCase())));
      heads.set(accountIdOf(customerId, req.currency, mode), head);
      available.set(customerId, head.balanceMinor);
    });
    for (const [i, item] of req.items.entries()) {
      if (!registered.has(item.customerId)) {
        throw new HttpError(400, `items[${i}].customerId: no customer ${item.customerId}`, {
          item: i,
          field: 'customerId',
        });
      }
      if (!registered.get(item.customerId)!.has(item.receiverEmail.trim().toLowerCase())) {
        // Money out goes only where the customer's own PayPal addresses are: a payout cannot be
        // redirected to an address typed into the request.
        throw new HttpError(
          422,
          `items[${i}].receiverEmail: not a PayPal address registered for customer ${item.customerId} ` +
            '(their paypalEmails); nothing was reserved',
          { item: i, field: 'receiverEmail' },
        );
      }
      const left = available.get(item.customerId)! - item.amountMinor;
      if (left < 0) {
        const has = describeMoney(available.get(item.customerId)!, req.currency);
        throw new HttpError(
          409,
          `items[${i}].amount: ${describeMoney(item.amountMinor, req.currency)} is beyond ` +
            `${item.customerId}'s ${mode} balance left for this batch (${has}); nothing was reserved`,
          { item: i, field: 'amount', customerIds: [item.customerId] },
        );
      }
      available.set(item.customerId, left);
    }

    const batchId = newBatchId();
    const uniqueIds = await claimUniqueIds(batchId, req.items.length, integration.id, mode);
    // Each claims its reservation, posted below before the answer (see reserveAtCreation).
    const items: PayoutItem[] = req.items.map((item, index) =>
      newPayoutItem({
        batchId,
        uniqueId: uniqueIds[index]!,
        index,
        integrationId: integration.id,
        customerId: item.customerId,
        receiverEmail: item.receiverEmail,
        currency: req.currency,
        mode,
        amountMinor: item.amountMinor,
        note: item.note,
      }),
    );
    // Built whole from the parsed request: inserted lean (no casting of 15,000 documents), a few
    // chunks at once (the database takes inserts on several connections faster than on one).
    await inParallel(chunks(items, INSERT_CHUNK), INSERTS_AT_ONCE, async (chunk) => {
      await models.PayoutItem.insertMany(
        chunk.map((i) => ({ _id: payoutItemId(batchId, i.uniqueId), ...i })),
        { lean: true },
      );
    });
    const totalMinor = items.reduce((sum, i) => sum + i.amountMinor, 0);
    const capsExceeded = await capsExceededBy(integration, batchId, req.currency, totalMinor);
    const state = initialBatchState({
      id: batchId,
      integrationId: integration.id,
      currency: req.currency,
      mode,
      createdBy: req.operator,
      createdAt: new Date().toISOString(),
      note: req.note ?? null,
      itemCount: items.length,
      totalMinor,
      capsExceeded,
    });
    await models.PayoutBatch.create({
      _id: batchId,
      integrationId: integration.id,
      state: state.state,
      currency: req.currency,
      itemCount: items.length,
      totalMinor,
      createdBy: req.operator,
      snapshot: state,
    });
    // Two batches created at once each saw the day without the other: now stored, the later check
    // sees both, so at least one of them needs the second approver (the workflow is not started yet).
    if (!capsExceeded.some((c) => c.cap === 'per_day')) {
      const now = await capsExceededBy(integration, batchId, req.currency, totalMinor);
      const perDay = now.filter((c) => c.cap === 'per_day');
      if (perDay.length > 0) {
        state.capsExceeded = [...capsExceeded, ...perDay];
        state.requiredApprovals = 2;
        await models.PayoutBatch.updateOne({ _id: batchId }, { $set: { snapshot: state } });
      }
    }
    // Answered only once every reservation is posted: a payee another batch got to first is a 409
    // naming them, with whatever was posted for this batch released again (nothing stays reserved).
    const at = new Date().toISOString();
    const reservation = await reserveAtCreation(models, items, { operator: req.operator, now: at, heads });
    const settled = reservation.ok ? reservedState(state, at) : refusedState(state, reservation.short, at);
    await models.PayoutBatch.updateOne({ _id: batchId }, { $set: { state: settled.state, snapshot: settled } });
    if (!reservation.ok) {
      await models.AuditEvent.create({
        at: new Date(),
        actor: req.operator,
        action: 'payout_create_refused',
        reason: req.note,
        integrationId: integration.id,
        txnId: batchId,
        details: { short: reservation.short },
      });
      const named = reservation.short
        .map((p) => `${p.customerId} (${describeMoney(p.askedMinor, req.currency)} asked)`)
        .join(', ');
      throw new HttpError(
        409,
        `the ${mode} balance of ${named} no longer covers this batch (another batch reserved it first); ` +
          'nothing was reserved',
        { field: 'amount', customerIds: reservation.short.map((p) => p.customerId), batchId },
      );
    }
    await models.AuditEvent.create({
      at: new Date(),
      actor: req.operator,
      action: 'payout_create',
      reason: req.note,
      integrationId: integration.id,
      txnId: batchId,
      details: {
        items: items.length,
        total: describeMoney(totalMinor, req.currency),
        requiredApprovals: state.requiredApprovals,
        capsExceeded: state.capsExceeded,
      },
    });
    // Stored first: should this start fail, any operator action starts the workflow (signalWithStart).
    await client.workflow.start<MasspayBatchWorkflow>(MASSPAY_BATCH, {
      workflowId: payoutWorkflowId(batchId),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [batchWorkflowInput(batchId, config)],
      typedSearchAttributes: searchAttributes(batchId, integration.id),
      staticSummary: `Mass Pay ${batchId}: ${items.length} item(s), ${describeMoney(totalMinor, req.currency)}`,
    });
    ctx.status = 201;
    ctx.body = {
      id: batchId,
      state: settled.state,
      reserved: settled.reserved,
      requiredApprovals: state.requiredApprovals,
      capsExceeded: state.capsExceeded,
      items: items.map(itemView),
    };
  });

  /**
   * The integration's caps this batch is over, in its currency: its own total (per batch), and the
   * total of the UTC day's batches with it (per day; cancelled and denied ones left out). The day's
   * batches are one bounded _id range: ids start with their creation time.
   */
  async function capsExceededBy(
    integration: Integration,
    batchId: string,
    currency: string,
    totalMinor: number,
  ): Promise<CapExceeded[]> {
    const caps = integration.payoutCaps;
    const exceeded: CapExceeded[] = [];
    const perBatch = caps?.perBatchMinor[currency];
    if (perBatch !== undefined && totalMinor > perBatch)
      exceeded.push({ cap: 'per_batch', currency, capMinor: perBatch, totalMinor });
    const perDay = caps?.perDayMinor[currency];
    if (perDay === undefined) return exceeded;
    const dayStart = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const day = await models.PayoutBatch.find(
      { _id: { $gte: batchIdPrefix(dayStart), $lt: batchIdPrefix(dayStart + DAY_MS) } },
      { integrationId: 1, currency: 1, state: 1, totalMinor: 1 },
    ).lean();
    const others = day
      .filter((b) => b._id !== batchId && b.integrationId === integration.id && b.currency === currency)
      .filter((b) => b.state !== 'cancelled' && b.state !== 'denied')
      .reduce((sum, b) => sum + b.totalMinor, 0);
    const dayTotal = others + totalMinor;
    if (dayTotal > perDay) exceeded.push({ cap: 'per_day', currency, capMinor: perDay, totalMinor: dayTotal });
    return exceeded;
  }

  /** Inserting `u:<id>` is the uniqueness check across all batches; a collision (rare) draws again. */
  async function claimUniqueIds(
    batchId: string,
    count: number,
    integrationId: string,
    mode: string,
  ): Promise<string[]> {
    const ids: string[] = [];
    for (let attempt = 0; ids.length < count; attempt++) {
      if (attempt > 5) throw new Error(`could not draw ${count} unique ids for ${batchId}`);
      const wanted = Array.from({ length: count - ids.length }, () => randomId(UNIQUE_ID_MAX_CHARS));
      const docs = wanted.map((uniqueId) => ({ _id: `u:${uniqueId}`, batchId, uniqueId, integrationId, mode }));
      await inParallel(chunks(docs, INSERT_CHUNK), INSERTS_AT_ONCE, async (chunk) => {
        try {
          await models.PayoutRef.insertMany(chunk, { ordered: false, lean: true });
          ids.push(...chunk.map((d) => d.uniqueId));
        } catch (err) {
          if (!isDuplicateKey(err) && !(err as { writeErrors?: unknown }).writeErrors) throw err;
          // Some were another batch's already: keep the ones this batch now holds, draw the rest again.
          const held = await models.PayoutRef.find(
            { _id: { $in: chunk.map((d) => d._id) } },
            { batchId: 1, uniqueId: 1 },
          ).lean();
          ids.push(...held.filter((d) => d.batchId === batchId).map((d) => d.uniqueId));
        }
      });
    }
    return ids;
  }

  router.get('/', async (ctx) => {
    const limit = Math.min(Math.max(Number(ctx.query.limit ?? 50) || 50, 1), 200);
    const after = typeof ctx.query.after === 'string' ? ctx.query.after : undefined;
    const docs = await models.PayoutBatch.find(after ? { _id: { $gt: after } } : {})
      .sort({ _id: 1 })
      .limit(limit + 1)
      .lean();
    const page = docs.slice(0, limit).map((d) => {
      const s = PayoutBatchStateSchema.parse(d.snapshot);
      return {
        id: s.id,
        integrationId: s.integrationId,
        state: s.state,
        currency: s.currency,
        itemCount: s.itemCount,
        totalMinor: s.totalMinor,
        counts: s.counts,
        attention: s.attention,
        createdBy: s.createdBy,
        createdAt: s.createdAt,
      };
    });
    ctx.body = { batches: page, next: docs.length > limit ? page.at(-1)!.id : null };
  });

  router.get('/:id', async (ctx) => {
    const batch = await loadBatch(ctx.params.id!);
    const items = await loadItems(batch.id);
    ctx.body = {
      ...batch,
      total: formatMinor(batch.totalMinor, batch.currency),
      items: items.map((i) => ({
        ...itemView(i),
        amount: formatMinor(i.amountMinor, i.currency),
        masspayTxnId: i.masspayTxnId,
        feeMinor: i.feeMinor,
        reasonCode: i.reasonCode,
        reserved: i.reserved,
        released: i.released,
        problems: i.problems,
        contradictions: i.contradictions,
        history: i.history,
      })),
    };
  });

  router.get('/:id/masspay-file', async (ctx) => {
    const batch = await loadBatch(ctx.params.id!);
    if (batch.state === 'cancelled' || batch.state === 'denied')
      throw new HttpError(409, `${batch.id} is ${batch.state}: nothing to upload`);
    if (wentThroughApi(batch)) {
      // Uploading what the API sent (or may have sent) could pay every item twice.
      throw new HttpError(409, `${batch.id} went through PayPal's API: its upload file is not available`);
    }
    if (batch.itemCount > MASSPAY_MAX_ITEMS) {
      throw new HttpError(
        409,
        `${batch.id} has ${batch.itemCount} items: Mass Pay's upload file takes at most ` +
          `${MASSPAY_MAX_ITEMS}; send it through Payouts REST`,
      );
    }
    const items = await loadItems(batch.id);
    // PayPal's upload format: receiver, amount, currency, unique id, note; tab-delimited, one currency.
    ctx.type = 'text/plain; charset=utf-8';
    ctx.set('content-disposition', `attachment; filename="${batch.id}.txt"`);
    ctx.body = items
      .map(
        (i) =>
          [i.receiverEmail, formatMinor(i.amountMinor, i.currency), i.currency, i.uniqueId, i.note ?? ''].join('\t') +
          '\n',
      )
      .join('');
  });

  /**
   * Every decision on a batch (approve, submitted, send, cancel, resolve, stop-waiting, reconcile,
   * clear-contradiction) is the batch workflow's `operatorAction` update: answered once applied
   * (reservations released, items resolved, PayPal searched), or refused naming the rule; see
   * decideByUpdate. A send answers once its calls are planned: `inFlight` counts those still to make.
   */
  for (const path of Object.keys(MASSPAY_OPERATOR_ACTIONS) as MasspayActionPath[]) {
    // Actions on one item name it in the path: /items/<uniqueId>/resolve, /items/<uniqueId>/cancel-unclaimed.
    const onItem = path === 'resolve' || path === 'cancel-unclaimed';
    const route = onItem ? `/:id/items/:uniqueId/${path}` : `/:id/${path}`;
    router.post(route, async (ctx) => {
      const body = await readJson(ctx);
      const batch = await loadBatch(ctx.params.id!);
      const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {};
      const request = {
        ...fields,
        operator: actingOperator(ctx, body),
        ...(onItem ? { uniqueId: ctx.params.uniqueId } : {}),
      };
      const answer = await decideByUpdate(client, startBatch(batch), masspayActionUpdate, {
        action: path,
        body: request,
      });
      const proposed = answer.result.ok ? answer.result.needsSecondOperator : undefined;
      // Before the waiting period a release is a request: another operator resolving the same way confirms it.
      answerDecision(ctx, answer, (s) => s, proposed ? { needsSecondOperator: true, until: proposed.until } : {});
    });
  }

  /** How a batch's workflow is started when an action finds it closed (settled and idle) or never started. */
  const startBatch = (batch: PayoutBatchState) => ({
    type: MASSPAY_BATCH,
    options: {
      workflowId: payoutWorkflowId(batch.id),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [batchWorkflowInput(batch.id, config)] as [MasspayBatchInput],
      typedSearchAttributes: searchAttributes(batch.id, batch.integrationId),
    },
  });

  return router;
}

function searchAttributes(batchId: string, integrationId: string) {
  return [
    { key: PayoutBatchIdKey, value: batchId },
    { key: IntegrationIdKey, value: integrationId },
    { key: PayoutStateKey, value: 'created' },
  ];
}
