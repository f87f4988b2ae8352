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

/**
 * Whether a request path names /admin or anything under it, however it is spelled: routers,
 * proxies and clients disagree on letter case, percent-encoding, repeated slashes and dot
 * segments, so the guard reads the path as loosely as any of them (erring towards asking for the token).
 */
export function isAdminPath(rawPath: string): boolean {
  let path = rawPath;
  // Decode until stable, byte by byte so a malformed escape cannot throw (and double encoding counts too).
  for (let i = 0; i < 5 && /%[0-9a-f]{2}/i.test(path); i++) {
    path = path.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  const segments: string[] = [];
  for (const segment of path.split(/[/\\]+/)) {
    if (segment === '..') segments.pop();
    else if (segment !== '' && segment !== '.') segments.push(segment);
  }
  return segments[0]?.toLowerCase() === 'admin';
}

/** One gate before any routing: no admin handler, 404 or Allow list is reachable without the token. */
export function adminGuard(token: string): Middleware {
  const check = requireAdminToken(token);
  return (ctx, next) => (isAdminPath(ctx.path) ? check(ctx, next) : next());
}
