import { DUPLICATE_KEY } from './duplicate-keys';
import { backoff, isTransientStoreError, isTransientWriteError } from './transient';

/**
 * Group commit within one process. A write that finds none of its kind in flight goes at once, alone;
 * the ones that arrive while a write is in flight gather, and go together as the next one: one
 * command for many documents. A burst thus costs a few commands instead of one each, a lone write
 * costs nothing more, and nothing waits on a timer. Each caller gets its own item's answer.
 */
export class Gathered<T> {
  private tail: Promise<void> = Promise.resolve();
  private gathering?: { items: T[]; answers: Promise<Array<Error | undefined>> };

  constructor(
    /** Writes the items; answers each one in its place (an Error for the ones that failed alone). */
    private readonly write: (items: T[]) => Promise<Array<Error | undefined>>,
    /** The most items one write carries. */
    private readonly max = 100,
  ) {}

  async add(item: T): Promise<void> {
    let batch = this.gathering;
    if (!batch || batch.items.length >= this.max) {
      const items: T[] = [];
      const answers = this.tail.then(() => {
        // Running now: whatever arrives from here on gathers into the next write.
        if (this.gathering?.items === items) this.gathering = undefined;
        return this.write(items);
      });
      this.tail = answers.then(
        () => undefined,
        () => undefined,
      );
      this.gathering = batch = { items, answers };
    }
    const index = batch.items.push(item) - 1;
    const answer = (await batch.answers)[index];
    if (answer) throw answer;
  }
}

type WriteError = { index: number; code?: number; errmsg?: string };

/**
 * Writes items one statement each in one command, gathered, and answers each in its place:
 * contention is retried for the statements it refused (as `retryTransientStoreErrors` does for one
 * write), `done` says which refusals mean the item is already written, any other is its item's error.
 */
function gatheredWrites<T>(
  what: string,
  send: (items: T[]) => Promise<unknown>,
  done: (e: WriteError) => boolean,
): Gathered<T> {
  const write = async (items: T[]): Promise<Array<Error | undefined>> => {
    const answers: Array<Error | undefined> = new Array(items.length).fill(undefined);
    let todo = items.map((_item, i) => i);
    for (let attempt = 1; todo.length > 0; attempt++) {
      let errors: WriteError[];
      try {
        errors = await refusedStatements(() => send(todo.map((i) => items[i]!)), todo.length);
      } catch (err) {
        // Refused whole (one document too large for the command, the connection lost): each goes
        // alone, so that one item's fault is its own and not its batch mates'.
        if (todo.length === 1) {
          answers[todo[0]!] = new Error(`${what}: ${(err as Error).message}`, { cause: err });
          break;
        }
        const alone = await Promise.all(todo.map((i) => write([items[i]!])));
        todo.forEach((i, k) => (answers[i] = alone[k]![0]));
        break;
      }
      const again: number[] = [];
      for (const e of errors) {
        const i = todo[e.index]!;
        if (done(e)) continue;
        if (isTransientWriteError(e) && attempt < ATTEMPTS) again.push(i);
        else answers[i] = new StoreWriteError(what, e);
      }
      todo = again;
      if (todo.length) await backoff(attempt);
    }
    return answers;
  };
  return new Gathered(write);
}

/**
 * The statements a command refused, by index: none when it succeeded, every one when the store
 * refused the whole command with contention; any other failure of the whole command is thrown.
 */
async function refusedStatements(command: () => Promise<unknown>, count: number): Promise<WriteError[]> {
  try {
    await command();
    return [];
  } catch (err) {
    const writeErrors = (err as { writeErrors?: unknown }).writeErrors;
    if (Array.isArray(writeErrors) && writeErrors.length > 0) {
      return writeErrors.map((e: { index?: number; code?: number; errmsg?: string; err?: WriteError }) => ({
        index: e.index ?? e.err?.index ?? -1,
        code: e.code ?? e.err?.code,
        errmsg: e.errmsg ?? e.err?.errmsg,
      }));
    }
    if (!isTransientStoreError(err)) throw err;
    const errmsg = (err as Error).message;
    return Array.from({ length: count }, (_x, index) => ({ index, code: 1, errmsg }));
  }
}

/**
 * Inserts, gathered. `duplicates` says what a document refused as already there means: `written`
 * where every caller picks a fresh `_id` (it was inserted by an earlier attempt of this very write),
 * `refused` where the `_id` is a claim (the caller gets an error whose `code` is the duplicate-key
 * code, and finds out whose claim it is).
 */
export const gatheredInserts = <D>(
  what: string,
  collection: { insertMany(docs: D[], o: Ordered): Promise<unknown> },
  duplicates: 'written' | 'refused',
) =>
  gatheredWrites<D>(
    what,
    (docs) => collection.insertMany(docs, UNORDERED),
    (e) => duplicates === 'written' && e.code === DUPLICATE_KEY,
  );

/** Deletes by `_id`, gathered: one statement each, so that every statement goes by `_id`. */
export const gatheredDeletes = (
  what: string,
  collection: { bulkWrite(ops: Array<{ deleteOne: { filter: { _id: never } } }>, o: Ordered): Promise<unknown> },
) =>
  gatheredWrites<unknown>(
    what,
    (ids) =>
      collection.bulkWrite(
        ids.map((_id) => ({ deleteOne: { filter: { _id: _id as never } } })),
        UNORDERED,
      ),
    () => false,
  );

type Ordered = { ordered: false };
const UNORDERED: Ordered = { ordered: false };
const ATTEMPTS = 5;

/** One statement the store refused; `code` is the store's (isDuplicateKey reads it as for a lone write). */
export class StoreWriteError extends Error {
  readonly code: number | undefined;
  constructor(what: string, e: WriteError) {
    super(`${what}: the store refused it (code ${e.code ?? 'unknown'}): ${e.errmsg ?? 'no message'}`);
    this.name = 'StoreWriteError';
    this.code = e.code;
  }
}
