/**
 * MongoDB's duplicate-key answer (code 11000), the everyday answer of a claim by `_id` or a unique
 * key: "already there", not a failure. FerretDB answers the same code.
 */
export const DUPLICATE_KEY = 11000;

export function isDuplicateKey(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: number }).code === DUPLICATE_KEY;
}

/**
 * The documents an unordered insertMany refused as already there (their indexes), or null when it
 * failed any other way too (the caller rethrows).
 */
export function duplicateKeyIndexes(err: unknown): number[] | null {
  type WriteError = { index?: number; code?: number; err?: { index?: number; code?: number } };
  const errors = (err as { writeErrors?: WriteError[] } | null)?.writeErrors;
  if (!Array.isArray(errors) || errors.length === 0) return null;
  const indexes: number[] = [];
  for (const e of errors) {
    const index = e.index ?? e.err?.index;
    if ((e.code ?? e.err?.code) !== DUPLICATE_KEY || typeof index !== 'number') return null;
    indexes.push(index);
  }
  return indexes;
}
