import Router from '@koa/router';
import type { Context } from 'koa';
import type { AppDeps } from '../shared/http/deps';
import { HttpError } from '../shared/http/errors';
import { readJson } from '../shared/http/json-body';
import { pageOf, sendPage } from '../shared/http/paginate';
import { IntegrationIdSchema, IntegrationInputSchema } from '../integrations/schema';
import { formatMinor } from '../shared/money';
import {
  OperatorActionSchema,
  PAYMENT_OPERATOR_ACTIONS,
  type PaymentOperatorActionName,
} from '../shared/operator-actions';
import { answerDecision, decideByUpdate } from '../shared/http/operator-update';
import { PAYMENT_LIFECYCLE, paymentActionUpdate } from '../payments/contract';
import { paymentStartOptions } from '../payments/contract';
import { rejectMessageSignal, retryVerificationSignal } from '../messages/contract';
import { getIntegration, saveIntegration, toIntegration } from '../integrations/store';
import { saveCustomer } from '../customers/store';
import { Ledger, type MoneyMode } from '../shared/ledger';
import { publicBaseUrl } from '../shared/config';
import { ConfigActorSchema, UNNAMED_ACTOR } from '../shared/config-audit';

/**
 * Who is acting: today the body's `operator` field, as typed. The one place the operators issue
 * replaces with the authenticated identity.
 */
function actingOperator(_ctx: Context, body: unknown): unknown {
  return body !== null && typeof body === 'object' ? (body as { operator?: unknown }).operator : undefined;
}

export function adminRoutes(deps: AppDeps): Router {
  const { db, client, config } = deps;
  const { models } = db;
  const ledger = new Ledger(models);
  // Mounted behind the token by adminApiRoutes (and adminGuard in app.ts). Case-sensitive so that only the
  // canonical spelling of a route exists.
  const router = new Router({ prefix: '/admin', sensitive: true });

  const withIpnUrl = <T extends { id: string }>(i: T) => ({ ...i, ipnUrl: `${publicBaseUrl(config)}/ipn/${i.id}` });
  const idParam = (value: string) => {
    const parsed = IntegrationIdSchema.safeParse(value);
    if (!parsed.success)
      throw new HttpError(400, `bad id ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  };

  /** Who the audit names for a configuration change (see ConfigActorSchema). */
  const actorOf = (input: unknown) => ConfigActorSchema.parse(input).operator ?? UNNAMED_ACTOR;

  router.put('/integrations/:id', async (ctx) => {
    const id = idParam(ctx.params.id!);
    const input = await readJson(ctx);
    if (IntegrationInputSchema.parse(input).mode === 'sandbox' && !config.ALLOW_SANDBOX_INTEGRATIONS) {
      const why = 'sandbox integrations are not allowed here (ALLOW_SANDBOX_INTEGRATIONS is off)';
      throw new HttpError(422, `${why}: their PayPal test payments are not money`);
    }
    ctx.body = withIpnUrl(await saveIntegration(models, id, input, actorOf(input)));
    deps.integrations.forget(id);
  });
  router.get('/integrations/:id', async (ctx) => {
    const integration = await getIntegration(models, ctx.params.id!);
    if (!integration) throw new HttpError(404, `no integration ${ctx.params.id!}`);
    ctx.body = withIpnUrl(integration);
  });
  router.get('/integrations', async (ctx) => {
    const { limit, after } = pageOf(ctx);
    const rows = await models.Integration.find(after ? { _id: { $gt: after } } : {})
      .sort({ _id: 1 })
      .limit(limit + 1)
      .lean();
    ctx.body = sendPage(ctx, rows, limit).map((d) => withIpnUrl(toIntegration(d)));
  });

  router.put('/customers/:id', async (ctx) => {
    const input = await readJson(ctx);
    ctx.body = await saveCustomer(models, idParam(ctx.params.id!), input, actorOf(input));
  });
  router.get('/customers/:id', async (ctx) => {
    const customer = await models.Customer.findById(ctx.params.id!).lean();
    if (!customer) throw new HttpError(404, `no customer ${ctx.params.id!}`);
    const shown = async (mode: MoneyMode) =>
      (await ledger.balances(customer._id, mode)).map(({ currency, balanceMinor }) => ({
        currency,
        balanceMinor,
        balance: formatMinor(balanceMinor, currency),
      }));
    ctx.body = {
      id: customer._id,
      name: customer.name,
      paypalEmails: customer.paypalEmails,
      // Real money only; PayPal test payments (test_ipn=1) apart, never to be added to it.
      balances: await shown('live'),
      sandboxBalances: await shown('sandbox'),
    };
  });
  router.get('/customers/:id/ledger', async (ctx) => {
    const entries = await ledger.entries(ctx.params.id!);
    ctx.body = entries.map((e) => ({
      ...e,
      amount: formatMinor(e.amountMinor, e.currency),
      balanceAfter: formatMinor(e.balanceAfterMinor, e.currency),
    }));
  });
  router.get('/ledger/check', async (ctx) => {
    const result = await ledger.check();
    ctx.status = result.problems.length ? 500 : 200;
    ctx.body = { ok: result.problems.length === 0, ...result };
  });

  router.get('/held', async (ctx) => {
    // Each list is bounded; `truncated` says a list has more than `limit` (work down the oldest first).
    const { limit } = pageOf(ctx, 500);
    const byUpdate = { updatedAt: 1 } as const;
    const byReceipt = { receivedAt: 1 } as const;
    const [payments, profiles, payoutBatches, parked, undispatchable, masspayUnmatched, topups] = await Promise.all([
      models.Payment.find({ needsOperator: true }, { snapshot: 0 })
        .sort(byUpdate)
        .limit(limit + 1)
        .lean(),
      models.RecurringProfile.find({ needsOperator: true }, { snapshot: 0 })
        .sort(byUpdate)
        .limit(limit + 1)
        .lean(),
      models.PayoutBatch.find({ needsOperator: true }, { snapshot: 0 })
        .sort(byUpdate)
        .limit(limit + 1)
        .lean(),
      models.IpnMessage.find({ state: 'parked' }, { raw: 0 })
        .sort(byReceipt)
        .limit(limit + 1)
        .lean(),
      models.IpnMessage.find({ state: 'undispatchable' }, { raw: 0 })
        .sort(byReceipt)
        .limit(limit + 1)
        .lean(),
      models.IpnMessage.find({ state: 'masspay_unmatched' }, { raw: 0 })
        .sort(byReceipt)
        .limit(limit + 1)
        .lean(),
      // A capture PayPal reported other than asked (amount, payee) or the ledger refused: not credited.
      models.Topup.find({ phase: 'held' }, { snapshot: 0 })
        .sort(byUpdate)
        .limit(limit + 1)
        .lean(),
    ]);
    const lists = {
      payments,
      profiles,
      payoutBatches,
      parkedMessages: parked,
      undispatchableMessages: undispatchable,
      masspayUnmatchedMessages: masspayUnmatched,
      topups,
    };
    const truncated = Object.entries(lists)
      .filter(([, rows]) => rows.length > limit)
      .map(([name]) => name);
    ctx.body = {
      ...Object.fromEntries(Object.entries(lists).map(([k, rows]) => [k, rows.slice(0, limit)])),
      truncated,
    };
  });

  const findPayment = async (txnId: string, integrationId?: string) => {
    const found = await models.Payment.find({ txnId, ...(integrationId ? { integrationId } : {}) }).lean();
    if (found.length === 0) throw new HttpError(404, `no payment with txn id ${txnId}`);
    if (found.length > 1)
      throw new HttpError(409, `txn id ${txnId} exists in several integrations: add ?integrationId=`);
    return found[0]!;
  };
  router.get('/payments/:txnId', async (ctx) => {
    ctx.body = await findPayment(ctx.params.txnId!, ctx.query.integrationId as string | undefined);
  });

  /**
   * One route per operator decision, each the payment workflow's `operatorAction` update: answered
   * once applied (its ledger posting included) with the payment's state, or refused naming the rule
   * (see decideByUpdate). The Web UI's signals meet the same rules in the workflow.
   */
  for (const name of Object.keys(PAYMENT_OPERATOR_ACTIONS) as PaymentOperatorActionName[]) {
    router.post(`/payments/:txnId/${name}`, async (ctx) => {
      const body = await readJson(ctx);
      const payment = await findPayment(ctx.params.txnId!, ctx.query.integrationId as string | undefined);
      const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {};
      const start = paymentStartOptions({
        integrationId: payment.integrationId,
        paymentTxnId: payment.txnId,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        config,
      });
      const answer = await decideByUpdate(client, { type: PAYMENT_LIFECYCLE, options: start }, paymentActionUpdate, {
        action: name,
        body: { ...fields, operator: actingOperator(ctx, body) },
      });
      answerDecision(ctx, answer, (s) => s);
    });
  }

  router.get('/messages', async (ctx) => {
    const filter: Record<string, unknown> = {};
    for (const key of ['state', 'integrationId', 'txnId'] as const)
      if (typeof ctx.query[key] === 'string') filter[key] = ctx.query[key];
    // Newest first: `after` is the last (oldest) _id of the previous page.
    const { limit, after } = pageOf(ctx);
    if (after) filter._id = { $lt: after };
    const rows = await models.IpnMessage.find(filter, { raw: 0 })
      .sort({ _id: -1 })
      .limit(limit + 1)
      .lean();
    ctx.body = sendPage(ctx, rows, limit);
  });
  router.get('/messages/:id', async (ctx) => {
    const msg = await models.IpnMessage.findById(ctx.params.id!)
      .lean()
      .catch(() => null);
    if (!msg) throw new HttpError(404, `no message ${ctx.params.id!}`);
    ctx.body = { ...msg, raw: Buffer.from(msg.raw.buffer).toString('latin1') };
  });
  for (const [path, signal] of [
    ['retry', retryVerificationSignal],
    ['reject', rejectMessageSignal],
  ] as const) {
    router.post(`/messages/:id/${path}`, async (ctx) => {
      const body = await readJson(ctx);
      const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {};
      const action = OperatorActionSchema.parse({ ...fields, operator: actingOperator(ctx, body) });
      const msg = await models.IpnMessage.findById(ctx.params.id!, { workflowId: 1, state: 1 })
        .lean()
        .catch(() => null);
      if (!msg?.workflowId) throw new HttpError(404, `no dispatched message ${ctx.params.id!}`);
      // A payment's workflow outlives its messages: only a parked message takes a decision.
      if (msg.state !== 'parked') throw new HttpError(409, `message ${ctx.params.id!} is ${msg.state}, not parked`);
      try {
        // Named: a payment may have several messages parked at once.
        await client.workflow.getHandle(msg.workflowId).signal(signal, { ...action, messageId: String(msg._id) });
      } catch (err) {
        // Its workflow already finished (e.g. a second click on retry): nothing is parked any more.
        throw new HttpError(409, `message workflow ${msg.workflowId} is not running: ${(err as Error).message}`);
      }
      ctx.status = 202;
      ctx.body = { workflowId: msg.workflowId, signal: signal.name, accepted: true };
    });
  }

  router.get('/audit', async (ctx) => {
    const { limit, after } = pageOf(ctx, 500);
    // Configuration changes are found by the integration or customer they changed.
    const filter: Record<string, unknown> = after ? { _id: { $gt: after } } : {};
    for (const key of ['txnId', 'integrationId', 'customerId'] as const)
      if (typeof ctx.query[key] === 'string') filter[key] = ctx.query[key];
    const rows = await models.AuditEvent.find(filter)
      .sort({ _id: 1 })
      .limit(limit + 1)
      .lean();
    ctx.body = sendPage(ctx, rows, limit);
  });
  return router;
}
