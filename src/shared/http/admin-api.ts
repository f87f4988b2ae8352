import Router from '@koa/router';
import type { AppDeps } from './deps';
import { adminRouteGuard } from './auth';
import { AdminAuth } from './operator-auth';
import { adminRoutes } from '../../admin/routes';
import { payoutRoutes } from '../../masspay/routes';
import { profileRoutes } from '../../profiles/routes';
import { operatorRoutes } from '../../operators/routes';
import { topupRoutes } from '../../topups/routes';

/**
 * Every admin route in one router, its key, role and second-factor check first: a route added to any
 * of these routers is behind the gate without anyone remembering to put it there (and refused until
 * route-policy.ts names its role). No prefix of its own: each nested router keeps its /admin… prefix.
 */
export function adminApiRoutes(deps: AppDeps, auth = new AdminAuth(deps)): Router {
  const router = new Router({ sensitive: true });
  router.use(adminRouteGuard(auth, router));
  const nestedRouters = [
    adminRoutes(deps),
    profileRoutes(deps),
    payoutRoutes(deps),
    operatorRoutes(deps, auth.operators),
    topupRoutes(deps),
  ];
  for (const nested of nestedRouters) router.use(nested.routes());
  return router;
}
