import fs from 'node:fs';
import path from 'node:path';
import { ProvisioningError } from './errors';
import { findOnPath, isExecutable, run, tail } from './exec';
import { toolCacheDir } from './cache';

/**
 * The real Temporal server (not the CLI's dev server) and its SQL schema tool, built from the Go module proxy.
 * 1.31.2 rather than the newest 1.31.x: 1.31.3 to 1.31.5 require go.temporal.io/auto-scaled-workers
 * v0.0.x-1.31.2, a version whose zip the module proxy refuses (403), so they cannot be built from it.
 */
export const TEMPORAL_SERVER_VERSION = '1.31.2';
const MODULE = 'go.temporal.io/server';
const TOOL = `the Temporal server ${TEMPORAL_SERVER_VERSION}`;

export interface TemporalServerBinaries {
  server: string;
  sqlTool: string;
  source: 'cache' | 'built';
}

export function temporalServerDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolCacheDir(env), `temporal-server-${TEMPORAL_SERVER_VERSION}`);
}

function cached(env: NodeJS.ProcessEnv): Omit<TemporalServerBinaries, 'source'> {
  const dir = temporalServerDir(env);
  return { server: path.join(dir, 'temporal-server'), sqlTool: path.join(dir, 'temporal-sql-tool') };
}

/**
 * `temporal-server` and `temporal-sql-tool` from our tool cache, built with `go install` on first use (about ten
 * minutes on two cores). A lock file makes a second caller wait for the first build instead of starting its own.
 */
export async function resolveTemporalServer(
  opts: { env?: NodeJS.ProcessEnv; allowBuild?: boolean; log?: (m: string) => void; lockWaitMs?: number } = {},
): Promise<TemporalServerBinaries> {
  const env = opts.env ?? process.env;
  const bins = cached(env);
  const ready = () => isExecutable(bins.server) && isExecutable(bins.sqlTool);
  if (ready()) return { ...bins, source: 'cache' };
  const go = findOnPath('go', env);
  if (!go || opts.allowBuild === false) {
    const tried = [
      `cache ${temporalServerDir(env)}: empty`,
      go ? 'building with Go: disabled' : '`go` on PATH: not found',
    ];
    throw new ProvisioningError(TOOL, tried, advice());
  }
  const release = await acquireLock(`${temporalServerDir(env)}.lock`, opts.lockWaitMs ?? 30 * 60_000, opts.log);
  try {
    if (ready()) return { ...bins, source: 'cache' }; // built by whoever held the lock
    opts.log?.(`Building ${TOOL} with Go (first run only, about 10 minutes on 2 cores)...`);
    await goInstall(go, env, bins);
    return { ...bins, source: 'built' };
  } finally {
    release();
  }
}

function advice(): string {
  const pkgs = ['cmd/server', 'cmd/tools/sql'].map((p) => `${MODULE}/${p}@v${TEMPORAL_SERVER_VERSION}`).join(' ');
  const dir = `~/.cache/ipnflow/tools/temporal-server-${TEMPORAL_SERVER_VERSION}`;
  return (
    'install Go >= 1.26 so the server can be built once into ~/.cache/ipnflow, or build it yourself with ' +
    `\`go install ${pkgs}\` and copy \`server\` and \`sql\` to ${dir}/temporal-server and ${dir}/temporal-sql-tool.`
  );
}

async function goInstall(go: string, env: NodeJS.ProcessEnv, bins: Omit<TemporalServerBinaries, 'source'>) {
  // A private GOBIN renamed at the end: nobody ever sees a half-written binary.
  const staging = `${temporalServerDir(env)}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  try {
    const pkgs = ['cmd/server', 'cmd/tools/sql'].map((p) => `${MODULE}/${p}@v${TEMPORAL_SERVER_VERSION}`);
    // GOTOOLCHAIN=auto: the module may ask for a newer Go than the local one, which the proxy then provides.
    const goEnv = { ...env, CGO_ENABLED: '0', GOBIN: staging, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'auto' };
    const result = await run(go, ['install', ...pkgs], { env: goEnv });
    const built = { server: path.join(staging, 'server'), sqlTool: path.join(staging, 'sql') };
    if (result.code !== 0 || !isExecutable(built.server) || !isExecutable(built.sqlTool)) {
      throw new ProvisioningError(
        TOOL,
        [`go install ${pkgs.join(' ')} failed (exit ${result.code}):\n${tail(result.stderr)}`],
        advice(),
      );
    }
    fs.mkdirSync(path.dirname(bins.server), { recursive: true });
    fs.renameSync(built.sqlTool, bins.sqlTool);
    fs.renameSync(built.server, bins.server);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * An exclusive lock file holding its owner's pid. A lock whose owner is gone (a build killed half way) is taken
 * over; otherwise we wait for it, saying so once.
 */
export async function acquireLock(file: string, waitMs: number, log?: (m: string) => void): Promise<() => void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const deadline = Date.now() + waitMs;
  let said = false;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(fs.readFileSync(file, 'utf8').trim());
    if (!alive(owner)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${file}: still held by process ${owner} after ${waitMs} ms`);
    if (!said) log?.(`waiting for process ${owner}, which is building ${TOOL} (lock ${file})...`);
    said = true;
    await new Promise((r) => setTimeout(r, 2_000));
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
