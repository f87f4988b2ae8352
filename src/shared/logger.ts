import pino, { type DestinationStream } from 'pino';

/** Credentials inside connection strings must not reach logs. */
export function redactUri(uri: string): string {
  return uri.replace(/\/\/([^@/]+)@/, '//***@');
}

/**
 * One JSON object per line on stdout: the production format, for whatever collects the logs. `npm start`
 * passes a pretty-printing `destination` (tools/dev/pretty-log.ts); redaction happens before either.
 */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream) {
  return pino(
    {
      level,
      base: { service: 'ipnflow' },
      redact: {
        paths: [
          'authorization',
          'headers.authorization',
          'req.headers.authorization',
          'token',
          'adminToken',
          'ADMIN_TOKEN',
          '*.password',
          // PayPal NVP credentials, should a request ever be logged whole.
          '*.PWD',
          '*.SIGNATURE',
          '*.signature',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

export type Logger = ReturnType<typeof createLogger>;
