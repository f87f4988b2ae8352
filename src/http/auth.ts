import crypto from 'node:crypto';
import type { Middleware } from 'koa';

/** Bearer-token check in constant time (hashing first makes lengths equal too). */
export function requireAdminToken(token: string): Middleware {
  const expected = crypto.createHash('sha256').update(token).digest();
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    const digest = crypto.createHash('sha256').update(given).digest();
    if (!given || !crypto.timingSafeEqual(digest, expected)) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer realm="ipnflow-admin"');
      ctx.body = { error: 'admin routes need Authorization: Bearer <ADMIN_TOKEN>' };
      return;
    }
    await next();
  };
}
