import Router from '@koa/router';
import getRawBody from 'raw-body';
import type { AppDeps } from '../shared/http/deps';
import { clientKey } from '../messages/rate-limit';
import { WebhookDoorLimit } from './door-limit';

/** PayPal's webhook bodies are small JSON documents; a Payouts item event is about 2 KB. */
const WEBHOOK_MAX_BYTES = 64 * 1024;

/**
 * PayPal's webhook door, like the IPN door: the raw bytes and transmission headers are stored, then
 * 200; nothing is acted on before that. A signature that fails, a body that is not an event we know:
 * flagged on the stored message (judged from memory as it is stored, or after the answer when a
 * certificate must be fetched: WebhookIntake.receive), never applied, never dropped.
 */
export function webhookRoutes({ integrations, webhooks, logger, config }: AppDeps): Router {
  const router = new Router();
  const limit = new WebhookDoorLimit({
    points: config.WEBHOOK_REFUSED_POINTS,
    windowSeconds: config.WEBHOOK_REFUSED_WINDOW_SECONDS,
  });
  router.post('/webhooks/paypal/:integrationId', async (ctx) => {
    const client = clientKey(ctx.request.ips, ctx.request.socket.remoteAddress);
    const refuse = async (status: number, error: string) => {
      await limit.refused(client);
      ctx.set('Connection', 'close');
      ctx.status = status;
      ctx.body = { error };
    };
    const wait = await limit.blocked(client);
    if (wait !== null) {
      ctx.set('Retry-After', String(wait));
      ctx.set('Connection', 'close');
      ctx.status = 429;
      ctx.body = { error: 'too many refused webhook posts from this address' };
      return;
    }
    if (!ctx.is('application/json')) return refuse(415, 'a PayPal webhook is application/json');
    const integration = await integrations.get(ctx.params.integrationId!);
    if (!integration) return refuse(404, 'unknown integration');
    let raw: Buffer;
    try {
      raw = await getRawBody(ctx.req, { limit: WEBHOOK_MAX_BYTES, length: ctx.get('content-length') || undefined });
    } catch (err) {
      const e = err as { type?: string; status?: number };
      return refuse(e.type === 'entity.too.large' ? 413 : (e.status ?? 400), 'could not read the body');
    }
    try {
      await webhooks.receive(integration._id, raw, ctx.headers as Record<string, string | undefined>);
    } catch (err) {
      // Not stored means not received: PayPal sends it again (up to 25 times over 3 days).
      logger.error({ err: (err as Error).message, integrationId: integration._id }, 'could not store webhook; 503');
      ctx.status = 503;
      ctx.body = { error: 'temporarily unavailable' };
      return;
    }
    ctx.status = 200;
    ctx.body = '';
  });
  return router;
}
