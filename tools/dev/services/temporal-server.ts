import { Connection } from '@temporalio/client';
import { ProvisioningError } from '../provision/errors';
import { resolveTemporalCli, temporalAdvice } from '../provision/temporal-cli';
import { toolCacheDir } from '../provision/cache';
import { SEARCH_ATTRIBUTES } from '../../../src/shared/contract';
import { freePort, startProcess, waitUntil } from './process';
import path from 'node:path';

export interface TemporalServer {
  address: string;
  uiUrl?: string;
  source: string;
  stop(): Promise<void>;
}

export interface TemporalServerOptions {
  env?: NodeJS.ProcessEnv;
  ip?: string;
  port?: number;
  /** Web UI port; omit with headless. */
  uiPort?: number;
  /** The codec server the Web UI decodes payloads with (`--ui-codec-endpoint`). */
  uiCodecEndpoint?: string;
  headless?: boolean;
  /** SQLite file for a persistent dev server; in memory when omitted. */
  dbFile?: string;
  namespace?: string;
  logFile?: string;
  log?: (msg: string) => void;
}

/**
 * Our search attributes, and one partition per task queue. The dev server is one matching host
 * with a worker's few pollers; with the default four partitions, a task written to a partition no
 * poller is waiting on stays there until it is forwarded. A burst of 200 payments ended with about
 * 1.5 s of idle machine before its last few workflow tasks were picked up; with one partition the
 * tail went (docs/performance.md).
 */
const SERVER_FLAGS = [
  ...Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
  ...['--dynamic-config-value', 'matching.numTaskqueueReadPartitions=1'],
  ...['--dynamic-config-value', 'matching.numTaskqueueWritePartitions=1'],
];

/**
 * Starts the official Temporal dev server with our search attributes registered. Falls back to
 * the SDK's own download of the CLI when no binary can be found or built (needs the internet).
 */
export async function startTemporalServer(opts: TemporalServerOptions = {}): Promise<TemporalServer> {
  const env = opts.env ?? process.env;
  const ip = opts.ip ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(ip));
  const namespace = opts.namespace ?? 'default';
  const address = `${ip}:${port}`;
  const uiUrl = opts.headless
    ? undefined
    : `http://${ip === '127.0.0.1' || ip === '0.0.0.0' ? 'localhost' : ip}:${opts.uiPort ?? port + 1000}`;

  let cli;
  try {
    cli = await resolveTemporalCli({ env, log: opts.log });
  } catch (err) {
    if (!(err instanceof ProvisioningError)) throw err;
    return startDownloaded(err, { ...opts, ip, port, namespace });
  }

  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
  ];
  if (opts.headless) args.push('--headless');
  else args.push('--ui-port', String(opts.uiPort ?? port + 1000));
  if (!opts.headless && opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  args.push(...SERVER_FLAGS);

  const proc = startProcess('temporal', cli.path, args, { env, logFile: opts.logFile });
  try {
    await waitForTemporal(address, namespace, () => (proc.exited() ? `temporal exited:\n${proc.output()}` : undefined));
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { address, uiUrl, source: `${cli.source}: ${cli.path}`, stop: () => proc.stop() };
}

async function startDownloaded(
  notFound: ProvisioningError,
  opts: TemporalServerOptions & { ip: string; port: number; namespace: string },
): Promise<TemporalServer> {
  opts.log?.('No Temporal CLI found or buildable; trying the Temporal SDK download (needs the internet)...');
  try {
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const testEnv = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'cached-download', downloadDir: path.join(toolCacheDir(opts.env), 'temporal-download') },
        ip: opts.ip,
        port: opts.port,
        namespace: opts.namespace,
        ui: !opts.headless,
        uiPort: opts.headless ? undefined : (opts.uiPort ?? opts.port + 1000),
        dbFilename: opts.dbFile,
        extraArgs: SERVER_FLAGS,
      },
    });
    return {
      address: testEnv.address,
      uiUrl: opts.headless ? undefined : `http://${opts.ip}:${opts.uiPort ?? opts.port + 1000}`,
      source: 'downloaded by @temporalio/testing',
      stop: () => testEnv.teardown(),
    };
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ProvisioningError(
      'the Temporal CLI',
      [...notFound.attempts, `download through @temporalio/testing: ${reason}`],
      temporalAdvice(),
    );
  }
}

export async function waitForTemporal(
  address: string,
  namespace: string,
  abort?: () => string | undefined,
  timeoutMs = 60_000,
): Promise<void> {
  await waitUntil(
    `Temporal at ${address}`,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return true;
      } finally {
        await connection.close();
      }
    },
    { timeoutMs, intervalMs: 300, abort },
  );
}
