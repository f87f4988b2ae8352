import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** Secrets never reach the logs, whatever object a careless line passes to the logger. */
test('admin tokens, passwords and PayPal NVP credentials are redacted from log lines', () => {
  const script = `
    const { createLogger } = require(${JSON.stringify(path.resolve(__dirname, '../../src/shared/logger'))});
    createLogger('info').info({
      headers: { authorization: 'Bearer admin-secret' },
      req: { PWD: 'nvp-password', SIGNATURE: 'nvp-signature', USER: 'api_user' },
      creds: { username: 'u', password: 'pw-secret', signature: 'sig-secret' },
    }, 'careless');`;
  const line = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' });
  expect(line).toContain('"msg":"careless"');
  for (const secret of ['admin-secret', 'nvp-password', 'nvp-signature', 'pw-secret', 'sig-secret']) {
    expect([secret, line.includes(secret)]).toEqual([secret, false]);
  }
  expect(line).toContain('api_user'); // not a secret: redaction is targeted, not blanket
});
