import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AppDeps } from '../shared/http/deps';
import { HttpError } from '../shared/http/errors';
import { readJson } from '../shared/http/json-body';
import { ProfileStateSchema, ProfileStatusSchema, type ProfileState } from './state';
import { PROFILE_OPERATOR_ACTIONS, type ProfileActionPath } from './actions';
import { answerDecision, decideByUpdate } from '../shared/http/operator-update';
import { profileStartOptions } from './start';
import { profileActionUpdate, RECURRING_PROFILE } from './contract';
import { profileDocId } from '../shared/ids';

/**
 * Who is acting: today the body's `operator` field, as typed. The one place the operators issue
 * replaces with the authenticated identity.
 */
function actingOperator(_ctx: Context, body: unknown): unknown {
  return body !== null && typeof body === 'object' ? (body as { operator?: unknown }).operator : undefined;
}

const ListQuerySchema = z.object({
  status: ProfileStatusSchema.optional(),
  customerId: z.string().min(1).max(64).optional(),
  integrationId: z.string().min(1).max(64).optional(),
  /** The last `_id` of the previous page. */
  after: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

/** What the admin API shows of a profile. */
function view(s: ProfileState) {
  return {
    id: s.profileId,
    integrationId: s.integrationId,
    customerId: s.customerId,
    status: s.status,
    currency: s.currency,
    amountPerCycleMinor: s.amountPerCycleMinor,
    outstandingMinor: s.outstandingMinor,
    failedPaymentCount: s.failedPaymentCount,
    nextPaymentDate: s.nextPaymentDate,
    creditedMinor: s.creditedMinor,
    debitedMinor: s.debitedMinor,
    billQueued: s.billQueued,
    /** A bill whose answer was lost: no bill is sent until PayPal's IPN or balance settles it. */
    billUncertain: s.billUncertain ?? null,
    attention: s.attention,
    /** Which source (ipn | api | refresh) last set each field, as of when. */
    fields: s.fields,
    payments: s.payments,
    lastRefreshAt: s.lastRefreshAt,
    history: s.history,
  };
}

/** Recurring profiles: read them, and ask PayPal (through the profile's workflow) to change them. */
export function profileRoutes(deps: AppDeps): Router {
  const { db, client, config } = deps;
  const { RecurringProfile } = db.models;
  const router = new Router({ prefix: '/admin', sensitive: true });

  const findProfile = async (profileId: string, integrationId?: string): Promise<ProfileState> => {
    const docs = integrationId
      ? [await RecurringProfile.findById(profileDocId(integrationId, profileId)).lean()].filter((d) => d !== null)
      : await RecurringProfile.find({ profileId }).limit(2).lean();
    if (docs.length === 0) throw new HttpError(404, `no recurring profile ${profileId}`);
    if (docs.length > 1)
      throw new HttpError(409, `profile id ${profileId} exists in several integrations: add ?integrationId=`);
    const parsed = ProfileStateSchema.safeParse(docs[0]!.snapshot);
    if (!parsed.success) throw new HttpError(500, `profile ${profileId} has an unreadable saved state`);
    return parsed.data;
  };
  const integrationOf = (q: unknown) => (typeof q === 'string' && q ? q : undefined);

  router.get('/profiles/:id', async (ctx) => {
    ctx.body = view(await findProfile(ctx.params.id!, integrationOf(ctx.query.integrationId)));
  });

  router.get('/profiles', async (ctx) => {
    const q = ListQuerySchema.parse(ctx.query);
    const filter: Record<string, unknown> = {};
    if (q.status) filter.status = q.status;
    if (q.customerId) filter.customerId = q.customerId;
    if (q.integrationId) filter.integrationId = q.integrationId;
    if (q.after) filter._id = { $gt: q.after };
    const docs = await RecurringProfile.find(filter).sort({ _id: 1 }).limit(q.limit).lean();
    const items = docs
      .map((d) => ProfileStateSchema.safeParse(d.snapshot))
      .filter((p) => p.success)
      .map((p) => view(p.data));
    ctx.body = { items, next: docs.length === q.limit ? docs.at(-1)!._id : null };
  });

  /**
   * Every request to a profile (bill, suspend, reactivate, cancel, refresh, assign, approve,
   * acknowledge) is the profile workflow's `operatorAction` update, started again if the profile's
   * workflow closed: answered once applied (PayPal's answer included: `paypal`) with the profile's
   * state, or refused naming the rule (see decideByUpdate). A refusal by PayPal itself is a 502.
   */
  for (const path of Object.keys(PROFILE_OPERATOR_ACTIONS) as ProfileActionPath[]) {
    router.post(`/profiles/:id/${path}`, async (ctx) => {
      const body = await readJson(ctx);
      const state = await findProfile(ctx.params.id!, integrationOf(ctx.query.integrationId));
      const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {};
      const start = profileStartOptions(config, state.integrationId, state.profileId);
      const answer = await decideByUpdate(client, { type: RECURRING_PROFILE, options: start }, profileActionUpdate, {
        action: path,
        body: { ...fields, operator: actingOperator(ctx, body) },
      });
      const paypal = answer.result.paypal;
      answerDecision(ctx, answer, view, paypal ? { paypal } : {});
    });
  }
  return router;
}
