import { main } from '../../tools/cli/operator';
import { createTestStack, type TestStack } from '../support/stack';

/** `npm run operator`: the first admin of a fresh install, without ADMIN_TOKEN; dev-only codes. */
let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack('operator-cli', { OPERATOR_TOTP_PERIOD_SECONDS: '30' });
});
afterAll(() => stack?.close());

async function run(args: string[], extraEnv: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  const error = jest.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  try {
    const env = {
      MONGODB_URI: stack.config.MONGODB_URI,
      MONGODB_DB: stack.config.MONGODB_DB,
      OPERATOR_SECRETS_KEY: stack.config.OPERATOR_SECRETS_KEY!,
      ...extraEnv,
    };
    return { code: await main(args, env), out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

test('add creates an operator whose key works at once; code gives a current code; list shows it', async () => {
  const added = await run(['add', 'Root', '--role', 'admin']);
  expect(added.code).toBe(0);
  const apiKey = /API key\s+(\S+)/.exec(added.out)![1]!;
  expect(added.out).toMatch(/TOTP\s+otpauth:\/\/totp\/ipnflow:root\?secret=[A-Z2-7]+/);
  const created = await stack.admin('POST', '/admin/operators', { name: 'Dora', role: 'approver' }, { token: apiKey });
  expect(created).toMatchObject({ status: 201, body: { id: 'dora' } });
  const audit = await stack.db.models.AuditEvent.find({ action: 'operator_created' }).sort({ _id: 1 }).lean();
  expect(audit.map((e) => e.actor)).toEqual([expect.stringMatching(/^cli \(/), 'root']);

  // Dora's code from the CLI is accepted once by the API.
  const code = await run(['code', 'dora']);
  expect(code.code).toBe(0);
  expect(code.out).toMatch(/^\d{6}$/);
  const decide = (otp: string) =>
    stack.admin(
      'POST',
      '/admin/messages/000000000000000000000000/retry',
      { reason: 'r' },
      {
        token: created.body.apiKey,
        otp,
      },
    );
  expect((await decide(code.out)).status).toBe(404);
  expect((await decide(code.out)).status).toBe(401);

  expect((await run(['list'])).out).toMatch(/^dora\tapprover\tactive$/m);
  await expect(run(['add', 'root', '--role', 'admin'])).rejects.toThrow('an operator root exists already');
});

test('code is refused in production; a bad role is refused', async () => {
  const prod = await run(['code', 'root'], { NODE_ENV: 'production' });
  expect(prod).toMatchObject({ code: 2, out: '' });
  expect(prod.err).toContain('development only');
  await expect(run(['add', 'eve', '--role', 'root'])).rejects.toThrow();
});
