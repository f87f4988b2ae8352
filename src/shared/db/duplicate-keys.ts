/**
 * MongoDB's duplicate-key answer (code 11000), the everyday answer of a claim by `_id` or a unique
 * key: "already there", not a failure. FerretDB answers the same code.
 */
export const DUPLICATE_KEY = 11000;

export function isDuplicateKey(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: number }).code === DUPLICATE_KEY;
}

/** One statement a command of several refused: its place in the command, the store's code and message. */
export type RefusedStatement = { index: number; code?: number; errmsg?: string };

/**
 * The statements an unordered bulk command (insertMany, bulkWrite) refused, or null when it failed
 * otherwise: no list, or a refusal that does not say which statement (none can be taken as written).
 */
export function refusedStatements(err: unknown): RefusedStatement[] | null {
  type WriteError = { index?: number; code?: number; errmsg?: string; err?: WriteError };
  const errors = (err as { writeErrors?: WriteError[] } | null)?.writeErrors;
  if (!Array.isArray(errors) || errors.length === 0) return null;
  const refused = errors.map((e) => ({
    index: e.index ?? e.err?.index ?? -1,
    code: e.code ?? e.err?.code,
    errmsg: e.errmsg ?? e.err?.errmsg,
  }));
  return refused.every((e) => Number.isInteger(e.index) && e.index >= 0) ? refused : null;
}

/**
 * The documents an unordered insertMany refused as already there (their indexes), or null when it
 * failed any other way too (the caller rethrows).
 */
export function duplicateKeyIndexes(err: unknown): number[] | null {
  const refused = refusedStatements(err);
  if (!refused || refused.some((e) => e.code !== DUPLICATE_KEY)) return null;
  return refused.map((e) => e.index);
}
