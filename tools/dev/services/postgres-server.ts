import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { assertEnterable, binariesFor, postgresRunAs, resolvePostgresBinaries } from '../provision/postgres';
import type { PostgresBinaries, RunAs } from '../provision/postgres';
import { tail } from '../provision/exec';
import { freePort, startProcess, waitUntil } from './process';

export interface PostgresServer {
  /** For FerretDB's --postgresql-url: the `ferretdb` database, reachable on 127.0.0.1 only. */
  url: string;
  stop(): Promise<void>;
}

const DATABASE = 'ferretdb';
const USER = 'ferretdb';
/**
 * FerretDB's pool of PostgreSQL connections. FerretDB v1 holds two of them for an update of a stored
 * document, taking the second while it holds the first, so its pool must outnumber every command its
 * clients can have in flight (src/shared/db/connection.ts): here the bench's four processes, or a test
 * run's many handles, at 16 each. PostgreSQL starts a backend only for a connection FerretDB opens.
 */
export const FERRETDB_POOL = 200;
/** FerretDB's pool and a few more (psql, the superuser's reserved ones). */
export const POSTGRES_MAX_CONNECTIONS = FERRETDB_POOL + 10;

/**
 * An embedded PostgreSQL cluster in `clusterDir`, created on first use and found again afterwards.
 * Only FerretDB talks to it, over 127.0.0.1 with trust auth: the same exposure as FerretDB's own
 * unauthenticated port, and no secret to keep. Unix sockets are off so nothing is left in /tmp.
 */
export async function startPostgres(opts: {
  clusterDir: string;
  env: NodeJS.ProcessEnv;
  logFile?: string;
  log?: (m: string) => void;
}): Promise<PostgresServer> {
  const user = postgresRunAs();
  const bin = user ? binariesFor(user, resolvePostgresBinaries()) : resolvePostgresBinaries();
  if (user) assertEnterable(user, [bin.postgres, opts.clusterDir]);
  if (!fs.existsSync(`${opts.clusterDir}/PG_VERSION`)) {
    opts.log?.(`creating a PostgreSQL ${bin.version.split('-')[0]} cluster in ${opts.clusterDir}...`);
    await initCluster(bin, opts.clusterDir, opts.env, user);
  } else if (!fs.existsSync(`${opts.clusterDir}/${SCHEMA_MARK}`)) {
    opts.log?.(`giving the _id indexes of ${opts.clusterDir} direct updates (made before they had them)...`);
    await runOrThrow(
      bin.postgres,
      ['--single', '-D', opts.clusterDir, '-j', DATABASE],
      opts.env,
      user,
      ID_INDEX_UPGRADE,
    );
    fs.writeFileSync(`${opts.clusterDir}/${SCHEMA_MARK}`, '');
  }
  const port = await freePort();
  const args = [
    ...['-D', opts.clusterDir, '-p', String(port)],
    ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    // FerretDB binds field names as parameters (`_jsonb->$1 @> $2`): only a custom plan sees '_id' there and can use
    // the index below, and PostgreSQL would switch to a generic plan (a sequential scan) after five executions.
    ...['-c', 'plan_cache_mode=force_custom_plan'],
    // A duplicate key is an everyday answer (claims); its statement would copy the document into the log.
    ...['-c', 'log_min_error_statement=panic'],
    ...['-c', `max_connections=${POSTGRES_MAX_CONNECTIONS}`],
  ];
  const proc = startProcess('postgres', bin.postgres, args, {
    env: opts.env,
    logFile: opts.logFile,
    uid: user?.uid,
    gid: user?.gid,
  });
  try {
    // lc_messages=C (set by initdb below) makes this line the same in every locale.
    const ready = async () => proc.output().includes('database system is ready to accept connections');
    await waitUntil('PostgreSQL', ready, {
      timeoutMs: 60_000,
      intervalMs: 100,
      abort: () => (proc.exited() ? `postgres exited:\n${tail(proc.output())}` : undefined),
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    url: `postgres://${USER}@127.0.0.1:${port}/${DATABASE}?pool_max_conns=${FERRETDB_POOL}`,
    stop: () => proc.stop(),
  };
}

/**
 * FerretDB 1.24 looks `_id` up with `_jsonb->'_id' @> '"value"'`, which its own btree index on `_jsonb->'_id'`
 * cannot serve: every `_id` read or update scanned the whole collection (65 ms at 20,000 IPNs, linear in N).
 * A GIN index on the same expression serves `@>`; this trigger gives one to every table FerretDB creates.
 *
 * Without `fastupdate = off`, GIN queues new keys in a pending list that every lookup reads whole until
 * a vacuum merges it: an `_id` lookup then cost PostgreSQL 0.65 ms at 8,000 documents and 2.7 ms at 45,000
 * (bench/db-lookups.ts), growing with recent inserts again. Direct updates cost an insert little.
 * (Single-user mode with -j: a command ends at a semicolon followed by an empty line.)
 */
const ID_INDEX_FUNCTION = `
CREATE OR REPLACE FUNCTION ipnflow_index_id() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE t regclass;
BEGIN
  FOR t IN SELECT objid::regclass FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
    IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = t AND attname = '_jsonb') THEN
      EXECUTE format('CREATE INDEX ON %s USING gin ((_jsonb -> %L)) WITH (fastupdate = off)', t, '_id');
    END IF;
  END LOOP;
END $$;

`;

const ID_INDEX_TRIGGER = `${ID_INDEX_FUNCTION}CREATE EVENT TRIGGER ipnflow_index_id
  ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION ipnflow_index_id();

`;

/** A cluster made before `fastupdate = off`: the function replaced, its GIN indexes switched and their lists merged. */
const ID_INDEX_UPGRADE = `${ID_INDEX_FUNCTION}DO $$
DECLARE i regclass;
BEGIN
  FOR i IN SELECT c.oid::regclass FROM pg_class c JOIN pg_am a ON a.oid = c.relam
      WHERE c.relkind = 'i' AND a.amname = 'gin' AND pg_get_indexdef(c.oid) LIKE '%(_jsonb -> ''_id''::text)%' LOOP
    EXECUTE format('ALTER INDEX %s SET (fastupdate = off)', i);
    PERFORM gin_clean_pending_list(i);
  END LOOP;
END $$;

`;

/** A file in the cluster saying its _id indexes are as ID_INDEX_TRIGGER makes them today. */
export const SCHEMA_MARK = 'ipnflow-id-indexes-v2';

/** initdb into a staging folder renamed at the end, so an interrupted first start is simply redone. */
async function initCluster(bin: PostgresBinaries, clusterDir: string, env: NodeJS.ProcessEnv, user?: RunAs) {
  const staging = `${clusterDir}.init-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
  if (user) fs.chownSync(staging, user.uid, user.gid);
  try {
    const initdb = ['-D', staging, `--username=${USER}`, '--auth=trust', '--encoding=UTF8', '--locale=C'];
    initdb.push('--no-instructions');
    await runOrThrow(bin.initdb, initdb, env, user);
    // Single-user mode: the database exists before any server listens, without a client library.
    const single = ['--single', '-D', staging, '-c', 'exit_on_error=on'];
    await runOrThrow(bin.postgres, [...single, 'postgres'], env, user, `CREATE DATABASE ${DATABASE};\n`);
    await runOrThrow(bin.postgres, [...single, '-j', DATABASE], env, user, ID_INDEX_TRIGGER);
    fs.writeFileSync(`${staging}/${SCHEMA_MARK}`, '');
    fs.renameSync(staging, clusterDir);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/**
 * SQL run in single-user mode on a stopped cluster, as the user PostgreSQL runs as; resolves with what it printed
 * (a row prints as `name = "value"` lines). For tests and upgrades, which need no client library.
 */
export async function runSingleUser(clusterDir: string, sql: string, env: NodeJS.ProcessEnv): Promise<string> {
  const user = postgresRunAs();
  const bin = user ? binariesFor(user, resolvePostgresBinaries()) : resolvePostgresBinaries();
  return runOrThrow(bin.postgres, ['--single', '-D', clusterDir, '-j', DATABASE], env, user, sql);
}

function runOrThrow(cmd: string, args: string[], env: NodeJS.ProcessEnv, user?: RunAs, input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, uid: user?.uid, gid: user?.gid, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const as = user ? `, as user ${user.name}` : '';
      if (code === 0) resolve(output);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}${as}):\n${tail(output)}`));
    });
    child.stdin.end(input);
  });
}
