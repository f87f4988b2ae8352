import pino from 'pino';

/** Credentials inside connection strings must not reach logs. */
export function redactUri(uri: string): string {
  return uri.replace(/\/\/([^@/]+)@/, '//***@');
}

export function createLogger(level = process.env.LOG_LEVEL ?? 'info') {
  return pino({
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
  });
}

export type Logger = ReturnType<typeof createLogger>;
