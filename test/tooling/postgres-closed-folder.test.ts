import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import {
  binariesFor,
  blockedFolders,
  postgresRunAs,
  resolvePostgresBinaries,
  SYSTEM_CLUSTERS_DIR,
} from '../../tools/dev/provision/postgres';
import { startMongoServer } from '../../tools/dev/services/mongo-server';

/**
 * A clone under /root or in a `mktemp -d` folder (mode 700) is closed to the user PostgreSQL runs as
 * when we are root: its binaries are copied once to a folder that user can enter, and its cluster
 * lives in a folder that user owns, so the embedded default stays PostgreSQL wherever the repo is.
 */
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-closed-'));
fs.chmodSync(work, 0o755); // mkdtemp makes it 700; the copy's parent must be enterable, as /tmp is
const clusterHomes: string[] = [];
afterAll(() => {
  for (const dir of [work, ...clusterHomes]) fs.rmSync(dir, { recursive: true, force: true });
});

test('binaries in a closed folder are copied where the PostgreSQL user can run them', () => {
  const real = resolvePostgresBinaries();
  const closed = path.join(work, 'closed');
  const native = path.join(closed, 'node_modules', 'native');
  // Verbatim, as node_modules has them: its library links are relative.
  fs.cpSync(path.resolve(path.dirname(real.postgres), '..'), native, { recursive: true, verbatimSymlinks: true });
  fs.chmodSync(closed, 0o700);
  const inClosed = {
    initdb: path.join(native, 'bin', 'initdb'),
    postgres: path.join(native, 'bin', 'postgres'),
    version: real.version,
  };
  // Whoever we are, `nobody` cannot enter a root-only folder that root owns (or ours, mode 700).
  const nobody = { name: 'nobody', uid: 65534, gid: 65534 };
  expect([...blockedFolders(nobody, [inClosed.postgres]).keys()]).toContain(closed);

  const shared = path.join(work, 'shared');
  fs.mkdirSync(shared, { mode: 0o755 });
  const usable = binariesFor(nobody, inClosed, shared);
  expect(usable.postgres).toBe(path.join(shared, `ipnflow-postgres-${real.version}`, 'bin', 'postgres'));
  expect(blockedFolders(nobody, [usable.postgres]).size).toBe(0);
  // Found again, not copied twice.
  expect(binariesFor(nobody, inClosed, shared)).toEqual(usable);

  const runAs = postgresRunAs(); // only as root can we become another user
  const as = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
  // initdb loads the ICU libraries through the package's relative links: the copy must carry them.
  for (const [binary, name] of [
    [usable.postgres, 'postgres'],
    [usable.initdb, 'initdb'],
  ] as const) {
    const run = spawnSync(binary, ['--version'], as);
    expect([name, run.status, String(run.stdout), String(run.stderr)]).toEqual([
      name,
      0,
      expect.stringMatching(new RegExp(`^${name} \\(PostgreSQL\\) 16\\.`)),
      '',
    ]);
  }
});

test('a data folder closed to that user runs on PostgreSQL all the same, and keeps its permissions', async () => {
  // As a clone in `mktemp -d` or under /root: the repository's own folders are closed to others.
  const closed = path.join(work, 'mktemp-d');
  fs.mkdirSync(closed, { mode: 0o700 });
  const dataDir = path.join(closed, 'repo', '.data', 'db');
  const env = { ...process.env };
  delete env.IPNFLOW_DB_BACKEND; // the embedded default, as npm start has it
  const link = path.join(dataDir, 'pg');
  const user = postgresRunAs();

  const first = await startMongoServer({ env, dataDir });
  if (fs.lstatSync(link).isSymbolicLink()) clusterHomes.push(path.dirname(fs.readlinkSync(link)));
  const client = new mongoose.mongo.MongoClient(first.uri);
  try {
    expect(first).toMatchObject({ kind: 'ferretdb', backend: 'postgres' });
    await client.db('closed').collection<{ _id: string }>('kept').insertOne({ _id: 'x' });
  } finally {
    await client.close();
    await first.stop();
  }

  if (user) {
    // The cluster is the PostgreSQL user's, in root's /var/lib/ipnflow, and the data folder links to it.
    const cluster = fs.readlinkSync(link);
    const home = path.dirname(cluster);
    expect(path.dirname(home)).toBe(SYSTEM_CLUSTERS_DIR);
    expect([fs.statSync(home).uid, fs.statSync(cluster).uid, fs.statSync(cluster).mode & 0o777]).toEqual([
      user.uid,
      user.uid,
      0o700,
    ]);
    expect(fs.readFileSync(path.join(SYSTEM_CLUSTERS_DIR, path.basename(home), 'data-dir'), 'utf8')).toBe(
      `${dataDir}\n`,
    );
    expect(blockedFolders(user, [cluster]).size).toBe(0);
    expect(blockedFolders(user, [dataDir]).keys()).toContain(closed);
  } else {
    expect(fs.statSync(path.join(link, 'PG_VERSION')).isFile()).toBe(true);
  }
  expect(fs.statSync(closed).mode & 0o777).toBe(0o700); // not widened

  // The next start finds the cluster again through the link.
  const second = await startMongoServer({ env, dataDir });
  const again = new mongoose.mongo.MongoClient(second.uri);
  try {
    expect(second.backend).toBe('postgres');
    expect(await again.db('closed').collection<{ _id: string }>('kept').findOne({ _id: 'x' })).toEqual({ _id: 'x' });
  } finally {
    await again.close();
    await second.stop();
  }
}, 120_000);
