import Router from '@koa/router';
import type { AppDeps } from './deps';
import { pingDatabase } from '../db/connection';
import { registry } from '../metrics';

export function healthRoutes({ db, client, config }: AppDeps): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const [mongo, temporal] = await Promise.all([
      check(() => pingDatabase(db)),
      check(() =>
        client.connection.withDeadline(Date.now() + 2_000, () =>
          client.workflowService.describeNamespace({ namespace: config.TEMPORAL_NAMESPACE }),
        ),
      ),
    ]);
    const down = [...(mongo ? [] : ['mongodb']), ...(temporal ? [] : ['temporal'])];
    ctx.status = down.length ? 503 : 200;
    ctx.body = {
      status: down.length ? 'unavailable' : 'ready',
      mongodb: mongo ? 'up' : 'down',
      temporal: temporal ? 'up' : 'down',
      down,
    };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  return router;
}

async function check(probe: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), 2_500))),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
