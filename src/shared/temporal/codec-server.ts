import Router from '@koa/router';
import type { Context } from 'koa';
import type { Payload } from '@temporalio/common';
import { z } from 'zod';
import type { Config } from '../config';
import { AesGcmCodec, parseCodecKeys } from './codec';
import { readJson } from '../http/json-body';
import { HttpError } from '../http/errors';

const PayloadsSchema = z.object({
  payloads: z
    .array(z.object({ metadata: z.record(z.string(), z.string()).optional(), data: z.string().optional() }))
    .max(10_000),
});

const toPayload = (p: z.infer<typeof PayloadsSchema>['payloads'][number]): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const fromPayload = (p: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

/** Whose key a codec request carries: a Bearer header, or the `:key` the endpoint URL was configured with. */
export type CodecAuthenticate = (apiKey: string) => Promise<boolean>;

/**
 * Temporal's codec server protocol (POST <endpoint>/encode, /decode, `{ payloads: [{ metadata, data }] }`,
 * base64), for the Web UI to show decoded payloads to an operator. Behind an operator's API key: the
 * UI sends no header of its own without OIDC, so the endpoint an operator configures in the UI may carry
 * their key as its last segment (`/codec/<api key>`), kept out of our request log. CORS for the UI's origin.
 */
export function codecRoutes(config: Config, authenticate: CodecAuthenticate): Router {
  const router = new Router({ prefix: '/codec', sensitive: true });
  const keys = parseCodecKeys(config.TEMPORAL_CODEC_KEYS, config.TEMPORAL_CODEC_KEY_ID);
  const origins = (config.TEMPORAL_UI_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  const cors = (ctx: Context) => {
    const origin = ctx.get('origin');
    if (origin && origins.includes(origin)) {
      ctx.set('Access-Control-Allow-Origin', origin);
      ctx.set('Access-Control-Allow-Credentials', 'true');
      ctx.set('Vary', 'Origin');
    }
  };
  const handle = (op: 'encode' | 'decode') => async (ctx: Context) => {
    cors(ctx);
    if (!keys) throw new HttpError(404, 'no codec: TEMPORAL_CODEC_KEYS is not set');
    const header = ctx.get('authorization');
    const apiKey = (ctx.params as { key?: string }).key ?? (header.startsWith('Bearer ') ? header.slice(7) : '');
    if (!apiKey || !(await authenticate(apiKey))) throw new HttpError(401, 'the codec needs an operator API key');
    const { payloads } = PayloadsSchema.parse(await readJson(ctx, '4mb'));
    const codec = new AesGcmCodec(keys);
    const out = await codec[op](payloads.map(toPayload));
    ctx.body = { payloads: out.map(fromPayload) };
  };
  for (const op of ['encode', 'decode'] as const) {
    for (const path of [`/${op}`, `/:key/${op}`]) {
      router.post(path, handle(op));
      router.options(path, (ctx) => {
        cors(ctx);
        ctx.set('Access-Control-Allow-Methods', 'POST, OPTIONS');
        ctx.set('Access-Control-Allow-Headers', 'content-type, x-namespace, authorization');
        ctx.status = 204;
      });
    }
  }
  return router;
}
