import type { Context } from 'koa';
import { HttpError } from './errors';

const MAX_LIMIT = 500;

/**
 * Keyset pagination over `_id` for admin lists: `?limit=` (≤ 500) and `?after=` (the last `_id`
 * of the previous page). The next page's cursor comes back in `X-Next-Cursor` (absent on the
 * last page), so list bodies stay plain arrays. Pages never skip or repeat under inserts.
 */
export function pageOf(ctx: Context, defaultLimit = 100): { limit: number; after?: string } {
  const rawLimit = ctx.query.limit;
  const limit = rawLimit === undefined ? defaultLimit : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new HttpError(400, `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  const after = typeof ctx.query.after === 'string' && ctx.query.after !== '' ? ctx.query.after : undefined;
  return { limit, after };
}

/** Takes a page of `limit + 1` rows sorted by _id: returns `limit` of them and sets the cursor when more follow. */
export function sendPage<T extends { _id: unknown }>(ctx: Context, rows: T[], limit: number): T[] {
  const page = rows.slice(0, limit);
  if (rows.length > limit) ctx.set('X-Next-Cursor', String(page.at(-1)!._id));
  return page;
}
