import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProvisioningError } from './errors';
import { findOnPath, isExecutable, run, tail } from './exec';
import { toolCacheDir } from './cache';

export const FERRETDB_VERSION = '1.24.2';
const MODULE = 'github.com/FerretDB/FerretDB';

export type MongoBinary = { kind: 'mongod' | 'ferretdb'; path: string; source: 'env' | 'path' | 'cache' | 'built' };

export function cachedFerretDbPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolCacheDir(env), `ferretdb-${FERRETDB_VERSION}`, 'ferretdb');
}

/**
 * A MongoDB-wire server binary: MONGOD_PATH or `mongod` on PATH (real MongoDB), else FerretDB
 * from our cache, else FerretDB built with Go. Throws when none works (the caller may then try
 * mongodb-memory-server's download).
 */
export async function resolveMongoBinary(
  opts: { env?: NodeJS.ProcessEnv; allowBuild?: boolean; log?: (m: string) => void } = {},
): Promise<MongoBinary> {
  const env = opts.env ?? process.env;
  const tried: string[] = [];
  if (env.MONGOD_PATH) {
    if (isExecutable(env.MONGOD_PATH)) return { kind: 'mongod', path: env.MONGOD_PATH, source: 'env' };
    throw new ProvisioningError(
      'a MongoDB server',
      [`MONGOD_PATH=${env.MONGOD_PATH}: not an executable file`],
      'point MONGOD_PATH at `mongod`, or unset it.',
    );
  }
  tried.push('MONGOD_PATH: not set');
  const mongod = findOnPath('mongod', env);
  if (mongod) return { kind: 'mongod', path: mongod, source: 'path' };
  tried.push('`mongod` on PATH: not found');

  const cached = cachedFerretDbPath(env);
  if (isExecutable(cached)) return { kind: 'ferretdb', path: cached, source: 'cache' };
  tried.push(`FerretDB cache ${cached}: empty`);

  const go = findOnPath('go', env);
  if (go && opts.allowBuild !== false) {
    opts.log?.(`Building FerretDB ${FERRETDB_VERSION} with Go (first run only)...`);
    await buildFerretDb(go, env, cached);
    return { kind: 'ferretdb', path: cached, source: 'built' };
  }
  tried.push(go ? 'building FerretDB with Go: disabled' : '`go` on PATH: not found');
  throw new ProvisioningError('a MongoDB server', tried, mongoAdvice());
}

export function mongoAdvice(): string {
  return (
    'set MONGODB_URI to a running MongoDB (e.g. `docker compose up mongo`), or install `mongod` (or ' +
    'set MONGOD_PATH), or install Go >= 1.25 so FerretDB can be built once into ~/.cache/ipnflow.'
  );
}

/**
 * `go install …/ferretdb@v1.24.2` cannot be used as is: the module proxy refuses the module's
 * version list (go install asks it for deprecations), and the published module lacks the
 * generated build/version/version.txt, without which the binary panics at start. So: download
 * the exact module version through the proxy, add the version file FerretDB's own build task
 * generates, and build its cmd/ferretdb with the module's own go.sum.
 */
async function buildFerretDb(go: string, env: NodeJS.ProcessEnv, target: string): Promise<void> {
  const goEnv = { ...env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' };
  const dl = await run(go, ['mod', 'download', '-json', `${MODULE}@v${FERRETDB_VERSION}`], {
    env: goEnv,
    cwd: os.tmpdir(),
  });
  const dir = dl.code === 0 ? (JSON.parse(dl.stdout) as { Dir?: string }).Dir : undefined;
  if (!dir) {
    throw new ProvisioningError(
      'a MongoDB server',
      [`go mod download ${MODULE}@v${FERRETDB_VERSION} failed (exit ${dl.code}):\n${tail(dl.stderr + dl.stdout)}`],
      mongoAdvice(),
    );
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-ferretdb-'));
  try {
    fs.cpSync(dir, work, { recursive: true });
    makeWritable(work);
    fs.writeFileSync(path.join(work, 'build', 'version', 'version.txt'), `v${FERRETDB_VERSION}\n`);
    const staging = `${target}.tmp-${process.pid}`;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const build = await run(go, ['build', '-trimpath', '-o', staging, './cmd/ferretdb'], { env: goEnv, cwd: work });
    if (build.code !== 0 || !isExecutable(staging)) {
      throw new ProvisioningError(
        'a MongoDB server',
        [`go build ${MODULE}/cmd/ferretdb failed (exit ${build.code}):\n${tail(build.stderr)}`],
        mongoAdvice(),
      );
    }
    fs.renameSync(staging, target);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function makeWritable(dir: string): void {
  // The module cache is read-only; the copy must accept the generated version file.
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    fs.chmodSync(p, entry.isDirectory() ? 0o755 : 0o644);
    if (entry.isDirectory()) makeWritable(p);
  }
}
