import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { postgresRunAs, resolvePostgresBinaries, type RunAs } from '../provision/postgres';
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
 * An embedded PostgreSQL cluster in `clusterDir`, created on first use and found again afterwards.
 * Only FerretDB talks to it, over 127.0.0.1 with trust auth: the same exposure as FerretDB's own
 * unauthenticated port, and no secret to keep. Unix sockets are off so nothing is left in /tmp.
 */
export async function startPostgres(opts: { clusterDir: string; env: NodeJS.ProcessEnv; logFile?: string; log?: (m: string) => void }): Promise<PostgresServer> {
  const bin = resolvePostgresBinaries();
  const user = postgresRunAs();
  if (!fs.existsSync(`${opts.clusterDir}/PG_VERSION`)) {
    opts.log?.(`creating a PostgreSQL ${bin.version.split('-')[0]} cluster in ${opts.clusterDir}...`);
    await initCluster(bin, opts.clusterDir, opts.env, user);
  }
  const port = await freePort();
  const args = ['-D', opts.clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  const proc = startProcess('postgres', bin.postgres, args, { env: opts.env, logFile: opts.logFile, uid: user?.uid, gid: user?.gid });
  try {
    // lc_messages=C (set by initdb below) makes this line the same in every locale.
    await waitUntil('PostgreSQL', async () => proc.output().includes('database system is ready to accept connections'), {
      timeoutMs: 60_000,
      intervalMs: 100,
      abort: () => (proc.exited() ? `postgres exited:\n${tail(proc.output())}` : undefined),
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { url: `postgres://${USER}@127.0.0.1:${port}/${DATABASE}`, stop: () => proc.stop() };
}

/** initdb into a staging folder renamed at the end, so an interrupted first start is simply redone. */
async function initCluster(bin: { initdb: string; postgres: string }, clusterDir: string, env: NodeJS.ProcessEnv, user?: RunAs): Promise<void> {
  const staging = `${clusterDir}.init-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
  if (user) fs.chownSync(staging, user.uid, user.gid);
  try {
    await runOrThrow(bin.initdb, ['-D', staging, `--username=${USER}`, '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-instructions'], env, user);
    // Single-user mode: the database exists before any server listens, without a client library.
    await runOrThrow(bin.postgres, ['--single', '-D', staging, '-c', 'exit_on_error=on', 'postgres'], env, user, `CREATE DATABASE ${DATABASE};\n`);
    fs.renameSync(staging, clusterDir);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

function runOrThrow(cmd: string, args: string[], env: NodeJS.ProcessEnv, user?: RunAs, input = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, uid: user?.uid, gid: user?.gid, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}${user ? `, as user ${user.name}` : ''}):\n${tail(output)}`));
    });
    child.stdin.end(input);
  });
}
