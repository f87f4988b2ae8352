import Router from '@koa/router';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { z } from 'zod';
import type { AppDeps } from '../shared/http/deps';
import { HttpError } from '../shared/http/errors';
import { readJson } from '../shared/http/json-body';
import { ProfileStateSchema, ProfileStatusSchema, type ProfileState } from './state';
import { PROFILE_OPERATOR_ACTIONS, type ProfileActionPath } from './actions';
import { refusalOf, type OperatorInput } from './rules';
import { profileStartOptions } from './start';
import { profileActionUpdate, RECURRING_PROFILE, type RecurringProfileWorkflow } from './contract';

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
  const { RecurringProfile, AuditEvent } = db.models;
  const router = new Router({ prefix: '/admin', sensitive: true });

  const findProfile = async (profileId: string, integrationId?: string): Promise<ProfileState> => {
    const docs = integrationId
      ? [await RecurringProfile.findById(`${integrationId}:${profileId}`).lean()].filter((d) => d !== null)
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

  for (const path of Object.keys(PROFILE_OPERATOR_ACTIONS) as ProfileActionPath[]) {
    router.post(`/profiles/:id/${path}`, async (ctx) => {
      const spec = PROFILE_OPERATOR_ACTIONS[path];
      const body = await readJson(ctx);
      const action = (spec.schema as z.ZodType).parse(body) as OperatorInput['action'];
      const state = await findProfile(ctx.params.id!, integrationOf(ctx.query.integrationId));
      const refusal = refusalOf(state, { type: spec.type, action } as OperatorInput, new Date().toISOString());
      if (refusal) {
        // The workflow refuses the same on a signal; here it costs no workflow task.
        await AuditEvent.create({
          at: new Date(),
          actor: action.operator,
          action: `profile_${spec.type}_refused`,
          reason: action.note,
          integrationId: state.integrationId,
          txnId: state.profileId,
          details: { rule: refusal.rule, refused: refusal.detail, via: 'admin_api' },
        });
        throw new HttpError(refusal.status, `${refusal.rule}: ${refusal.detail}`, { rule: refusal.rule });
      }
      // A cancelled profile's workflow may have closed: the request starts it again.
      const opts = profileStartOptions(config, state.integrationId, state.profileId);
      const handle = await client.workflow.start<RecurringProfileWorkflow>(RECURRING_PROFILE, {
        ...opts,
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      let result;
      try {
        result = await handle.executeUpdate(profileActionUpdate, { args: [{ action: path, body }] });
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError)
          throw new HttpError(400, `refused by the profile: ${err.cause?.message ?? err.message}`);
        throw err;
      }
      if (!result.ok) {
        throw new HttpError(result.status, `${result.rule}: ${result.detail}`, {
          rule: result.rule,
          ...(result.paypal ? { paypal: result.paypal } : {}),
        });
      }
      ctx.status = 202;
      ctx.body = {
        workflowId: opts.workflowId,
        action: path,
        accepted: true,
        detail: result.detail,
        paypal: result.paypal ?? null,
      };
    });
  }
  return router;
}
