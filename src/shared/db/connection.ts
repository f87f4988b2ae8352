import mongoose from 'mongoose';
import { bindModels, type Models } from './models';

export interface Database {
  connection: mongoose.Connection;
  models: Models;
  close(): Promise<void>;
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
