import Router from '@koa/router';
import getRawBody from 'raw-body';
import type { AppDeps } from '../shared/http/deps';
import type { Stored } from './intake';

/** PayPal's webhook bodies are small JSON documents; a Payouts item event is about 2 KB. */
const WEBHOOK_MAX_BYTES = 64 * 1024;

/**
 * PayPal's webhook door, like the IPN door: the raw bytes and transmission headers are stored, then
 * 200; nothing is judged before that. A signature that fails, a body that is not an event we know:
 * flagged on the stored message after the answer (WebhookIntake), never applied, never dropped.
 */
export function webhookRoutes({ integrations, webhooks, logger }: AppDeps): Router {
  const router = new Router();
  router.post('/webhooks/paypal/:integrationId', async (ctx) => {
    if (!ctx.is('application/json')) {
      ctx.set('Connection', 'close');
      ctx.status = 415;
      ctx.body = { error: 'a PayPal webhook is application/json' };
      return;
    }
    const integration = await integrations.get(ctx.params.integrationId!);
    if (!integration) {
      ctx.set('Connection', 'close');
      ctx.status = 404;
      ctx.body = { error: 'unknown integration' };
      return;
    }
    let raw: Buffer;
    try {
      raw = await getRawBody(ctx.req, { limit: WEBHOOK_MAX_BYTES, length: ctx.get('content-length') || undefined });
    } catch (err) {
      const e = err as { type?: string; status?: number };
      ctx.set('Connection', 'close');
      ctx.status = e.type === 'entity.too.large' ? 413 : (e.status ?? 400);
      ctx.body = { error: 'could not read the body' };
      return;
    }
    let stored: Stored;
    try {
      stored = await webhooks.store(integration._id, raw, ctx.headers as Record<string, string | undefined>);
    } catch (err) {
      // Not stored means not received: PayPal sends it again (up to 25 times over 3 days).
      logger.error({ err: (err as Error).message, integrationId: integration._id }, 'could not store webhook; 503');
      ctx.status = 503;
      ctx.body = { error: 'temporarily unavailable' };
      return;
    }
    ctx.status = 200;
    ctx.body = '';
    setImmediate(() =>
      webhooks.process(stored).catch((err: unknown) => {
        const messageId = String(stored._id);
        logger.warn({ err: (err as Error).message, messageId }, 'webhook processing failed; the relay retries');
      }),
    );
  });
  return router;
}
