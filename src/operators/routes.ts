import Router from '@koa/router';
import type { Context } from 'koa';
import type { AppDeps } from '../shared/http/deps';
import { HttpError } from '../shared/http/errors';
import { readJson } from '../shared/http/json-body';
import { identityOf } from '../shared/http/identity';
import { CreateOperatorSchema, OperatorIdSchema } from './contract';
import { OperatorExistsError, operatorView, type OperatorStore } from './store';

/**
 * Operator management (admins and the break-glass token, see route-policy.ts). A key or TOTP secret
 * is in the answer that creates it, once; lists show status and lockouts, never secrets.
 */
export function operatorRoutes(_deps: AppDeps, store: OperatorStore): Router {
  const router = new Router({ prefix: '/admin/operators', sensitive: true });
  const by = (ctx: Context) => identityOf(ctx)!.id;
  const idParam = (value: string) => {
    if (!OperatorIdSchema.safeParse(value).success)
      throw new HttpError(400, `bad operator id ${JSON.stringify(value)}`);
    return value;
  };
  const found = <T>(value: T | null, id: string): T => {
    if (value === null) throw new HttpError(404, `no operator ${id}`);
    return value;
  };

  router.get('/', async (ctx) => {
    const after = typeof ctx.query.after === 'string' ? ctx.query.after : undefined;
    ctx.body = { operators: (await store.list(after)).map((d) => operatorView(d)) };
  });
  router.post('/', async (ctx) => {
    const input = CreateOperatorSchema.parse(await readJson(ctx));
    try {
      ctx.body = await store.create(input, by(ctx));
    } catch (err) {
      if (err instanceof OperatorExistsError) throw new HttpError(409, err.message);
      throw err;
    }
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
  });
  router.post('/:id/disable', async (ctx) => {
    const id = idParam(ctx.params.id!);
    ctx.body = operatorView(found(await store.disable(id, by(ctx)), id));
  });
  router.post('/:id/rotate-key', async (ctx) => {
    const id = idParam(ctx.params.id!);
    ctx.body = found(await store.rotateKey(id, by(ctx)), id);
    ctx.set('Cache-Control', 'no-store');
  });
  router.post('/:id/reset-totp', async (ctx) => {
    const id = idParam(ctx.params.id!);
    ctx.body = found(await store.resetTotp(id, by(ctx)), id);
    ctx.set('Cache-Control', 'no-store');
  });
  return router;
}
