import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProvisioningError } from '../src/dev/provision/errors';
import { cachedTemporalCliPath, resolveTemporalCli, TEMPORAL_CLI_VERSION } from '../src/dev/provision/temporal-cli';
import { cachedFerretDbPath, resolveMongoBinary } from '../src/dev/provision/ferretdb';
import { startTemporalServer } from '../src/dev/services/temporal-server';
import { startMongoServer } from '../src/dev/services/mongo-server';
import { run } from '../src/dev/provision/exec';

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
  await expect(resolveMongoBinary({ env: { ...env, PATH: go.bin } })).resolves.toEqual({ kind: 'ferretdb', path: ferret, source: 'cache' });
  expect(fs.existsSync(go.calls)).toBe(false);
});

test('the cache sits outside the repo, keyed by version, so fresh clones share it', () => {
  const cache = cachedTemporalCliPath({ HOME: '/home/someone' });
  expect(cache).toBe(`/home/someone/.cache/ipnflow/tools/temporal-${TEMPORAL_CLI_VERSION}/temporal`);
  expect(cache.startsWith(path.resolve(__dirname, '..'))).toBe(false);
});

test('TEMPORAL_CLI_PATH wins, and a wrong one is a clear error rather than a silent fallback', async () => {
  const dir = tmp();
  const mine = executable(path.join(dir, 'my-temporal'), 'echo mine');
  await expect(resolveTemporalCli({ env: { TEMPORAL_CLI_PATH: mine, PATH: '' } })).resolves.toEqual({ path: mine, source: 'env' });
  await expect(resolveTemporalCli({ env: { TEMPORAL_CLI_PATH: path.join(dir, 'missing'), PATH: '' } })).rejects.toThrow(/TEMPORAL_CLI_PATH=.*not an executable/);
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
  const env = { PATH: '', HOME: dir, IPNFLOW_CACHE_DIR: path.join(dir, 'cache'), MONGOMS_DOWNLOAD_DIR: path.join(dir, 'mongoms') };
  const temporal = await startTemporalServer({ env, headless: true }).catch((e: unknown) => e);
  expect(temporal).toBeInstanceOf(ProvisioningError);
  expect((temporal as ProvisioningError).attempts.at(-1)).toMatch(/download through @temporalio\/testing/);
  const mongo = await startMongoServer({ env }).catch((e: unknown) => e);
  expect(mongo).toBeInstanceOf(ProvisioningError);
  expect((mongo as ProvisioningError).attempts.at(-1)).toMatch(/mongodb-memory-server/);
}, 120_000);

test('a failing Go build surfaces Go\'s own output', async () => {
  const dir = tmp();
  const go = recordingGo(dir, 1);
  const err = await resolveTemporalCli({ env: { PATH: go.bin, HOME: dir, IPNFLOW_CACHE_DIR: path.join(dir, 'cache') } }).catch((e: unknown) => e);
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
