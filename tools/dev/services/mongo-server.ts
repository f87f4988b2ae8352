import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { z } from 'zod';
import { ProvisioningError } from '../provision/errors';
import { resolveMongoBinary, mongoAdvice, type MongoBinary } from '../provision/ferretdb';
import { startPostgres } from './postgres-server';
import { clusterDirFor, postgresRunAs } from '../provision/postgres';
import { freePort, startProcess, waitUntil } from './process';

const DbBackend = z.enum(['sqlite', 'postgres']);
/** What FerretDB stores its data in; mongod and MONGODB_URI ignore it. */
export type DbBackend = z.infer<typeof DbBackend>;
const DEFAULT_BACKEND: DbBackend = 'postgres';

export function dbBackend(env: NodeJS.ProcessEnv): DbBackend {
  const given = env.IPNFLOW_DB_BACKEND || DEFAULT_BACKEND;
  const parsed = DbBackend.safeParse(given);
  if (!parsed.success) {
    throw new Error(`IPNFLOW_DB_BACKEND=${JSON.stringify(given)}: expected one of ${DbBackend.options.join(', ')}`);
  }
  return parsed.data;
}

export interface MongoServer {
  /** Connection string without a database name: callers pick their own. */
  uri: string;
  kind: 'mongod' | 'ferretdb' | 'mongodb-memory-server';
  /** FerretDB's storage; undefined for the others. */
  backend?: DbBackend;
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

/**
 * Starts a local MongoDB-wire server: real mongod when installed, else FerretDB on SQLite or on an
 * embedded PostgreSQL (IPNFLOW_DB_BACKEND). A temporary data folder goes when this process exits.
 */
export async function startMongoServer(opts: MongoServerOptions = {}): Promise<MongoServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      // A free port is only free when asked: another server, or an outgoing connection given the same
      // ephemeral port, may take it before FerretDB or PostgreSQL binds it. A port of our own choosing
      // is asked again; one the caller named is theirs to fix.
      const taken = /address already in use/i.test((err as Error).message);
      if (!taken || opts.port !== undefined || attempt >= PORT_ATTEMPTS) throw err;
      opts.log?.(`a port was taken while the database started; starting it again (attempt ${attempt + 1})`);
    }
  }
}

/** Starts on a port found free, at most this many times (see startMongoServer). */
const PORT_ATTEMPTS = 3;

async function startOnce(opts: MongoServerOptions): Promise<MongoServer> {
  const env = opts.env ?? process.env;
  const backend = dbBackend(env);
  const port = opts.port ?? (await freePort());
  const dataDir = opts.dataDir ?? temporaryDir();
  fs.mkdirSync(dataDir, { recursive: true });
  const uri = `mongodb://127.0.0.1:${port}`;

  let binary;
  try {
    binary = await resolveMongoBinary({ env, log: opts.log });
  } catch (err) {
    if (!(err instanceof ProvisioningError)) throw err;
    return startMemoryServer(err, { dataDir, port, log: opts.log });
  }

  if (binary.kind === 'mongod') {
    const args = ['--dbpath', dataDir, '--port', String(port), '--bind_ip', '127.0.0.1'];
    const proc = await startAndPing(binary, args, { uri, env, logFile: opts.logFile });
    return { uri, kind: binary.kind, port, dataDir, stop: () => proc.stop() };
  }
  const common = [
    `--state-dir=${dataDir}`,
    `--listen-addr=127.0.0.1:${port}`,
    // Off unless asked: FerretDB's Prometheus metrics and Go pprof, for profiling a bench (docs/performance.md).
    process.env.FERRETDB_DEBUG_ADDR ? `--debug-addr=${process.env.FERRETDB_DEBUG_ADDR}` : '--debug-addr=-',
    '--telemetry=disable',
  ];
  common.push('--log-level=warn');
  // FerretDB v1 allocates its way through every command (documents to and from its JSON), and Go's
  // default (collect when the heap doubles) spent about a quarter of its CPU on that in a payment
  // burst. Collecting at 5x its live heap, a few tens of MB here, cut its CPU per payment by about
  // 9% (docs/performance.md); the soft limit makes Go collect sooner again should a large batch
  // grow that heap. An operator's own GOGC and GOMEMLIMIT win.
  const ferretEnv = { GOGC: '400', GOMEMLIMIT: '768MiB', ...env };
  if (backend === 'sqlite') {
    const args = ['--handler=sqlite', `--sqlite-url=file:${dataDir}/`, ...common];
    const proc = await startAndPing(binary, args, { uri, env: ferretEnv, logFile: opts.logFile });
    return { uri, kind: binary.kind, backend, port, dataDir, stop: () => proc.stop() };
  }
  // As root, PostgreSQL runs as another user; when that user cannot enter dataDir (a clone under /root, a
  // `mktemp -d` folder), the cluster lives in a folder of its own that the user owns, linked from dataDir.
  const pgUser = postgresRunAs();
  const cluster = clusterDirFor(dataDir, pgUser);
  if (cluster.linked && temporaryDirs.has(dataDir)) temporaryDirs.add(path.dirname(cluster.dir));
  if (cluster.linked && !fs.existsSync(path.join(cluster.dir, 'PG_VERSION'))) {
    opts.log?.(`PostgreSQL runs as ${pgUser?.name}, who cannot enter ${dataDir}: its cluster goes to ${cluster.dir}`);
  }
  const pg = await startPostgres({ clusterDir: cluster.dir, env, logFile: opts.logFile, log: opts.log });
  const args = ['--handler=postgresql', `--postgresql-url=${pg.url}`, ...common];
  const proc = await startAndPing(binary, args, { uri, env: ferretEnv, logFile: opts.logFile }).catch(
    async (err: unknown) => {
      await pg.stop();
      throw err;
    },
  );
  return {
    uri,
    kind: binary.kind,
    backend,
    port,
    dataDir,
    stop: async () => {
      await proc.stop();
      await pg.stop();
    },
  };
}

type Launch = { uri: string; env: NodeJS.ProcessEnv; logFile?: string };
async function startAndPing(binary: MongoBinary, args: string[], { uri, env, logFile }: Launch) {
  const proc = startProcess(binary.kind, binary.path, args, { env, logFile });
  try {
    await waitForMongo(uri, () => (proc.exited() ? `${binary.kind} exited:\n${proc.output()}` : undefined));
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}

const temporaryDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of temporaryDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // Best effort: a server killed a moment ago may still be writing; the OS cleans tmp anyway.
    }
  }
});

function temporaryDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-db-'));
  // Ours alone and gone at exit: as root, PostgreSQL's user may enter it (mkdtemp makes it 700), so its
  // cluster stays inside.
  if (process.getuid?.() === 0) fs.chmodSync(dir, 0o711);
  temporaryDirs.add(dir);
  return dir;
}

async function startMemoryServer(
  notFound: ProvisioningError,
  opts: { dataDir: string; port: number; log?: (m: string) => void },
): Promise<MongoServer> {
  opts.log?.(
    'No mongod or FerretDB available; trying mongodb-memory-server (downloads MongoDB, needs the internet)...',
  );
  try {
    const { MongoMemoryServer } = await import('mongodb-memory-server-core');
    const server = await MongoMemoryServer.create({
      instance: { dbPath: opts.dataDir, port: opts.port, storageEngine: 'wiredTiger' },
    });
    return {
      uri: `mongodb://127.0.0.1:${opts.port}`,
      kind: 'mongodb-memory-server',
      port: opts.port,
      dataDir: opts.dataDir,
      stop: async () => {
        await server.stop({ doCleanup: false });
      },
    };
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ProvisioningError(
      'a MongoDB server',
      [...notFound.attempts, `mongodb-memory-server download: ${reason}`],
      mongoAdvice(),
    );
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
