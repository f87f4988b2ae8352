import Koa from 'koa';
import type { Client } from '@temporalio/client';
import { requireAdminTokenConfig, type Config } from '../config';
import type { Database } from '../db/connection';
import type { Logger } from '../logger';
import type { IpnDispatcher } from '../ipn/dispatcher';
import type { IntakeIntegrations } from '../integrations/intake-cache';
import { httpDuration } from '../metrics';
import { adminGuard } from './auth';
import { errorHandler } from './errors';
import { adminRoutes } from './routes/admin';
import { healthRoutes } from './routes/health';
import { ipnRoutes } from './routes/ipn';
import { profileRoutes } from './routes/profiles';
import { payoutRoutes } from './routes/payouts';

export interface AppDeps {
  db: Database;
  client: Client;
  config: Config;
  logger: Logger;
  dispatcher: IpnDispatcher;
  /** The IPN route's short-lived view of integrations; the admin API forgets what it saves. */
  integrations: IntakeIntegrations;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa({ proxy: true });
  app.use(async (ctx, next) => {
    const start = process.hrtime.bigint();
    await next();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    httpDuration.observe({ route: String(route), status: String(ctx.status) }, seconds);
    // Method, path and status only: headers carry the admin token.
    deps.logger.debug(
      { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(seconds * 1000) },
      'http',
    );
  });
  app.use(errorHandler(deps.logger));
  // Here, not in the admin router: a router-level check only sees paths the router spells its own way.
  app.use(adminGuard(requireAdminTokenConfig(deps.config)));
  const routers = [healthRoutes(deps), ipnRoutes(deps), adminRoutes(deps), profileRoutes(deps), payoutRoutes(deps)];
  for (const router of routers) {
    app.use(router.routes()).use(router.allowedMethods());
  }
  return app;
}
