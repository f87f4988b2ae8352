import { ConfigError, loadConfig, requireOperatorSecretsKey } from '../../src/shared/config';

const valid = { MONGODB_URI: 'mongodb://127.0.0.1:27017', ADMIN_TOKEN: 'x'.repeat(32) };

function problemsOf(env: Record<string, string>): Array<{ variable: string; message: string }> {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

test('defaults fill in everything that is safe to guess', () => {
  const config = loadConfig(valid);
  expect(config).toMatchObject({
    PORT: 3000,
    TEMPORAL_ADDRESS: 'localhost:7233',
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: 'ipnflow',
    IPN_MAX_BODY_BYTES: 1048576,
  });
  expect(config.paypalLiveVerifyUrl).toBe('https://ipnpb.paypal.com/cgi-bin/webscr');
  expect(config.PAYPAL_SANDBOX_VERIFY_URL).toBe('https://ipnpb.sandbox.paypal.com/cgi-bin/webscr');
});

test('a bad value names its variable and what is wrong', () => {
  expect(problemsOf({ ...valid, PORT: 'eighty' })).toEqual([
    { variable: 'PORT', message: expect.stringContaining('"eighty"') },
  ]);
  expect(problemsOf({ ...valid, TEMPORAL_ADDRESS: 'localhost' })[0]).toEqual({
    variable: 'TEMPORAL_ADDRESS',
    message: expect.stringContaining('host:port'),
  });
  expect(problemsOf({ ...valid, LOG_LEVEL: 'loud' })[0]!.variable).toBe('LOG_LEVEL');
  expect(problemsOf({ ...valid, MONGODB_URI: 'postgres://x' })[0]!.variable).toBe('MONGODB_URI');
});

test('every problem is reported at once, and the message lists them', () => {
  const err = (() => {
    try {
      loadConfig({ PORT: '0' });
    } catch (e) {
      return e as ConfigError;
    }
  })();
  expect(err?.problems.map((p) => p.variable).sort()).toEqual(['MONGODB_URI', 'PORT']);
  expect(err?.message).toMatch(/MONGODB_URI: is required/);
});

test('the worker needs no operator key; serving the admin API does, and says so', () => {
  const { ADMIN_TOKEN: _, ...workerEnv } = valid;
  const config = loadConfig(workerEnv);
  expect(config.ADMIN_TOKEN).toBeUndefined();
  expect(() => requireOperatorSecretsKey(config)).toThrow(/OPERATOR_SECRETS_KEY: is required to serve the admin API/);
  const hex = 'ab'.repeat(32);
  expect(requireOperatorSecretsKey(loadConfig({ ...workerEnv, OPERATOR_SECRETS_KEY: hex }))).toEqual(
    Buffer.from(hex, 'hex'),
  );
  const b64 = Buffer.alloc(32, 7).toString('base64');
  expect(requireOperatorSecretsKey(loadConfig({ ...workerEnv, OPERATOR_SECRETS_KEY: b64 }))).toEqual(
    Buffer.alloc(32, 7),
  );
  // A short key is refused, and never echoed.
  const [problem] = problemsOf({ ...valid, OPERATOR_SECRETS_KEY: 'cd'.repeat(16) });
  expect(problem).toEqual({ variable: 'OPERATOR_SECRETS_KEY', message: expect.stringContaining('32 bytes') });
  expect(JSON.stringify(problem)).not.toContain('cd'.repeat(16));
});

test('secrets are never echoed back, even when malformed', () => {
  const secret = 'short-secret-value';
  const [problem] = problemsOf({ ...valid, ADMIN_TOKEN: secret });
  expect(problem!.variable).toBe('ADMIN_TOKEN');
  expect(problem!.message).toMatch(/at least 24 characters/);
  expect(JSON.stringify(problemsOf({ ...valid, ADMIN_TOKEN: secret }))).not.toContain(secret);
  expect(JSON.stringify(problemsOf({ ...valid, MONGODB_URI: 'mysql://user:hunter2@db' }))).not.toContain('hunter2');
});

test('empty strings count as unset', () => {
  expect(loadConfig({ ...valid, PORT: '' }).PORT).toBe(3000);
});

test('sandbox integrations are refused outside development unless ALLOW_SANDBOX_INTEGRATIONS says otherwise', () => {
  expect(loadConfig(valid).ALLOW_SANDBOX_INTEGRATIONS).toBe(false); // NODE_ENV unset
  expect(loadConfig({ ...valid, NODE_ENV: 'development' }).ALLOW_SANDBOX_INTEGRATIONS).toBe(true);
  expect(loadConfig({ ...valid, NODE_ENV: 'test' }).ALLOW_SANDBOX_INTEGRATIONS).toBe(true);
  expect(loadConfig({ ...valid, NODE_ENV: 'production' }).ALLOW_SANDBOX_INTEGRATIONS).toBe(false);
  expect(loadConfig({ ...valid, NODE_ENV: 'staging' }).ALLOW_SANDBOX_INTEGRATIONS).toBe(false);
  expect(loadConfig({ ...valid, NODE_ENV: '' }).ALLOW_SANDBOX_INTEGRATIONS).toBe(false);
  expect(
    loadConfig({ ...valid, NODE_ENV: 'production', ALLOW_SANDBOX_INTEGRATIONS: 'true' }).ALLOW_SANDBOX_INTEGRATIONS,
  ).toBe(true);
  expect(loadConfig({ ...valid, ALLOW_SANDBOX_INTEGRATIONS: 'false' }).ALLOW_SANDBOX_INTEGRATIONS).toBe(false);
  expect(
    loadConfig({ ...valid, NODE_ENV: 'production', ALLOW_SANDBOX_INTEGRATIONS: '' }).ALLOW_SANDBOX_INTEGRATIONS,
  ).toBe(false);
  expect(problemsOf({ ...valid, ALLOW_SANDBOX_INTEGRATIONS: 'maybe' })).toEqual([
    { variable: 'ALLOW_SANDBOX_INTEGRATIONS', message: expect.stringContaining('"maybe"') },
  ]);
});
