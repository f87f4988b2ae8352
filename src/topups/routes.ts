import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AppDeps } from '../shared/http/deps';
import { HttpError } from '../shared/http/errors';
import { readJson } from '../shared/http/json-body';
import { identityOf } from '../shared/http/identity';
import { IntegrationIdSchema } from '../integrations/schema';
import { customerExists } from '../customers/known';
import { TopupIdSchema } from './contract';
import { TopupLinks, newTopupId } from './links';
import { createTopup, CreateTopupSchema, savedState } from './service';

const CreateLinkSchema = z.object({
  integrationId: IntegrationIdSchema,
  customerId: z.string().regex(/^[A-Za-z0-9_.:@-]{1,64}$/, 'a customer id'),
});

/** Where PayPal sends the buyer back: PUBLIC_BASE_URL, else the host the caller reached us at. */
export const publicBase = (ctx: Context, configured: string | undefined) =>
  (configured ?? ownOrigin(ctx)).replace(/\/+$/, '');

/** Where this request reached us (Koa 3's ctx.origin is the request's Origin header instead). */
export const ownOrigin = (ctx: Context) => `${ctx.protocol}://${ctx.host}`;

/**
 * The portal's API (its service account's key, role `portal`, see docs/topups.md): create a top-up
 * and get PayPal's approval link, read one, or make a hosted page link for one customer.
 */
export function topupRoutes(deps: AppDeps): Router {
  const { db, client, config } = deps;
  const router = new Router({ prefix: '/admin/topups', sensitive: true });
  const links = new TopupLinks(config);

  router.post('/', async (ctx) => {
    const req = CreateTopupSchema.parse(stripOperator(await readJson(ctx)));
    const created = await createTopup({ models: db.models, client, config }, req, {
      id: newTopupId(),
      baseUrl: publicBase(ctx, config.PUBLIC_BASE_URL),
      createdBy: identityOf(ctx)!.id,
    });
    ctx.status = 201;
    ctx.body = created;
  });

  router.post('/links', async (ctx) => {
    const req = CreateLinkSchema.parse(stripOperator(await readJson(ctx)));
    const integration = await db.models.Integration.findById(req.integrationId, { topups: 1 }).lean();
    if (!integration?.topups)
      throw new HttpError(422, `integrationId: ${req.integrationId} takes no top-ups`, { field: 'integrationId' });
    if (!(await customerExists(db.models, req.customerId)))
      throw new HttpError(422, `customerId: no customer ${req.customerId}`, { field: 'customerId' });
    const expiresAt = new Date(Date.now() + config.TOPUP_LINK_TTL_SECONDS * 1000);
    const token = links.sign({ ...req, expiresAt });
    ctx.status = 201;
    ctx.body = { url: `${publicBase(ctx, config.PUBLIC_BASE_URL)}/topup/${token}`, expiresAt: expiresAt.toISOString() };
  });

  router.get('/:id', async (ctx) => {
    const id = TopupIdSchema.safeParse(ctx.params.id);
    const doc = id.success ? await db.models.Topup.findById(id.data).lean() : null;
    if (!doc) throw new HttpError(404, `no top-up ${String(ctx.params.id).slice(0, 40)}`);
    const state = await savedState(db.models, doc._id);
    const entry = doc.creditEntryId ? await db.models.LedgerEntry.findById(doc.creditEntryId).lean() : null;
    ctx.body = {
      id: doc._id,
      integrationId: doc.integrationId,
      customerId: doc.customerId,
      api: doc.api,
      mode: doc.mode,
      amountMinor: doc.amountMinor,
      currency: doc.currency,
      state: doc.phase,
      reason: state?.reason ?? null,
      expiresAt: doc.expiresAt.toISOString(),
      paypal: {
        ...(doc.api === 'orders' ? { orderId: doc.paypalRef ?? null } : { token: doc.paypalRef ?? null }),
        captureId: state?.capture?.id ?? null,
        captureStatus: state?.capture?.status ?? null,
      },
      credit: entry
        ? {
            entryId: entry._id,
            amountMinor: entry.amountMinor,
            currency: entry.currency,
            idempotencyKey: entry.idempotencyKey,
            balanceAfterMinor: entry.balanceAfterMinor,
          }
        : null,
      history: state?.history ?? [],
    };
  });

  return router;
}

/** readJson binds `operator` to the caller; a top-up has no such field (strict schemas elsewhere stay untouched). */
function stripOperator(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const { operator: _operator, ...rest } = body as Record<string, unknown>;
  return rest;
}
