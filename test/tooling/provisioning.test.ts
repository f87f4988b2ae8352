import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProvisioningError } from '../../tools/dev/provision/errors';
import {
  cachedTemporalCliPath,
  resolveTemporalCli,
  TEMPORAL_CLI_VERSION,
} from '../../tools/dev/provision/temporal-cli';
import { cachedFerretDbPath, resolveMongoBinary } from '../../tools/dev/provision/ferretdb';
import { startTemporalServer } from '../../tools/dev/services/temporal-server';
import { startMongoServer } from '../../tools/dev/services/mongo-server';
import { runSingleUser, SCHEMA_MARK } from '../../tools/dev/services/postgres-server';
import { run } from '../../tools/dev/provision/exec';
import { assertEnterable } from '../../tools/dev/provision/postgres';
import mongoose from 'mongoose';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-prov-'));

function executable(file: string, script: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return file;
}

/** A `go` that records being called: proves a cached tool is never rebuilt. */
function recordingGo(dir: string, exitCode = 0): { bin: string; calls: string } {
  const calls = path.join(dir, 'go-calls');
  executable(path.join(dir, 'bin', 'go'), `echo "$@" >> ${calls}\necho "go: simulated failure" >&2\nexit ${exitCode}`);
  return { bin: path.join(dir, 'bin'), calls };
}

test('the versioned cache is reused: nothing is rebuilt when the tools are there', async () => {
  const dir = tmp();
  const env = { IPNFLOW_CACHE_DIR: path.join(dir, 'cache'), PATH: '' };
  const go = recordingGo(dir);
  const cli = executable(cachedTemporalCliPath(env), 'echo fake');
  const ferret = executable(cachedFerretDbPath(env), 'echo fake');
  expect(cli).toContain(`temporal-${TEMPORAL_CLI_VERSION}`);

  await expect(resolveTemporalCli({ env: { ...env, PATH: go.bin } })).resolves.toEqual({ path: cli, source: 'cache' });
  await expect(resolveMongoBinary({ env: { ...env, PATH: go.bin } })).resolves.toEqual({
    kind: 'ferretdb',
    path: ferret,
    source: 'cache',
  });
  expect(fs.existsSync(go.calls)).toBe(false);
});

test('the cache sits outside the repo, keyed by version, so fresh clones share it', () => {
  const cache = cachedTemporalCliPath({ HOME: '/home/someone' });
  expect(cache).toBe(`/home/someone/.cache/ipnflow/tools/temporal-${TEMPORAL_CLI_VERSION}/temporal`);
  expect(cache.startsWith(path.resolve(__dirname, '../..'))).toBe(false);
});

test('TEMPORAL_CLI_PATH wins, and a wrong one is a clear error rather than a silent fallback', async () => {
  const dir = tmp();
  const mine = executable(path.join(dir, 'my-temporal'), 'echo mine');
  await expect(resolveTemporalCli({ env: { TEMPORAL_CLI_PATH: mine, PATH: '' } })).resolves.toEqual({
    path: mine,
    source: 'env',
  });
  await expect(resolveTemporalCli({ env: { TEMPORAL_CLI_PATH: path.join(dir, 'missing'), PATH: '' } })).rejects.toThrow(
    /TEMPORAL_CLI_PATH=.*not an executable/,
  );
});

test('with an empty PATH and no Go, provisioning fails with what to install or set', async () => {
  const dir = tmp();
  const env = { PATH: '', HOME: dir, IPNFLOW_CACHE_DIR: path.join(dir, 'cache') };
  const temporal = await resolveTemporalCli({ env }).catch((e: unknown) => e);
  expect(temporal).toBeInstanceOf(ProvisioningError);
  expect((temporal as Error).message).toMatch(/`go` on PATH: not found/);
  expect((temporal as Error).message).toMatch(/install Go/);
  expect((temporal as Error).message).toMatch(/TEMPORAL_CLI_PATH/);
  expect((temporal as Error).message).toMatch(/TEMPORAL_ADDRESS/);

  const mongo = await resolveMongoBinary({ env }).catch((e: unknown) => e);
  expect(mongo).toBeInstanceOf(ProvisioningError);
  expect((mongo as Error).message).toMatch(/MONGODB_URI/);
  expect((mongo as Error).message).toMatch(/mongod/);
});

test('starting servers with nothing available ends in that error, after trying the downloads', async () => {
  const dir = tmp();
  const env = {
    PATH: '',
    HOME: dir,
    IPNFLOW_CACHE_DIR: path.join(dir, 'cache'),
    MONGOMS_DOWNLOAD_DIR: path.join(dir, 'mongoms'),
  };
  const temporal = await startTemporalServer({ env, headless: true }).catch((e: unknown) => e);
  expect(temporal).toBeInstanceOf(ProvisioningError);
  expect((temporal as ProvisioningError).attempts.at(-1)).toMatch(/download through @temporalio\/testing/);
  // mongodb-memory-server reports its failed download on the console: kept out of the run's output, and checked.
  const warned: string[] = [];
  const warn = jest.spyOn(console, 'warn').mockImplementation((m: unknown) => void warned.push(String(m)));
  const mongo = await startMongoServer({ env })
    .catch((e: unknown) => e)
    .finally(() => warn.mockRestore());
  expect(mongo).toBeInstanceOf(ProvisioningError);
  expect((mongo as ProvisioningError).attempts.at(-1)).toMatch(/mongodb-memory-server/);
  expect(warned).toEqual([expect.stringMatching(/MongoMemoryServer/)]);
}, 120_000);

test("a failing Go build surfaces Go's own output", async () => {
  const dir = tmp();
  const go = recordingGo(dir, 1);
  const err = await resolveTemporalCli({
    env: { PATH: go.bin, HOME: dir, IPNFLOW_CACHE_DIR: path.join(dir, 'cache') },
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ProvisioningError);
  expect((err as Error).message).toMatch(/go install github.com\/temporalio\/cli\/cmd\/temporal@v1\.5\.1 failed/);
  expect((err as Error).message).toMatch(/simulated failure/);
  expect(fs.readFileSync(go.calls, 'utf8')).toMatch(/^install -ldflags/);
  expect(fs.existsSync(cachedTemporalCliPath({ IPNFLOW_CACHE_DIR: path.join(dir, 'cache') }))).toBe(false);
});

test('the tools this run uses are the real, versioned binaries', async () => {
  const cli = await resolveTemporalCli();
  const version = await run(cli.path, ['--version'], { env: process.env });
  expect(version.stdout).toMatch(/temporal version/);
  if (cli.source === 'cache' || cli.source === 'built') expect(version.stdout).toContain(TEMPORAL_CLI_VERSION);
});

/** Live processes whose command line mentions `text`, and the children of `parent` (PostgreSQL's backends). */
function processes(opts: { mentioning?: string; childrenOf?: number }): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const ppid = Number(fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if ((opts.mentioning && cmdline.includes(opts.mentioning)) || ppid === opts.childrenOf) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test(
  'FerretDB on the embedded PostgreSQL answers through the ' + 'MongoDB driver, keeps its data, and leaves no process',
  async () => {
    const env = { ...process.env, IPNFLOW_DB_BACKEND: 'postgres' };
    const first = await startMongoServer({ env });
    expect(first).toMatchObject({ kind: 'ferretdb', backend: 'postgres' });
    const postmaster = Number(fs.readFileSync(path.join(first.dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const client = new mongoose.mongo.MongoClient(first.uri);
    try {
      await expect(client.db('admin').command({ ping: 1 })).resolves.toMatchObject({ ok: 1 });
      await client.db('prov').collection<{ _id: string; n: number }>('kept').insertOne({ _id: 'a', n: 1 });
    } finally {
      await client.close();
    }
    const ours = [postmaster, ...processes({ childrenOf: postmaster }), ...processes({ mentioning: first.dataDir })];
    expect(ours.length).toBeGreaterThanOrEqual(3); // the postmaster, its helpers, FerretDB
    await first.stop();
    expect(ours.filter(alive)).toEqual([]);

    // A second start on the same folder finds the cluster and the data (npm start's case).
    const second = await startMongoServer({ env, dataDir: first.dataDir });
    const again = new mongoose.mongo.MongoClient(second.uri);
    try {
      expect(await again.db('prov').collection<{ _id: string; n: number }>('kept').findOne({ _id: 'a' })).toEqual({
        _id: 'a',
        n: 1,
      });
      // _id lookups use the GIN index the cluster adds to FerretDB's tables, not a scan.
      const plan = JSON.stringify(await again.db('prov').command({ explain: { find: 'kept', filter: { _id: 'a' } } }));
      expect(plan).toContain('Bitmap Index Scan');
    } finally {
      await again.close();
      await second.stop();
    }
    expect(processes({ mentioning: first.dataDir })).toEqual([]);
  },
  120_000,
);

test('the _id indexes take new keys directly, also in a cluster made before they did', async () => {
  const env = { ...process.env, IPNFLOW_DB_BACKEND: 'postgres' };
  const first = await startMongoServer({ env });
  const client = new mongoose.mongo.MongoClient(first.uri);
  try {
    await client.db('prov').collection<{ _id: string }>('gin').insertOne({ _id: 'a' });
  } finally {
    await client.close();
    await first.stop();
  }
  const cluster = path.join(first.dataDir, 'pg');
  const ginOptions = async () =>
    (await runSingleUser(cluster, GIN_OPTIONS, env)).match(/reloptions = "[^"]*"/g) ?? ['no GIN index'];
  // Without it, every lookup reads a pending list of the keys inserted since the last vacuum.
  expect(await ginOptions()).toEqual(['reloptions = "{fastupdate=off}"']);

  // As a cluster made before: the index queues its keys, and the cluster has no mark.
  await runSingleUser(cluster, GIN_FASTUPDATE_ON, env);
  fs.rmSync(path.join(cluster, SCHEMA_MARK));
  expect(await ginOptions()).toEqual(['reloptions = "{fastupdate=on}"']);
  const second = await startMongoServer({ env, dataDir: first.dataDir });
  await second.stop();
  expect(await ginOptions()).toEqual(['reloptions = "{fastupdate=off}"']);
  expect(fs.existsSync(path.join(cluster, SCHEMA_MARK))).toBe(true);
}, 120_000);

test('an unknown IPNFLOW_DB_BACKEND is named in the error, not silently replaced', async () => {
  await expect(startMongoServer({ env: { ...process.env, IPNFLOW_DB_BACKEND: 'mysql' } })).rejects.toThrow(
    'IPNFLOW_DB_BACKEND="mysql": expected one of sqlite, postgres',
  );
});

test("as root, a data folder PostgreSQL's user cannot enter is named up front, with what to do", () => {
  const locked = tmp(); // mkdtemp: mode 700
  const someone = { name: 'someone', uid: 54321, gid: 54321 };
  const cluster = path.join(locked, 'data', 'db', 'pg');
  expect(() => assertEnterable(someone, [cluster])).toThrow(`${locked} (mode 700): user someone cannot enter it`);
  expect(() => assertEnterable(someone, [cluster])).toThrow(/move the cluster.*IPNFLOW_DB_BACKEND=sqlite/s);
  fs.chmodSync(locked, 0o711);
  expect(() => assertEnterable(someone, [cluster])).not.toThrow();
});

const GIN_OPTIONS = `SELECT c.reloptions FROM pg_class c JOIN pg_am a ON a.oid = c.relam
  WHERE c.relkind = 'i' AND a.amname = 'gin' AND c.relname LIKE 'gin%';

`;

const GIN_FASTUPDATE_ON = `DO $$
DECLARE i regclass;
BEGIN
  FOR i IN SELECT c.oid::regclass FROM pg_class c JOIN pg_am a ON a.oid = c.relam
      WHERE c.relkind = 'i' AND a.amname = 'gin' AND c.relname LIKE 'gin%' LOOP
    EXECUTE format('ALTER INDEX %s SET (fastupdate = on)', i);
  END LOOP;
END $$;

`;
