import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { HttpError } from './errors';

export async function readJson(ctx: Context, limit = '256kb'): Promise<unknown> {
  if (!ctx.is('application/json')) throw new HttpError(415, 'expected Content-Type: application/json');
  let text: string;
  try {
    text = await getRawBody(ctx.req, { limit, encoding: 'utf8' });
  } catch (err) {
    if ((err as { type?: string }).type === 'entity.too.large') throw new HttpError(413, `body larger than ${limit}`);
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
  }
}
