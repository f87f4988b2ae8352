import Koa from 'koa';
import { httpDuration } from './shared/metrics';
import { adminGuard } from './shared/http/auth';
import { errorHandler } from './shared/http/errors';
import { adminApiRoutes } from './shared/http/admin-api';
import { AdminAuth } from './shared/http/operator-auth';
import { codecRoutes } from './shared/temporal/codec-server';
import { healthRoutes } from './shared/http/health';
import { ipnRoutes } from './messages/routes';
import { webhookRoutes } from './webhooks/routes';
import { topupPageRoutes } from './topups/page';
import type { AppDeps } from './shared/http/deps';

export type { AppDeps };

export function createApp(deps: AppDeps): Koa {
  const app = new Koa({ proxy: true });
  app.use(async (ctx, next) => {
    const start = process.hrtime.bigint();
    await next();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    httpDuration.observe({ route: String(route), status: String(ctx.status) }, seconds);
    // Method, path and status only: headers carry the admin token (and a codec endpoint's path an API key).
    const path = ctx.path.startsWith('/codec/') ? '/codec/…' : ctx.path;
    deps.logger.debug({ method: ctx.method, path, status: ctx.status, ms: Math.round(seconds * 1000) }, 'http');
  });
  app.use(errorHandler(deps.logger));
  // Twice: here, before routing, for every path the admin router matches (any method, so its 405s
  // and Allow lists too) or that reads as /admin some other way; and as the admin router's own first
  // middleware, for every request it hands to a handler.
  const auth = new AdminAuth(deps);
  const admin = adminApiRoutes(deps, auth);
  app.use(adminGuard(auth, admin));
  const codec = codecRoutes(deps.config, async (key) => (await auth.operators.authenticate(key)) !== null);
  const routers = [healthRoutes(deps), ipnRoutes(deps), webhookRoutes(deps), topupPageRoutes(deps), codec, admin];
  for (const router of routers) {
    app.use(router.routes()).use(router.allowedMethods());
  }
  return app;
}
