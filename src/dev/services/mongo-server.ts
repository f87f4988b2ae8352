import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { ProvisioningError } from '../provision/errors';
import { resolveMongoBinary, mongoAdvice } from '../provision/ferretdb';
import { freePort, startProcess, waitUntil } from './process';

export interface MongoServer {
  /** Connection string without a database name: callers pick their own. */
  uri: string;
  kind: 'mongod' | 'ferretdb' | 'mongodb-memory-server';
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

export interface MongoServerOptions {
  env?: NodeJS.ProcessEnv;
  /** Keeps data across restarts when given; a temporary folder otherwise. */
  dataDir?: string;
  port?: number;
  logFile?: string;
  log?: (msg: string) => void;
}

/** Starts a local MongoDB-wire server: real mongod when installed, else FerretDB (SQLite). */
export async function startMongoServer(opts: MongoServerOptions = {}): Promise<MongoServer> {
  const env = opts.env ?? process.env;
  const port = opts.port ?? (await freePort());
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-db-'));
  fs.mkdirSync(dataDir, { recursive: true });
  const uri = `mongodb://127.0.0.1:${port}`;

  let binary;
  try {
    binary = await resolveMongoBinary({ env, log: opts.log });
  } catch (err) {
    if (!(err instanceof ProvisioningError)) throw err;
    return startMemoryServer(err, { dataDir, port, log: opts.log });
  }

  const args =
    binary.kind === 'mongod'
      ? ['--dbpath', dataDir, '--port', String(port), '--bind_ip', '127.0.0.1']
      : [
          '--handler=sqlite',
          `--sqlite-url=file:${dataDir}/`,
          `--state-dir=${dataDir}`,
          `--listen-addr=127.0.0.1:${port}`,
          '--debug-addr=-',
          '--telemetry=disable',
          '--log-level=warn',
        ];
  const proc = startProcess(binary.kind, binary.path, args, { env, logFile: opts.logFile });
  try {
    await waitForMongo(uri, () => (proc.exited() ? `${binary.kind} exited:\n${proc.output()}` : undefined));
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { uri, kind: binary.kind, port, dataDir, stop: () => proc.stop() };
}

async function startMemoryServer(notFound: ProvisioningError, opts: { dataDir: string; port: number; log?: (m: string) => void }): Promise<MongoServer> {
  opts.log?.('No mongod or FerretDB available; trying mongodb-memory-server (downloads MongoDB, needs the internet)...');
  try {
    const { MongoMemoryServer } = await import('mongodb-memory-server-core');
    const server = await MongoMemoryServer.create({ instance: { dbPath: opts.dataDir, port: opts.port, storageEngine: 'wiredTiger' } });
    return { uri: `mongodb://127.0.0.1:${opts.port}`, kind: 'mongodb-memory-server', port: opts.port, dataDir: opts.dataDir, stop: async () => { await server.stop({ doCleanup: false }); } };
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ProvisioningError('a MongoDB server', [...notFound.attempts, `mongodb-memory-server download: ${reason}`], mongoAdvice());
  }
}

export async function waitForMongo(uri: string, abort?: () => string | undefined, timeoutMs = 30_000): Promise<void> {
  await waitUntil(
    `MongoDB at ${uri}`,
    async () => {
      const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 1_000 });
      try {
        await client.db('admin').command({ ping: 1 });
        return true;
      } finally {
        await client.close();
      }
    },
    { timeoutMs, intervalMs: 200, abort },
  );
}
