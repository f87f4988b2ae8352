import Router from '@koa/router';
import getRawBody from 'raw-body';
import type { AppDeps } from '../app';
import { storeIpn } from '../../ipn/intake';
import { UndispatchableError } from '../../ipn/dispatcher';
import { ipnReceived } from '../../metrics';

/**
 * PayPal's door. The only promise it makes: answer an empty 200 once the raw bytes are stored,
 * and anything else (so PayPal resends) when they are not. All judgement happens in workflows.
 */
export function ipnRoutes({ db, dispatcher, config, logger, integrations }: AppDeps): Router {
  const router = new Router();
  router.post('/ipn/:integrationId', async (ctx) => {
    const answer = (status: number, result: string, body = '') => {
      ctx.status = status;
      ctx.body = body;
      ipnReceived.inc({ result });
    };
    if (!ctx.is('application/x-www-form-urlencoded'))
      return answer(415, 'unsupported_media_type', 'IPN must be application/x-www-form-urlencoded');
    let raw: Buffer;
    try {
      raw = await getRawBody(ctx.req, {
        limit: config.IPN_MAX_BODY_BYTES,
        length: ctx.get('content-length') || undefined,
      });
    } catch (err) {
      const e = err as { type?: string; status?: number };
      if (e.type === 'entity.too.large')
        return answer(413, 'too_large', `IPN larger than ${config.IPN_MAX_BODY_BYTES} bytes`);
      return answer(e.status ?? 400, 'unreadable', 'could not read body');
    }
    let stored;
    try {
      const integration = await integrations.get(ctx.params.integrationId!);
      if (!integration) {
        logger.warn({ integrationId: ctx.params.integrationId, bytes: raw.length }, 'IPN for unknown integration');
        return answer(404, 'unknown_integration', 'unknown integration');
      }
      stored = await storeIpn(db.models, {
        integrationId: integration._id,
        raw,
        contentType: ctx.get('content-type'),
        remoteAddress: ctx.ip,
        ipnEnabled: integration.ipnEnabled,
        sandboxNotAllowed: integration.mode === 'sandbox' && !config.ALLOW_SANDBOX_INTEGRATIONS,
      });
    } catch (err) {
      // Not stored means not received: PayPal must send it again.
      logger.error(
        { err: (err as Error).message, integrationId: ctx.params.integrationId },
        'could not store IPN; answering 503',
      );
      return answer(503, 'store_failed', 'temporarily unavailable');
    }
    answer(200, stored.state);
    if (stored.state === 'received') {
      // After the answer: PayPal must not wait on Temporal. The relay covers a failure here.
      setImmediate(() =>
        dispatcher.dispatch(stored).catch((err) => {
          // An undispatchable message is already set aside and alerted.
          if (err instanceof UndispatchableError) return;
          logger.warn({ err: (err as Error).message, messageId: stored._id }, 'dispatch failed; relay will retry');
        }),
      );
    }
  });
  return router;
}
