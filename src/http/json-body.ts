import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { HttpError } from './errors';

export async function readJson(ctx: Context): Promise<unknown> {
  if (!ctx.is('application/json')) throw new HttpError(415, 'expected Content-Type: application/json');
  const text = await getRawBody(ctx.req, { limit: '256kb', encoding: 'utf8' });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
  }
}
