import crypto from 'node:crypto';
import Router from '@koa/router';
import type { SignalDefinition } from '@temporalio/client';
import type { AppDeps } from '../shared/http/deps';
import { HttpError } from '../shared/http/errors';
import { readJson } from '../shared/http/json-body';
import {
  ClearContradictionActionSchema,
  CreatePayoutSchema,
  PayoutActionSchema,
  PayoutBatchStateSchema,
  PayoutItemSchema,
  ResolveItemActionSchema,
  SendActionSchema,
  CancelUnclaimedActionSchema,
  SubmittedActionSchema,
  UNIQUE_ID_MAX_CHARS,
  payoutItemId,
  type CapExceeded,
  type PayoutBatchState,
  type PayoutItem,
} from './state';
import {
  batchRefusal,
  initialBatchState,
  itemRefusal,
  resolvePlan,
  wentThroughApi,
  type BatchOperatorInput,
} from './rules';
import type { Integration } from '../integrations/schema';
import { describeMoney, formatMinor } from '../shared/money';
import { IntegrationIdKey, PayoutBatchIdKey, PayoutStateKey, payoutWorkflowId } from '../shared/contract';
import { getIntegration } from '../integrations/store';
import { Ledger, isDuplicateKey } from '../shared/ledger';
import { sendCredentials } from './nvp';
import { batchRange } from '../../activities/masspay';
import { batchWorkflowInput } from './contract';
import { restCredentialNames, restCredentialsFromEnv } from '../shared/paypal/rest-client';
import {
  approvePayoutSignal,
  cancelPayoutSignal,
  clearPayoutContradictionSignal,
  reconcilePayoutSignal,
  resolvePayoutItemSignal,
  sendPayoutSignal,
  cancelUnclaimedPayoutSignal,
  stopWaitingPayoutSignal,
  submittedPayoutSignal,
  MASSPAY_BATCH,
  type MasspayBatchWorkflow,
} from './contract';

/** Unique ids go to PayPal and come back in IPNs: short, no spaces, unambiguous to read aloud. */
const ID_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const randomId = (length: number) => Array.from(crypto.randomBytes(length), (b) => ID_ALPHABET[b % 32]).join('');
/** Sortable by creation time (the list's pagination order), then random. */
const batchIdPrefix = (ms: number) => `PB${ms.toString(36).toUpperCase()}`;
const newBatchId = () => `${batchIdPrefix(Date.now())}${randomId(6)}`;
const DAY_MS = 86_400_000;

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
    // 5,000 items of up to ~1 KB each (notes included).
    const req = CreatePayoutSchema.parse(await readJson(ctx, '8mb'));
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
    for (const [i, item] of req.items.entries()) {
      if (!registered.has(item.customerId)) {
        const customer = await models.Customer.findById(item.customerId, { paypalEmails: 1 }).lean();
        if (!customer) {
          throw new HttpError(400, `items[${i}].customerId: no customer ${item.customerId}`, {
            item: i,
            field: 'customerId',
          });
        }
        registered.set(item.customerId, new Set(customer.paypalEmails.map((e) => e.trim().toLowerCase())));
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
      if (!available.has(item.customerId)) {
        const balance =
          (await ledger.balances(item.customerId, mode)).find((b) => b.currency === req.currency)?.balanceMinor ?? 0;
        available.set(item.customerId, balance);
      }
      const left = available.get(item.customerId)! - item.amountMinor;
      if (left < 0) {
        const has = describeMoney(available.get(item.customerId)!, req.currency);
        throw new HttpError(
          409,
          `items[${i}].amount: ${describeMoney(item.amountMinor, req.currency)} is beyond ` +
            `${item.customerId}'s ${mode} balance left for this batch (${has}); nothing was reserved`,
          { item: i, field: 'amount' },
        );
      }
      available.set(item.customerId, left);
    }

    const batchId = newBatchId();
    const uniqueIds = await claimUniqueIds(batchId, req.items.length, integration.id, mode);
    const items: PayoutItem[] = req.items.map((item, index) => ({
      batchId,
      uniqueId: uniqueIds[index]!,
      index,
      integrationId: integration.id,
      customerId: item.customerId,
      receiverEmail: item.receiverEmail,
      currency: req.currency,
      mode,
      amountMinor: item.amountMinor,
      note: item.note ?? null,
      state: 'Pending',
      reserved: false,
      released: false,
      masspayTxnId: null,
      feeMinor: null,
      reasonCode: null,
      problems: [],
      contradictions: [],
      history: [],
    }));
    for (let start = 0; start < items.length; start += 1000) {
      await models.PayoutItem.insertMany(
        items.slice(start, start + 1000).map((i) => ({ _id: payoutItemId(batchId, i.uniqueId), ...i })),
      );
    }
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
      state: state.state,
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
      try {
        await models.PayoutRef.insertMany(docs, { ordered: false });
        ids.push(...wanted);
      } catch (err) {
        if (!isDuplicateKey(err) && !(err as { writeErrors?: unknown }).writeErrors) throw err;
        // Some were another batch's already: keep the ones this batch now holds, draw the rest again.
        const held = await models.PayoutRef.find(
          { _id: { $in: docs.map((d) => d._id) } },
          { batchId: 1, uniqueId: 1 },
        ).lean();
        ids.push(...held.filter((d) => d.batchId === batchId).map((d) => d.uniqueId));
      }
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

  const actions = [
    { path: 'approve', type: 'approve', schema: PayoutActionSchema, signal: approvePayoutSignal },
    { path: 'submitted', type: 'submitted', schema: SubmittedActionSchema, signal: submittedPayoutSignal },
    { path: 'cancel', type: 'cancel', schema: PayoutActionSchema, signal: cancelPayoutSignal },
    { path: 'stop-waiting', type: 'stopWaiting', schema: PayoutActionSchema, signal: stopWaitingPayoutSignal },
    { path: 'reconcile', type: 'reconcile', schema: PayoutActionSchema, signal: reconcilePayoutSignal },
    {
      path: 'clear-contradiction',
      type: 'clearContradiction',
      schema: ClearContradictionActionSchema,
      signal: clearPayoutContradictionSignal,
    },
  ] as const;
  for (const a of actions) {
    router.post(`/:id/${a.path}`, async (ctx) => {
      const action = a.schema.parse(await readJson(ctx));
      const batch = await loadBatch(ctx.params.id!);
      ctx.body = await decideAndSignal(
        batch,
        { type: a.type, action } as BatchOperatorInput,
        a.signal as typeof approvePayoutSignal,
        action,
      );
      ctx.status = 202;
    });
  }
  /**
   * Sends an approved batch through PayPal: Payouts REST (`"channel": "rest"`, the default when the
   * integration names a REST app) or the MassPay NVP API (`"api"`) with the integration's credentials.
   */
  router.post('/:id/send', async (ctx) => {
    const asked = SendActionSchema.parse(await readJson(ctx));
    const batch = await loadBatch(ctx.params.id!);
    const integration = await models.Integration.findById(batch.integrationId, {
      mode: 1,
      nvpCredentialsEnv: 1,
      payoutsRestEnv: 1,
    }).lean();
    const channel = batch.send?.channel ?? asked.channel ?? (integration?.payoutsRestEnv ? 'rest' : 'api');
    const action = { ...asked, channel };
    if (!batchRefusal(batch, { type: 'send', action })) {
      const ready = sendReady(channel, integration, batch);
      if (!ready.ok) {
        await refusedAudit(batch, 'send', action, ready.reason);
        throw new HttpError(422, ready.reason);
      }
    }
    ctx.body = { ...(await decideAndSignal(batch, { type: 'send', action }, sendPayoutSignal, action)), channel };
    ctx.status = 202;
  });
  /** Payouts REST: PayPal cancels an UNCLAIMED item and its money comes back (approver's decision). */
  router.post('/:id/items/:uniqueId/cancel-unclaimed', async (ctx) => {
    const body = (await readJson(ctx)) as Record<string, unknown>;
    const action = CancelUnclaimedActionSchema.parse({
      ...(body && typeof body === 'object' ? body : {}),
      uniqueId: ctx.params.uniqueId,
    });
    const batch = await loadBatch(ctx.params.id!);
    const item = await models.PayoutItem.findById(payoutItemId(batch.id, action.uniqueId), { state: 1 }).lean();
    if (!item) throw new HttpError(404, `no item ${action.uniqueId} in ${batch.id}`);
    if (item.state !== 'Unclaimed') {
      const rule = `${action.uniqueId} is ${item.state}: only an Unclaimed item can be cancelled at PayPal`;
      await refusedAudit(batch, 'cancelUnclaimed', action, rule);
      throw new HttpError(409, rule);
    }
    ctx.body = await decideAndSignal(batch, { type: 'cancelUnclaimed', action }, cancelUnclaimedPayoutSignal, action);
    ctx.status = 202;
  });
  router.post('/:id/items/:uniqueId/resolve', async (ctx) => {
    const body = (await readJson(ctx)) as Record<string, unknown>;
    const action = ResolveItemActionSchema.parse({
      ...(body && typeof body === 'object' ? body : {}),
      uniqueId: ctx.params.uniqueId,
    });
    const batch = await loadBatch(ctx.params.id!);
    const item = await models.PayoutItem.findById(payoutItemId(batch.id, action.uniqueId), { state: 1 }).lean();
    if (!item) throw new HttpError(404, `no item ${action.uniqueId} in ${batch.id}`);
    const why = itemRefusal(item.state as PayoutItem['state'], action.state);
    if (why) {
      await refusedAudit(batch, 'resolve', action, `${action.uniqueId}: ${why}`);
      throw new HttpError(409, `${action.uniqueId}: ${why}`);
    }
    const plan = resolvePlan(batch, action, {
      now: new Date().toISOString(),
      deadlines: batchWorkflowInput(batch.id, config).deadlines,
    });
    const signalled = await decideAndSignal(batch, { type: 'resolve', action }, resolvePayoutItemSignal, action);
    // Before the waiting period a release is a request: another operator resolving the same way confirms it.
    ctx.body = plan.kind === 'propose' ? { ...signalled, needsSecondOperator: true, until: plan.until } : signalled;
    ctx.status = 202;
  });

  async function refusedAudit(
    batch: PayoutBatchState,
    type: string,
    action: { operator: string; note: string },
    rule: string,
  ) {
    await models.AuditEvent.create({
      at: new Date(),
      actor: action.operator,
      action: `payout_${type}_refused`,
      reason: action.note,
      integrationId: batch.integrationId,
      txnId: batch.id,
      details: { refused: rule, via: 'admin_api' },
    });
  }

  /** The workflow refuses the same things (for signals from the Web UI); here refusals answer at once. */
  async function decideAndSignal<Payload>(
    batch: PayoutBatchState,
    input: BatchOperatorInput,
    signal: SignalDefinition<[Payload]>,
    payload: Payload,
  ) {
    const refusal = batchRefusal(batch, input);
    if (refusal) {
      await refusedAudit(batch, input.type, input.action, refusal.rule);
      throw new HttpError(refusal.status, refusal.rule);
    }
    const workflowId = payoutWorkflowId(batch.id);
    await client.workflow.signalWithStart<MasspayBatchWorkflow, [Payload]>(MASSPAY_BATCH, {
      workflowId,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [batchWorkflowInput(batch.id, config)],
      signal,
      signalArgs: [payload],
      typedSearchAttributes: searchAttributes(batch.id, batch.integrationId),
    });
    return { workflowId, signal: signal.name, accepted: true };
  }

  return router;
}

function searchAttributes(batchId: string, integrationId: string) {
  return [
    { key: PayoutBatchIdKey, value: batchId },
    { key: IntegrationIdKey, value: integrationId },
    { key: PayoutStateKey, value: 'created' },
  ];
}

/** Whether the integration can send through `channel` now: its credentials are set, its mode is the batch's. */
function sendReady(
  channel: 'api' | 'rest',
  integration: { mode: string; nvpCredentialsEnv?: string | null; payoutsRestEnv?: string | null } | null,
  batch: PayoutBatchState,
): { ok: true } | { ok: false; reason: string } {
  if (channel === 'api') {
    return sendCredentials(
      integration && {
        id: batch.integrationId,
        mode: integration.mode as PayoutBatchState['mode'],
        nvpCredentialsEnv: integration.nvpCredentialsEnv,
      },
      batch,
      process.env,
    );
  }
  if (!integration) return { ok: false, reason: `integration ${batch.integrationId} no longer exists` };
  if (integration.mode !== batch.mode)
    return {
      ok: false,
      reason: `integration ${batch.integrationId} is ${integration.mode} now; ${batch.id} is ${batch.mode}`,
    };
  if (!integration.payoutsRestEnv)
    return { ok: false, reason: `integration ${batch.integrationId} names no REST app: set its payoutsRestEnv` };
  if (!restCredentialsFromEnv(integration.payoutsRestEnv, process.env)) {
    const names = restCredentialNames(integration.payoutsRestEnv);
    return { ok: false, reason: `${names.clientId} / ${names.secret} are not set` };
  }
  return { ok: true };
}
