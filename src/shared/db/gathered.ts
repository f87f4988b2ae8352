import { DUPLICATE_KEY, refusedStatements, type RefusedStatement } from './duplicate-keys';
import { backoff, isTransientStoreError, isTransientWriteError, StoreBusyError } from './transient';

/**
 * Group commit within one process: the items that arrive while a write is under way go together in
 * the next one, one command for many documents. A write starts as soon as one is free (`atOnce`
 * may run side by side), with every item that arrived in the same turn of the event loop; nothing
 * waits on a timer, and a lone item costs nothing more. Each caller gets its own item's answer.
 */
export class Gathered<T, R = void> {
  private queue: Array<{ item: T; settle: (answer: R | Error) => void }> = [];
  private running = 0;

  constructor(
    /** Writes the items and answers each in its place (an Error for one that failed alone); a throw fails them all. */
    private readonly write: (items: T[]) => Promise<Array<R | Error>>,
    private readonly limits: { max?: number; atOnce?: number } = {},
  ) {}

  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, settle: (answer) => (answer instanceof Error ? reject(answer) : resolve(answer)) });
      if (this.running < (this.limits.atOnce ?? 1)) {
        this.running++;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, this.limits.max ?? 100);
        const answers = await this.write(group.map((e) => e.item)).catch((err: unknown) => {
          const failed = err instanceof Error ? err : new Error(String(err));
          return group.map(() => failed);
        });
        group.forEach((e, i) => e.settle(answers[i] as R | Error));
      }
    } finally {
      this.running--;
    }
  }
}

/**
 * Writes items one statement each in one command, gathered, and answers each in its place:
 * contention is retried for the statements it refused (a store that stays busy ends in StoreBusyError),
 * `done` says which refusals mean the item is already written, any other is its item's error.
 */
function gatheredWrites<T>(
  what: string,
  send: (items: T[]) => Promise<unknown>,
  done: (e: RefusedStatement) => boolean,
): Gathered<T> {
  const write = async (items: T[]): Promise<Array<Error | void>> => {
    const answers: Array<Error | void> = new Array(items.length).fill(undefined);
    let todo = items.map((_item, i) => i);
    for (let attempt = 1; todo.length > 0; attempt++) {
      let errors: RefusedStatement[];
      try {
        errors = await refusedIn(() => send(todo.map((i) => items[i]!)), todo.length);
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
        if (!isTransientWriteError(e)) answers[i] = new StoreWriteError(what, e);
        else if (attempt < ATTEMPTS) again.push(i);
        else answers[i] = new StoreBusyError(what, attempt, new Error(e.errmsg));
      }
      todo = again;
      if (todo.length) await backoff(attempt);
    }
    return answers;
  };
  return new Gathered<T>(write);
}

/**
 * The statements a command refused: none when it succeeded, every one when the store refused the
 * whole command with contention; any other failure of the whole command is thrown.
 */
async function refusedIn(command: () => Promise<unknown>, count: number): Promise<RefusedStatement[]> {
  try {
    await command();
    return [];
  } catch (err) {
    const refused = refusedStatements(err);
    if (refused && refused.every((e) => e.index < count)) return refused;
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
  collection: { insertMany(docs: D[], o: Ordered & Serialize): Promise<unknown> },
  duplicates: 'written' | 'refused',
  serialize: Serialize = {},
) =>
  gatheredWrites<D>(
    what,
    (docs) => collection.insertMany(docs, { ...serialize, ...UNORDERED }),
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
/** The driver's serialization option: undefined fields left out instead of stored as null. */
type Serialize = { ignoreUndefined?: true };
const UNORDERED: Ordered = { ordered: false };
const ATTEMPTS = 5;

/** One statement the store refused; `code` is the store's (isDuplicateKey reads it as for a lone write). */
export class StoreWriteError extends Error {
  readonly code: number | undefined;
  constructor(what: string, e: RefusedStatement) {
    super(`${what}: the store refused it (code ${e.code ?? 'unknown'}): ${e.errmsg ?? 'no message'}`);
    this.name = 'StoreWriteError';
    this.code = e.code;
  }
}
