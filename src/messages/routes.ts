import Router from '@koa/router';
import getRawBody from 'raw-body';
import type { AppDeps } from '../shared/http/deps';
import { storeIpn } from './intake';
import { UndispatchableError } from './dispatcher';
import { ipnReceived } from '../shared/metrics';
import { clientKey, IpnRateLimit } from './rate-limit';

/**
 * PayPal's door. The only promise it makes: answer an empty 200 once the raw bytes are stored,
 * and anything else (so PayPal resends) when they are not. All judgement happens in workflows.
 *
 * Cheap before it is generous: the media type, the client's rate and the integration are checked
 * before a byte of the body is read, so a refusal costs no read (and the connection is closed, so
 * Node does not drain an unread body either).
 */
export function ipnRoutes({ db, dispatcher, config, logger, integrations }: AppDeps): Router {
  const router = new Router();
  const rateLimit = new IpnRateLimit({
    points: config.IPN_RATE_LIMIT_POINTS,
    windowSeconds: config.IPN_RATE_LIMIT_WINDOW_SECONDS,
    maxBodyBytes: config.IPN_MAX_BODY_BYTES,
  });
  router.post('/ipn/:integrationId', async (ctx) => {
    const answer = (status: number, result: string, body = '') => {
      ctx.status = status;
      ctx.body = body;
      ipnReceived.inc({ result });
    };
    const refuseUnread = (status: number, result: string, body: string) => {
      ctx.set('Connection', 'close');
      answer(status, result, body);
    };
    if (!ctx.is('application/x-www-form-urlencoded'))
      return refuseUnread(415, 'unsupported_media_type', 'IPN must be application/x-www-form-urlencoded');
    const declared = ctx.request.length ?? null;
    const waitSeconds = await rateLimit.take(clientKey(ctx.request.ips, ctx.request.socket.remoteAddress), declared);
    if (waitSeconds !== null) {
      ctx.set('Retry-After', String(waitSeconds));
      return refuseUnread(429, 'rate_limited', 'too many requests from this client; retry later');
    }
    if (declared !== null && declared > config.IPN_MAX_BODY_BYTES)
      return refuseUnread(413, 'too_large', `IPN larger than ${config.IPN_MAX_BODY_BYTES} bytes`);
    let integration;
    try {
      integration = await integrations.get(ctx.params.integrationId!);
    } catch (err) {
      logger.error(
        { err: (err as Error).message, integrationId: ctx.params.integrationId },
        'could not look up the integration; answering 503',
      );
      return refuseUnread(503, 'store_failed', 'temporarily unavailable');
    }
    if (!integration) {
      logger.warn({ integrationId: ctx.params.integrationId, bytes: declared }, 'IPN for unknown integration');
      return refuseUnread(404, 'unknown_integration', 'unknown integration');
    }
    let raw: Buffer;
    try {
      raw = await getRawBody(ctx.req, {
        limit: config.IPN_MAX_BODY_BYTES,
        length: ctx.get('content-length') || undefined,
      });
    } catch (err) {
      const e = err as { type?: string; status?: number };
      if (e.type === 'entity.too.large')
        return refuseUnread(413, 'too_large', `IPN larger than ${config.IPN_MAX_BODY_BYTES} bytes`);
      return refuseUnread(e.status ?? 400, 'unreadable', 'could not read body');
    }
    let stored;
    try {
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
