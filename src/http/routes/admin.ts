import Router from '@koa/router';
import { z } from 'zod';
import type { AppDeps } from '../app';
import { requireAdminToken } from '../auth';
import { HttpError } from '../errors';
import { readJson } from '../json-body';
import { IntegrationIdSchema } from '../../domain/integration';
import { formatMinor } from '../../domain/money';
import { paymentWorkflowId } from '../../domain/workflow-ids';
import { getIntegration, saveIntegration, toIntegration } from '../../integrations/store';
import { saveCustomer } from '../../customers/store';
import { Ledger } from '../../ledger/ledger';
import { publicBaseUrl, requireAdminTokenConfig } from '../../config';

const OperatorActionSchema = z.object({ operator: z.string().trim().min(1), reason: z.string().trim().min(1) });
const AssignSchema = OperatorActionSchema.extend({ customerId: z.string().min(1) });

export function adminRoutes(deps: AppDeps): Router {
  const { db, client, config } = deps;
  const { models } = db;
  const ledger = new Ledger(models);
  const router = new Router({ prefix: '/admin' });
  router.use(requireAdminToken(requireAdminTokenConfig(config)));

  const withIpnUrl = <T extends { id: string }>(i: T) => ({ ...i, ipnUrl: `${publicBaseUrl(config)}/ipn/${i.id}` });
  const idParam = (value: string) => {
    const parsed = IntegrationIdSchema.safeParse(value);
    if (!parsed.success) throw new HttpError(400, `bad id ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  };

  router.put('/integrations/:id', async (ctx) => {
    ctx.body = withIpnUrl(await saveIntegration(models, idParam(ctx.params.id!), await readJson(ctx)));
  });
  router.get('/integrations/:id', async (ctx) => {
    const integration = await getIntegration(models, ctx.params.id!);
    if (!integration) throw new HttpError(404, `no integration ${ctx.params.id!}`);
    ctx.body = withIpnUrl(integration);
  });
  router.get('/integrations', async (ctx) => {
    ctx.body = (await models.Integration.find().sort({ _id: 1 }).lean()).map((d) => withIpnUrl(toIntegration(d)));
  });

  router.put('/customers/:id', async (ctx) => {
    ctx.body = await saveCustomer(models, idParam(ctx.params.id!), await readJson(ctx));
  });
  router.get('/customers/:id', async (ctx) => {
    const customer = await models.Customer.findById(ctx.params.id!).lean();
    if (!customer) throw new HttpError(404, `no customer ${ctx.params.id!}`);
    const balances = await ledger.balances(customer._id);
    ctx.body = {
      id: customer._id,
      name: customer.name,
      paypalEmails: customer.paypalEmails,
      balances: balances.map((b) => ({ currency: b.currency, balanceMinor: b.balanceMinor, balance: formatMinor(b.balanceMinor, b.currency) })),
    };
  });
  router.get('/customers/:id/ledger', async (ctx) => {
    const entries = await ledger.entries(ctx.params.id!);
    ctx.body = entries.map((e) => ({ ...e, amount: formatMinor(e.amountMinor, e.currency), balanceAfter: formatMinor(e.balanceAfterMinor, e.currency) }));
  });
  router.get('/ledger/check', async (ctx) => {
    const result = await ledger.check();
    ctx.status = result.problems.length ? 500 : 200;
    ctx.body = { ok: result.problems.length === 0, ...result };
  });

  router.get('/held', async (ctx) => {
    const payments = await models.Payment.find({ needsOperator: true }, { snapshot: 0 }).sort({ updatedAt: 1 }).lean();
    const parked = await models.IpnMessage.find({ state: 'parked' }, { raw: 0 }).sort({ receivedAt: 1 }).lean();
    const undispatchable = await models.IpnMessage.find({ state: 'undispatchable' }, { raw: 0 })
      .sort({ receivedAt: 1 })
      .lean();
    ctx.body = { payments, parkedMessages: parked, undispatchableMessages: undispatchable };
  });

  const findPayment = async (txnId: string, integrationId?: string) => {
    const found = await models.Payment.find({ txnId, ...(integrationId ? { integrationId } : {}) }).lean();
    if (found.length === 0) throw new HttpError(404, `no payment with txn id ${txnId}`);
    if (found.length > 1) throw new HttpError(409, `txn id ${txnId} exists in several integrations: add ?integrationId=`);
    return found[0]!;
  };
  router.get('/payments/:txnId', async (ctx) => {
    ctx.body = await findPayment(ctx.params.txnId!, ctx.query.integrationId as string | undefined);
  });

  const signalPayment = (signal: 'assignCustomer' | 'approve' | 'reject', schema: z.ZodType) =>
    router.post(`/payments/:txnId/${signal === 'assignCustomer' ? 'assign' : signal}`, async (ctx) => {
      const action = schema.parse(await readJson(ctx));
      const payment = await findPayment(ctx.params.txnId!, ctx.query.integrationId as string | undefined);
      if (signal === 'assignCustomer' && !(await models.Customer.exists({ _id: (action as { customerId: string }).customerId }))) {
        throw new HttpError(404, `no customer ${(action as { customerId: string }).customerId}`);
      }
      const workflowId = paymentWorkflowId(payment.integrationId, payment.txnId);
      try {
        await client.workflow.getHandle(workflowId).signal(signal, action);
      } catch (err) {
        throw new HttpError(409, `payment workflow ${workflowId} is not running: ${(err as Error).message}`);
      }
      ctx.status = 202;
      ctx.body = { workflowId, signal, accepted: true };
    });
  signalPayment('assignCustomer', AssignSchema);
  signalPayment('approve', OperatorActionSchema);
  signalPayment('reject', OperatorActionSchema);

  router.get('/messages', async (ctx) => {
    const filter: Record<string, unknown> = {};
    for (const key of ['state', 'integrationId', 'txnId'] as const) if (typeof ctx.query[key] === 'string') filter[key] = ctx.query[key];
    ctx.body = await models.IpnMessage.find(filter, { raw: 0 }).sort({ receivedAt: -1 }).limit(200).lean();
  });
  router.get('/messages/:id', async (ctx) => {
    const msg = await models.IpnMessage.findById(ctx.params.id!).lean().catch(() => null);
    if (!msg) throw new HttpError(404, `no message ${ctx.params.id!}`);
    ctx.body = { ...msg, raw: Buffer.from(msg.raw.buffer).toString('latin1') };
  });
  for (const [path, signal] of [['retry', 'retryVerification'], ['reject', 'rejectMessage']] as const) {
    router.post(`/messages/:id/${path}`, async (ctx) => {
      const action = OperatorActionSchema.parse(await readJson(ctx));
      const msg = await models.IpnMessage.findById(ctx.params.id!, { workflowId: 1 }).lean().catch(() => null);
      if (!msg?.workflowId) throw new HttpError(404, `no dispatched message ${ctx.params.id!}`);
      try {
        await client.workflow.getHandle(msg.workflowId).signal(signal, action);
      } catch (err) {
        // Its workflow already finished (e.g. a second click on retry): nothing is parked any more.
        throw new HttpError(409, `message workflow ${msg.workflowId} is not running: ${(err as Error).message}`);
      }
      ctx.status = 202;
      ctx.body = { workflowId: msg.workflowId, signal, accepted: true };
    });
  }

  router.get('/audit', async (ctx) => {
    const filter = typeof ctx.query.txnId === 'string' ? { txnId: ctx.query.txnId } : {};
    ctx.body = await models.AuditEvent.find(filter).sort({ at: 1 }).limit(500).lean();
  });
  return router;
}
