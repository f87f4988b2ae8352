import type { Middleware } from 'koa';
import mongoose from 'mongoose';
import { ZodError } from 'zod';
import type { Logger } from '../logger';
import { EmailTakenError } from '../../customers/store';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** One place that turns errors into answers: clear for callers, detailed in our logs. */
export function errorHandler(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof HttpError) {
        ctx.status = err.status;
        ctx.body = { error: err.message, ...(err.details ? { details: err.details } : {}) };
      } else if (err instanceof ZodError) {
        ctx.status = 400;
        ctx.body = {
          error: 'invalid request body',
          issues: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        };
      } else if (err instanceof mongoose.Error.CastError) {
        // A path or query value of the wrong shape (e.g. a malformed cursor): the caller's mistake.
        ctx.status = 400;
        ctx.body = { error: `bad value for ${err.path}: ${JSON.stringify(String(err.value)).slice(0, 80)}` };
      } else if (err instanceof EmailTakenError) {
        ctx.status = 409;
        ctx.body = { error: err.message };
      } else {
        logger.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
        ctx.status = 500;
        ctx.body = { error: 'internal error' };
      }
    }
  };
}
