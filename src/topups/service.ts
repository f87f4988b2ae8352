import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { CustomerIdKey, IntegrationIdKey } from '../shared/contract';
import { z } from 'zod';
import type { Config } from '../shared/config';
import type { Models } from '../shared/db/models';
import { isDuplicateKey } from '../shared/db/duplicate-keys';
import { MoneyError, parseAmount } from '../shared/money';
import { HttpError } from '../shared/http/errors';
import { topupWorkflowId } from '../shared/ids';
import { getIntegration } from '../integrations/store';
import { customerExists } from '../customers/known';
import { IntegrationIdSchema, topupApiOf } from '../integrations/schema';
import { buyerCancelledUpdate, buyerReturnedUpdate, TOPUP_WORKFLOW, type TopupWorkflow } from './contract';
import { checkoutGateway } from './paypal';
import { TopupStateSchema, type TopupState } from './state';

/** A top-up as the portal asks for one (POST /admin/topups). */
export const CreateTopupSchema = z.object({
  integrationId: IntegrationIdSchema,
  customerId: z.string().regex(/^[A-Za-z0-9_.:@-]{1,64}$/, 'a customer id'),
  /** A decimal amount as PayPal writes it ("25.00"). */
  amount: z.string().regex(/^\d{1,9}(\.\d{1,3})?$/, 'a decimal amount like "25.00"'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'a currency code'),
  returnUrl: z.url({ protocol: /^https?$/ }),
  cancelUrl: z.url({ protocol: /^https?$/ }),
});
export type CreateTopup = z.infer<typeof CreateTopupSchema>;

export interface TopupDeps {
  models: Models;
  client: Client;
  config: Config;
}

/** Checks a request against the integration's top-up limits; 422 naming the field, nothing created. */
export async function checkTopup(
  models: Models,
  req: { integrationId: string; customerId: string; amount: string; currency: string },
) {
  const integration = await getIntegration(models, req.integrationId);
  if (!integration)
    throw new HttpError(422, `integrationId: no integration ${req.integrationId}`, field('integrationId'));
  const limits = integration.topups;
  if (!limits) throw new HttpError(422, `integrationId: ${integration.id} takes no top-ups`, field('integrationId'));
  if (!(limits.currencies as string[]).includes(req.currency))
    throw new HttpError(
      422,
      `currency: ${req.currency} is not among ${integration.id}'s top-up currencies (${limits.currencies.join(', ')})`,
      field('currency'),
    );
  let amountMinor: number;
  try {
    amountMinor = parseAmount(req.amount, req.currency);
  } catch (err) {
    if (!(err instanceof MoneyError)) throw err;
    throw new HttpError(400, `amount: ${err.message}`, field('amount'));
  }
  const min = limits.minMinor[req.currency]!;
  const max = limits.maxMinor[req.currency]!;
  if (amountMinor < min || amountMinor > max)
    throw new HttpError(422, `amount: must be between ${min} and ${max} minor units of ${req.currency}`, {
      field: 'amount',
      minMinor: min,
      maxMinor: max,
    });
  if (!(await customerExists(models, req.customerId)))
    throw new HttpError(422, `customerId: no customer ${req.customerId}`, field('customerId'));
  return { integration, amountMinor, api: topupApiOf(integration) };
}

const field = (name: string) => ({ field: name });

/**
 * Creates a top-up: its document first (its id is the unique key: a second request for the same id,
 * a double click, finds it), then PayPal's order, then its workflow. Returns where the buyer approves.
 * PayPal's return and cancel pages are ours (`baseUrl`/topup/return|cancel): the capture never waits
 * for a portal to pass the buyer on.
 */
export async function createTopup(
  deps: TopupDeps,
  req: Omit<CreateTopup, 'returnUrl' | 'cancelUrl'> & { returnUrl?: string; cancelUrl?: string },
  opts: { id: string; baseUrl: string; createdBy: string },
): Promise<{ id: string; approveUrl: string; expiresAt: string }> {
  const { models, client, config } = deps;
  const { integration, amountMinor, api } = await checkTopup(models, req);
  const expiresAt = new Date(Date.now() + config.TOPUP_EXPIRY_SECONDS * 1000);
  const id = opts.id;
  const workflow = {
    topupId: id,
    integrationId: integration.id,
    customerId: req.customerId,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    pollSeconds: config.TOPUP_POLL_SECONDS,
  };
  try {
    await models.Topup.create({
      _id: id,
      integrationId: integration.id,
      customerId: req.customerId,
      api,
      mode: integration.mode,
      currency: req.currency,
      amountMinor,
      phase: 'creating',
      expiresAt,
      createdBy: opts.createdBy,
      ...(req.returnUrl ? { returnUrl: req.returnUrl, cancelUrl: req.cancelUrl } : {}),
    });
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    const found = await existing(models, id);
    // The first request may have died between PayPal's order and the workflow (Temporal down a
    // moment): the buyer would approve a top-up nobody captures or expires. Starting twice is no error.
    await startTopup(client, workflow);
    return found;
  }
  let checkout: { paypalRef: string; approveUrl: string };
  try {
    checkout = await checkoutGateway(config, integration).create(
      {
        topupId: id,
        amountMinor,
        currency: req.currency,
        returnUrl: `${opts.baseUrl}/topup/return?topup=${id}`,
        cancelUrl: `${opts.baseUrl}/topup/cancel?topup=${id}`,
      },
      api,
    );
  } catch (err) {
    await models.Topup.updateOne({ _id: id }, { $set: { phase: 'failed' } });
    throw new HttpError(502, `PayPal did not create the checkout: ${(err as Error).message.slice(0, 200)}`);
  }
  const state: TopupState = {
    id,
    integrationId: integration.id,
    customerId: req.customerId,
    api,
    mode: integration.mode,
    currency: req.currency,
    amountMinor,
    feePolicy: integration.feePolicy,
    phase: 'created',
    reason: null,
    paypalRef: checkout.paypalRef,
    capture: null,
    creditEntryId: null,
    creditedMinor: 0,
    expiresAt: expiresAt.toISOString(),
    history: [{ at: new Date().toISOString(), what: `created by ${opts.createdBy} (${api})` }],
  };
  await models.Topup.updateOne(
    { _id: id },
    { $set: { phase: 'created', paypalRef: checkout.paypalRef, approveUrl: checkout.approveUrl, snapshot: state } },
  );
  await startTopup(client, workflow);
  return { id, approveUrl: checkout.approveUrl, expiresAt: expiresAt.toISOString() };
}

/** The top-up a second request for the same id finds, once its order exists (the first may still be at PayPal). */
async function existing(models: Models, id: string) {
  for (let i = 0; i < 100; i++) {
    const doc = await models.Topup.findById(id, { approveUrl: 1, phase: 1, expiresAt: 1 }).lean();
    if (doc?.approveUrl) return { id, approveUrl: doc.approveUrl, expiresAt: doc.expiresAt.toISOString() };
    if (doc?.phase === 'failed') throw new HttpError(502, 'PayPal did not create the checkout');
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new HttpError(503, 'the top-up is still being created; try again');
}

/** The buyer is back from PayPal (or cancelled): the workflow applies it; a closed one is read from the store. */
export async function buyerStep(
  deps: TopupDeps,
  id: string,
  step: 'returned' | 'cancelled',
): Promise<TopupState | null> {
  const handle = deps.client.workflow.getHandle(topupWorkflowId(id));
  try {
    return await handle.executeUpdate(step === 'returned' ? buyerReturnedUpdate : buyerCancelledUpdate, {
      args: [{}],
    });
  } catch (err) {
    // Finished (credited, expired...) or never started: what it ended as is in the store.
    if (!(err instanceof WorkflowNotFoundError) && !/already completed|not found/i.test((err as Error).message))
      throw err;
    return savedState(deps.models, id);
  }
}

export async function savedState(models: Models, id: string): Promise<TopupState | null> {
  const doc = await models.Topup.findById(id, { snapshot: 1 }).lean();
  return doc?.snapshot ? TopupStateSchema.parse(doc.snapshot) : null;
}

/** Starts a top-up's workflow; starting it twice (a double click's second request) is no error. */
async function startTopup(
  client: Client,
  to: { topupId: string; integrationId: string; customerId: string; taskQueue: string; pollSeconds: number },
): Promise<void> {
  try {
    await client.workflow.start<TopupWorkflow>(TOPUP_WORKFLOW, {
      workflowId: topupWorkflowId(to.topupId),
      taskQueue: to.taskQueue,
      args: [{ topupId: to.topupId, pollSeconds: to.pollSeconds }],
      typedSearchAttributes: [
        { key: IntegrationIdKey, value: to.integrationId },
        { key: CustomerIdKey, value: to.customerId },
      ],
      staticSummary: `top-up ${to.topupId} (${to.integrationId})`,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}
