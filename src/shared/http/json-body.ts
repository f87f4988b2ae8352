import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { HttpError } from './errors';
import { identityOf } from './identity';
import { operatorIdentity } from '../operator-actions';

export async function readJson(ctx: Context, limit = '256kb'): Promise<unknown> {
  if (!ctx.is('application/json')) throw new HttpError(415, 'expected Content-Type: application/json');
  let text: string;
  try {
    text = await getRawBody(ctx.req, { limit, encoding: 'utf8' });
  } catch (err) {
    if ((err as { type?: string }).type === 'entity.too.large') throw new HttpError(413, `body larger than ${limit}`);
    throw err;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
  }
  return bindOperator(ctx, body);
}

/**
 * Who acts is the authenticated identity, never what a body says: on an admin request the body's
 * `operator` becomes the caller's operator id (what every audit entry and four-eyes check reads). A
 * body naming someone else is refused (422); absent, or the caller's own id or name, is fine.
 */
function bindOperator(ctx: Context, body: unknown): unknown {
  const identity = identityOf(ctx);
  if (!identity || body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const given = (body as { operator?: unknown }).operator;
  if (given !== undefined) {
    const names = [identity.id, ...(identity.kind === 'operator' ? [identity.name] : [])].map(operatorIdentity);
    if (typeof given !== 'string' || !names.includes(operatorIdentity(given)))
      throw new HttpError(
        422,
        `operator: this key is ${identity.id}'s; a request may not act as someone else (leave operator out)`,
      );
  }
  return { ...body, operator: identity.id };
}
