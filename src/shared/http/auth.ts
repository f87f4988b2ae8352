import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { AdminAuth } from './operator-auth';

/** Percent-decodes until stable, byte by byte, so a malformed escape cannot throw and double encoding counts too. */
function decodeFully(text: string): string {
  let out = text;
  for (let i = 0; i < 5 && /%[0-9a-f]{2}/i.test(out); i++) {
    out = out.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  return out;
}

/**
 * Whether a request path names /admin or anything under it, however it is spelled: routers,
 * proxies and clients disagree on letter case, percent-encoding, repeated slashes and dot
 * segments, so the guard reads the path both with dot segments resolved and as written (the
 * router resolves none: `/admin/customers/..%2F..%2Fx` is an admin route to it), erring towards
 * asking for the token.
 */
export function isAdminPath(rawPath: string): boolean {
  const parts = decodeFully(rawPath)
    .split(/[/\\]+/)
    .filter((s) => s !== '' && s !== '.');
  const resolved: string[] = [];
  for (const segment of parts) {
    if (segment === '..') resolved.pop();
    else resolved.push(segment);
  }
  return [resolved[0], parts[0]].some((first) => first?.toLowerCase() === 'admin');
}

/**
 * Why one path segment or route parameter (as the router decoded it) is refused, or null. No id we
 * issue or accept in an admin URL (integration, customer and message ids, payout and profile ids,
 * PayPal's 17-character txn ids) has a separator or is made of dots; a value that does is an
 * attempt to make one layer read a path another way, whatever the handler would do with it. Dots
 * inside an id (`A.B`) stay allowed; a trailing dot is refused because some servers and proxies
 * drop it (`x.` reads as `x`).
 */
export function unsafeSegment(value: string): string | null {
  const decoded = decodeFully(value);
  if (/[/\\]/.test(decoded)) return 'an encoded separator (%2F, %5C)';
  if (/^\.+$/.test(decoded)) return 'a dot segment';
  if (decoded.endsWith('.')) return 'a trailing dot';
  if (decoded === '') return 'an empty segment';
  return null;
}

/** Why a raw admin path is refused: any segment as above, an empty one (`//`) except a single trailing slash. */
export function unsafePath(rawPath: string): string | null {
  const segments = rawPath.split('/').slice(1);
  if (segments.length > 1 && segments.at(-1) === '') segments.pop();
  if (rawPath.includes('\\')) return 'a backslash';
  for (const segment of segments) {
    const why = unsafeSegment(segment);
    if (why) return why;
  }
  return null;
}

function refuse(ctx: Context, why: string): void {
  ctx.status = 400;
  ctx.body = { error: `admin paths may not contain ${why}` };
}

/** The admin routes (any method) whose path pattern matches this request, as the router itself sees it. */
function matchedRoutes(router: Router, ctx: Context) {
  return router.match(ctx.path, ctx.method).path.filter((layer) => layer.methods.length > 0);
}

/**
 * Before any routing: the token for every request the admin router would match by path (whatever
 * the method, so its 405 and Allow list too) and for anything that reads as /admin some other way;
 * then, with a key, 400 for a path that spells a separator or dot segment in disguise.
 */
export function adminGuard(auth: AdminAuth, adminRouter: Router): Middleware {
  const check = auth.authenticate();
  return (ctx, next) => {
    if (matchedRoutes(adminRouter, ctx).length === 0 && !isAdminPath(ctx.path)) return next();
    return check(ctx, async () => {
      const why = unsafePath(ctx.path);
      if (why) return refuse(ctx, why);
      await next();
    });
  };
}

/**
 * The admin router's own first middleware: it runs for every request the router dispatches to a
 * handler, so no handler is reached without the token or with a disguised parameter, even where the
 * app-level guard is missing. Parameters are read with the router's own decoding.
 */
export function adminRouteGuard(auth: AdminAuth, adminRouter: Router): Middleware {
  const check = auth.authenticate();
  const authorize = auth.authorize();
  return (ctx, next) =>
    check(ctx, async () => {
      const layers = matchedRoutes(adminRouter, ctx);
      for (const layer of layers) {
        const params = layer.params(ctx.path, layer.captures(ctx.path));
        for (const [name, value] of Object.entries(params)) {
          const why = unsafeSegment(String(value));
          if (why) return refuse(ctx, `${why} (in :${name})`);
        }
      }
      // The route this request reaches: its role and second factor (see route-policy.ts).
      const route = layers.find((layer) => layer.methods.includes(ctx.method));
      await authorize(ctx, route ? String(route.path) : null, next);
    });
}
