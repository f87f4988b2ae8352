import fs from 'node:fs';
import path from 'node:path';
import { ProvisioningError } from './errors';
import { findOnPath, isExecutable, run, tail } from './exec';
import { toolCacheDir } from './cache';

/** Newest tag without a `replace` directive in its go.mod: later ones cannot be `go install`ed. */
export const TEMPORAL_CLI_VERSION = '1.5.1';

export type TemporalCliSource = 'env' | 'path' | 'cache' | 'built';

export interface ResolvedTool {
  path: string;
  source: TemporalCliSource;
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** Build with Go when nothing is installed (default true). */
  allowBuild?: boolean;
  log?: (msg: string) => void;
}

export function cachedTemporalCliPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolCacheDir(env), `temporal-${TEMPORAL_CLI_VERSION}`, 'temporal');
}

/**
 * Finds or builds the official Temporal CLI: TEMPORAL_CLI_PATH, then `temporal` on PATH,
 * then our versioned cache, then `go install`. Returns undefined when none of these can
 * work, so the caller may fall back to the SDK's own download (needs the internet).
 */
export async function resolveTemporalCli(opts: ResolveOptions = {}): Promise<ResolvedTool> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const tried: string[] = [];

  if (env.TEMPORAL_CLI_PATH) {
    if (isExecutable(env.TEMPORAL_CLI_PATH)) return { path: env.TEMPORAL_CLI_PATH, source: 'env' };
    throw new ProvisioningError(
      'the Temporal CLI',
      [`TEMPORAL_CLI_PATH=${env.TEMPORAL_CLI_PATH}: not an executable file`],
      'point TEMPORAL_CLI_PATH at the `temporal` binary, or unset it.',
    );
  }
  tried.push('TEMPORAL_CLI_PATH: not set');

  const onPath = findOnPath('temporal', env);
  if (onPath) return { path: onPath, source: 'path' };
  tried.push('`temporal` on PATH: not found');

  const cached = cachedTemporalCliPath(env);
  if (isExecutable(cached)) return { path: cached, source: 'cache' };
  tried.push(`cache ${cached}: empty`);

  const go = findOnPath('go', env);
  if (go && opts.allowBuild !== false) {
    log(`Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go (first run only, a few minutes)...`);
    await goInstall(go, env, cached);
    return { path: cached, source: 'built' };
  }
  tried.push(go ? 'building with Go: disabled' : '`go` on PATH: not found');

  throw new ProvisioningError('the Temporal CLI', tried, temporalAdvice());
}

export function temporalAdvice(): string {
  return [
    'install Go >= 1.25 (we then build the CLI once into ~/.cache/ipnflow),',
    'or install the Temporal CLI (https://docs.temporal.io/cli) and put `temporal` on PATH or set TEMPORAL_CLI_PATH,',
    'or run against an existing server with TEMPORAL_ADDRESS=host:port.',
  ].join(' ');
}

async function goInstall(go: string, env: NodeJS.ProcessEnv, target: string): Promise<void> {
  // Build into a private folder and rename: two concurrent first runs must not see a half-written binary.
  const staging = `${path.dirname(target)}.tmp-${process.pid}`;
  fs.mkdirSync(staging, { recursive: true });
  try {
    const result = await run(
      go,
      [
        'install',
        '-ldflags',
        `-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`,
        `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`,
      ],
      { env: { ...env, CGO_ENABLED: '0', GOBIN: staging, GOFLAGS: '-mod=mod' } },
    );
    const built = path.join(staging, 'temporal');
    if (result.code !== 0 || !isExecutable(built)) {
      throw new ProvisioningError(
        'the Temporal CLI',
        [
          `go install github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION} ` +
            `failed (exit ${result.code}):\n${tail(result.stderr)}`,
        ],
        temporalAdvice(),
      );
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(built, target);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
