import Router from '@koa/router';
import type { AppDeps } from './deps';
import { requireAdminTokenConfig } from '../config';
import { adminRouteGuard } from './auth';
import { adminRoutes } from '../../admin/routes';
import { payoutRoutes } from '../../masspay/routes';
import { profileRoutes } from '../../profiles/routes';

/**
 * Every admin route in one router, its token check first: a route added to any of these routers is
 * behind the gate without anyone remembering to put it there. No prefix of its own: each nested
 * router keeps its /admin… prefix, so the routes are spelt exactly as before.
 */
export function adminApiRoutes(deps: AppDeps): Router {
  const router = new Router({ sensitive: true });
  router.use(adminRouteGuard(requireAdminTokenConfig(deps.config), router));
  for (const nested of [adminRoutes(deps), profileRoutes(deps), payoutRoutes(deps)]) router.use(nested.routes());
  return router;
}
