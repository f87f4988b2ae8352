import type { DestinationStream } from 'pino';
import pretty from 'pino-pretty';
import { ConfigError } from '../../src/shared/config';

const FORMATS = ['pretty', 'json'] as const;
type LogFormat = (typeof FORMATS)[number];

/**
 * `npm start`'s console: one readable line per log entry (time, level, message, then the fields as
 * compact JSON), coloured on a terminal. IPNFLOW_LOG_FORMAT=json gives the production format instead,
 * for piping into a log tool. Production processes (dist/src/server.js, worker.js) always log JSON.
 */
export function devLogDestination(env: NodeJS.ProcessEnv = process.env): DestinationStream | undefined {
  const format = (env.IPNFLOW_LOG_FORMAT || 'pretty') as LogFormat;
  if (!FORMATS.includes(format)) {
    const message = `expected one of ${FORMATS.join(', ')} (got ${JSON.stringify(format)})`;
    throw new ConfigError([{ variable: 'IPNFLOW_LOG_FORMAT', message }]);
  }
  if (format === 'json') return undefined;
  return pretty({
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    // Synchronous, like pino's own stdout: nothing is lost when Ctrl-C ends the process.
    sync: true,
  });
}
