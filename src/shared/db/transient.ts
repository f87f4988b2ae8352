import mongoose from 'mongoose';

/**
 * Lock contention inside FerretDB's store. FerretDB answers it as InternalError (code 1) with the
 * backend's message: SQLite's "database is locked (5) (SQLITE_BUSY)" once its busy timeout (10 s)
 * runs out, PostgreSQL's serialization failure or deadlock. The write did not happen, so the same
 * write can be sent again.
 */
const TRANSIENT = /SQLITE_BUSY|database is locked|SQLSTATE (40001|40P01)/;

export function isTransientStoreError(err: unknown): boolean {
  return (
    err instanceof mongoose.mongo.MongoServerError && isTransientWriteError({ code: err.code, errmsg: err.message })
  );
}

/** The same contention, as one statement's refusal within a command of several (its write error). */
export function isTransientWriteError(e: { code?: unknown; errmsg?: string }): boolean {
  return e.code === 1 && TRANSIENT.test(e.errmsg ?? '');
}

/** The wait before attempt `attempt + 1`: jittered, doubling from 50 ms. */
export const backoff = (attempt: number) =>
  new Promise((r) => setTimeout(r, 50 * 2 ** (attempt - 1) * (0.5 + Math.random())));

export class StoreBusyError extends Error {
  constructor(what: string, attempts: number, cause: unknown) {
    super(`${what}: the store stayed busy through ${attempts} attempts`, { cause });
    this.name = 'StoreBusyError';
  }
}
