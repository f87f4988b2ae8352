import mongoose from 'mongoose';
import { bindModels, type Models } from './models';

export interface Database {
  connection: mongoose.Connection;
  models: Models;
  close(): Promise<void>;
}

/**
 * Commands one process has in flight at most, unless MONGODB_URI names its own `maxPoolSize`.
 *
 * FerretDB v1 (our embedded store, and the rehearsal's) updates a stored document while it still holds
 * the PostgreSQL connection it read it with, and takes a second one from its pool (`pool_max_conns`, 50
 * unless its URL says otherwise) to write. When every pooled connection is held by an update waiting for
 * its second, the store never answers again: 200 updates at once through the driver's default of 100
 * hung it within five rounds. A pool larger than all its clients' commands together cannot be exhausted
 * that way: three processes of 16 stay under 50. 16 at once is far more than a process needs (a burst of
 * 200 payments sends about 300 commands a second, each answered in a few ms).
 */
export const DEFAULT_MAX_POOL_SIZE = 16;

/** The driver's own URI option wins over our default (read by the driver, case-insensitively). */
export function poolSizeFor(uri: string): { maxPoolSize?: number } {
  const query = uri.split('?')[1] ?? '';
  const given = new URLSearchParams(query);
  const named = [...given.keys()].some((k) => k.toLowerCase() === 'maxpoolsize');
  return named ? {} : { maxPoolSize: DEFAULT_MAX_POOL_SIZE };
}

/**
 * Commands fail fast instead of queueing while the server is away: the IPN endpoint must answer
 * 503 (so PayPal resends) rather than hang, and readiness must report the truth.
 */
export async function connectDatabase(uri: string, dbName: string): Promise<Database> {
  const connection = mongoose.createConnection(uri, {
    dbName,
    bufferCommands: false,
    serverSelectionTimeoutMS: 3_000,
    heartbeatFrequencyMS: 1_000,
    autoIndex: false,
    ...poolSizeFor(uri),
  });
  await connection.asPromise();
  const models = bindModels(connection);
  await Promise.all(Object.values(models).map((m) => m.createIndexes()));
  return { connection, models, close: () => connection.close() };
}

export async function pingDatabase(db: Database): Promise<void> {
  if (!db.connection.db) throw new Error('not connected');
  await db.connection.db.admin().command({ ping: 1 });
}
