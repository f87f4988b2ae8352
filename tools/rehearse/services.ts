import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { FERRETDB_POOL, POSTGRES_MAX_CONNECTIONS, startPostgres } from '../dev/services/postgres-server';
import { binariesFor, postgresRunAs, resolvePostgresBinaries } from '../dev/provision/postgres';
import { resolveMongoBinary } from '../dev/provision/ferretdb';
import { resolveTemporalCli } from '../dev/provision/temporal-cli';
import { resolveTemporalServer } from '../dev/provision/temporal-server';
import { run, tail } from '../dev/provision/exec';
import { freePort, startProcess, waitUntil, type ManagedProcess } from '../dev/services/process';
import { waitForMongo } from '../dev/services/mongo-server';
import { DYNAMIC_CONFIG, renderServerConfig } from './server-config';

/** A server the rehearsal can SIGKILL and start again where its clients expect it (same port, same data). */
export interface Restartable {
  name: string;
  pid(): number;
  /** Starts it and resolves once it serves. */
  start(): Promise<void>;
  kill(): void;
  stop(): Promise<void>;
}

/** What `startPostgres` sets up (and the user it runs as), so the cluster's files are exactly those of `npm start`. */
const PG_USER = 'ferretdb';

/**
 * An embedded PostgreSQL cluster on a port fixed for the run. The cluster is created by the dev stack's own
 * startPostgres (its user, its settings); afterwards we launch the binary ourselves, because startPostgres picks a
 * new port on every start and a restarted database must be found where FerretDB and Temporal left it.
 */
export async function postgresCluster(
  name: string,
  dataDir: string,
  logDir: string,
): Promise<Restartable & { port: number }> {
  const clusterDir = path.join(dataDir, 'pg');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  const logFile = path.join(logDir, `${name}.log`);
  const first = await startPostgres({ clusterDir, env: process.env, logFile });
  await first.stop();
  const user = postgresRunAs();
  const bin = user ? binariesFor(user, resolvePostgresBinaries()) : resolvePostgresBinaries();
  const port = await freePort();
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  let proc: ManagedProcess | undefined;
  return {
    name,
    port,
    pid: () => proc!.child.pid!,
    async start() {
      // A SIGKILLed postmaster leaves postmaster.pid behind; PostgreSQL checks the pid in it and starts anyway.
      const args = ['-D', clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'];
      args.push('-c', 'unix_socket_directories=', '-c', 'plan_cache_mode=force_custom_plan');
      args.push('-c', 'log_min_error_statement=panic', '-c', `max_connections=${POSTGRES_MAX_CONNECTIONS}`);
      // Our own log stream, open for the whole run: after a SIGKILL the postmaster's children still hold its pipes
      // and write to them, and startProcess's log file is closed at the postmaster's exit (write after end).
      const p = startProcess(name, bin.postgres, args, { uid: user?.uid, gid: user?.gid });
      p.child.stdout?.on('data', (d: Buffer) => log.write(d));
      p.child.stderr?.on('data', (d: Buffer) => log.write(d));
      proc = p;
      await waitUntil(name, async () => p.output().includes('database system is ready to accept connections'), {
        timeoutMs: 120_000,
        intervalMs: 100,
        abort: () => (p.exited() ? `exited:\n${tail(p.output())}` : undefined),
      });
    },
    kill: () => proc?.child.kill('SIGKILL'),
    stop: async () => {
      await proc?.stop();
      log.end();
    },
  };
}

/** FerretDB on a PostgreSQL cluster, on a fixed port. */
export async function ferretDb(
  pg: { port: number },
  logDir: string,
  stateDir: string,
): Promise<Restartable & { uri: string }> {
  const binary = await resolveMongoBinary({});
  if (binary.kind !== 'ferretdb')
    throw new Error(`the rehearsal runs FerretDB; found ${binary.kind} at ${binary.path}`);
  const port = await freePort();
  const uri = `mongodb://127.0.0.1:${port}`;
  fs.mkdirSync(stateDir, { recursive: true });
  let proc: ManagedProcess | undefined;
  return {
    name: 'ferretdb',
    uri,
    pid: () => proc!.child.pid!,
    async start() {
      // Its pool outnumbers the commands of the run's four service processes (see FERRETDB_POOL).
      const url = `postgres://${PG_USER}@127.0.0.1:${pg.port}/ferretdb?pool_max_conns=${FERRETDB_POOL}`;
      const args = ['--handler=postgresql', `--postgresql-url=${url}`];
      args.push(`--state-dir=${stateDir}`, `--listen-addr=127.0.0.1:${port}`, '--debug-addr=-', '--telemetry=disable');
      args.push('--log-level=warn');
      const p = startProcess('ferretdb', binary.path, args, { logFile: path.join(logDir, 'ferretdb.log') });
      proc = p;
      await waitForMongo(uri, () => (p.exited() ? `ferretdb exited:\n${p.output()}` : undefined));
    },
    kill: () => proc?.child.kill('SIGKILL'),
    stop: async () => proc?.stop(),
  };
}

/**
 * The real Temporal server on its own PostgreSQL cluster: schemas set up by temporal-sql-tool (embedded in it), the
 * config rendered from tools/rehearse/temporal-postgres.yaml, then the namespace and our search attributes created
 * with the Temporal CLI's operator commands, as an operator would.
 */
export async function realTemporal(opts: {
  pg: { port: number };
  runDir: string;
  logDir: string;
  namespace: string;
  searchAttributes: Record<string, string>;
  log: (m: string) => void;
}): Promise<Restartable & { address: string }> {
  const bins = await resolveTemporalServer({ log: opts.log });
  const sql = ['--ep', '127.0.0.1', '-p', String(opts.pg.port), '-u', PG_USER, '--pw', 'trust', '--pl', 'postgres12'];
  for (const [db, schema] of [
    ['temporal', 'postgresql/v12/temporal'],
    ['temporal_visibility', 'postgresql/v12/visibility'],
  ] as const) {
    for (const step of [['create'], ['setup-schema', '-v', '0.0'], ['update-schema', '--schema-name', schema]]) {
      const r = await run(bins.sqlTool, [...sql, '--db', db, ...step], { env: process.env });
      if (r.code !== 0)
        throw new Error(`temporal-sql-tool --db ${db} ${step.join(' ')}:\n${tail(r.stderr + r.stdout)}`);
    }
  }
  // Below 32768: the cluster_membership table keeps ports as smallint, and ephemeral ports are above it.
  const ports = {
    FRONTEND_PORT: await lowPort(),
    FRONTEND_HTTP_PORT: await lowPort(),
    FRONTEND_MEMBERSHIP_PORT: await lowPort(),
    HISTORY_PORT: await lowPort(),
    HISTORY_MEMBERSHIP_PORT: await lowPort(),
    MATCHING_PORT: await lowPort(),
    MATCHING_MEMBERSHIP_PORT: await lowPort(),
    WORKER_PORT: await lowPort(),
    WORKER_MEMBERSHIP_PORT: await lowPort(),
  };
  const configDir = path.join(opts.runDir, 'temporal-config');
  fs.mkdirSync(configDir, { recursive: true });
  const dynamic = path.join(configDir, 'dynamic.yaml');
  fs.copyFileSync(DYNAMIC_CONFIG, dynamic);
  const configFile = path.join(configDir, 'rehearse.yaml');
  fs.writeFileSync(
    configFile,
    renderServerConfig({
      PG_PORT: opts.pg.port,
      PG_USER,
      PG_PASSWORD: 'trust',
      DYNAMIC_CONFIG_FILE: dynamic,
      ...ports,
    }),
  );
  const address = `127.0.0.1:${ports.FRONTEND_PORT}`;
  let proc: ManagedProcess | undefined;
  let created = false;
  const server: Restartable & { address: string } = {
    name: 'temporal-server',
    address,
    pid: () => proc!.child.pid!,
    async start() {
      const args = ['--config-file', configFile, '--allow-no-auth', 'start'];
      const p = startProcess('temporal-server', bins.server, args, {
        logFile: path.join(opts.logDir, 'temporal-server.log'),
      });
      proc = p;
      const abort = () => (p.exited() ? `temporal-server exited:\n${tail(p.output(), 30)}` : undefined);
      await waitForNamespace(address, 'temporal-system', abort);
      if (!created) {
        await createNamespace(address, opts.namespace, opts.searchAttributes);
        created = true;
      }
      await waitForNamespace(address, opts.namespace, abort);
    },
    kill: () => proc?.child.kill('SIGKILL'),
    stop: async () => proc?.stop(),
  };
  return server;
}

const taken = new Set<number>();
/** A free port in 20000-32767, none handed out twice in this run. */
async function lowPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
}

async function waitForNamespace(address: string, namespace: string, abort: () => string | undefined) {
  await waitUntil(
    `Temporal at ${address}, namespace ${namespace}`,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return true;
      } finally {
        await connection.close();
      }
    },
    { timeoutMs: 180_000, intervalMs: 500, abort },
  );
}

async function createNamespace(address: string, namespace: string, attributes: Record<string, string>) {
  const cli = await resolveTemporalCli({});
  const temporal = async (args: string[]) => {
    const r = await run(cli.path, [...args, '--address', address], { env: process.env });
    if (r.code !== 0) throw new Error(`temporal ${args.join(' ')}:\n${tail(r.stderr + r.stdout)}`);
  };
  await temporal(['operator', 'namespace', 'create', '--namespace', namespace, '--retention', '72h']);
  await waitForNamespace(address, namespace, () => undefined);
  const pairs = Object.entries(attributes).flatMap(([name, type]) => ['--name', name, '--type', type]);
  await temporal(['operator', 'search-attribute', 'create', '--namespace', namespace, ...pairs]);
}

/** One of our Node processes (an API or a worker from a build's dist/), ready when `ready` says so. */
export function nodeProcess(opts: {
  name: string;
  script: () => string;
  env: NodeJS.ProcessEnv;
  logDir: string;
  ready: (p: ManagedProcess) => Promise<boolean>;
}): Restartable & { proc(): ManagedProcess | undefined } {
  let proc: ManagedProcess | undefined;
  return {
    name: opts.name,
    pid: () => proc!.child.pid!,
    proc: () => proc,
    async start() {
      const p = startProcess(opts.name, process.execPath, [opts.script()], {
        env: opts.env,
        logFile: path.join(opts.logDir, `${opts.name}.log`),
      });
      proc = p;
      await waitUntil(opts.name, () => opts.ready(p), {
        timeoutMs: 180_000,
        intervalMs: 200,
        abort: () => (p.exited() ? `exited:\n${tail(p.output())}` : undefined),
      });
    },
    kill: () => proc?.child.kill('SIGKILL'),
    stop: async () => proc?.stop(),
  };
}

/**
 * The load balancer in front of the two APIs, as a deployment has one: round robin, and a request that fails on one
 * API (refused, cut off) goes to the other, as PayPal's resend would, soon after. Counts what each API answered.
 */
export async function loadBalancer(backends: () => string[]): Promise<{
  url: string;
  answered: number[];
  retried: () => number;
  close(): Promise<void>;
}> {
  const answered = backends().map(() => 0);
  let next = 0;
  let retried = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void (async () => {
        const urls = backends();
        for (let attempt = 0; attempt < 20; attempt++) {
          const i = next++ % urls.length;
          try {
            const r = await fetch(`${urls[i]}${req.url}`, {
              method: req.method,
              headers: forwardable(req.headers),
              body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
              signal: AbortSignal.timeout(30_000),
            });
            const text = Buffer.from(await r.arrayBuffer());
            if (r.status >= 500) throw new Error(`answered ${r.status}`);
            answered[i]!++;
            res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
            res.end(text);
            return;
          } catch {
            retried++;
            await new Promise((r) => setTimeout(r, 250));
          }
        }
        res.writeHead(502).end('no API answered');
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    answered,
    retried: () => retried,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The request's headers minus those that describe this hop's connection. */
function forwardable(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive'].includes(k)) continue;
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}
