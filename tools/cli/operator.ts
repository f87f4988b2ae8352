/**
 * Operators from the command line, for the first admin of a fresh install (no ADMIN_TOKEN needed):
 *
 *   npm run operator -- add <name> --role viewer|operator|approver|admin
 *   npm run operator -- list
 *   npm run operator -- code <name>     (development only: the operator's current TOTP code)
 *
 * Reads MONGODB_URI, MONGODB_DB and OPERATOR_SECRETS_KEY from the environment; outside production,
 * unset ones default to what `npm start` uses (its database and the key it keeps in .data/).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, requireOperatorSecretsKey } from '../../src/shared/config';
import { connectDatabase } from '../../src/shared/db/connection';
import { CreateOperatorSchema, OperatorIdSchema, operatorIdOf } from '../../src/operators/contract';
import { OperatorStore, operatorView } from '../../src/operators/store';
import { open } from '../../src/operators/secret-box';
import { codeAtStep, currentStep } from '../../src/operators/totp';
import { devMongoUri, devOperatorSecretsKey } from '../dev/dev-secrets';

const USAGE = 'usage: npm run operator -- add <name> --role <viewer|operator|approver|admin> | list | code <name>';

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { role: { type: 'string' } },
  });
  const [command, name] = positionals;
  const production = env.NODE_ENV === 'production';
  if (command === 'code' && production) {
    console.error('`operator code` is for development only: in production codes come from the operator’s own app.');
    return 2;
  }
  const config = loadConfig(env, {
    MONGODB_URI: env.MONGODB_URI || (production ? '' : devMongoUri()),
    OPERATOR_SECRETS_KEY: env.OPERATOR_SECRETS_KEY || (production ? '' : devOperatorSecretsKey().value),
  });
  const db = await connectDatabase(config.MONGODB_URI, config.MONGODB_DB);
  const secretsKey = requireOperatorSecretsKey(config);
  const store = new OperatorStore(db.models, {
    secretsKey,
    maxFailures: config.OPERATOR_OTP_MAX_FAILURES,
    lockSeconds: config.OPERATOR_OTP_LOCK_SECONDS,
    period: config.OPERATOR_TOTP_PERIOD_SECONDS,
  });
  try {
    if (command === 'add' && name) {
      const input = CreateOperatorSchema.parse({ name, role: values.role });
      const created = await store.create(input, `cli (${os.userInfo().username})`);
      console.log(
        [
          `operator ${created.id} (${created.role}) created. Shown once, keep them safe:`,
          `  API key   ${created.apiKey}`,
          `  TOTP      ${created.totpUri}`,
          '            (add it to an authenticator app; money decisions send its code in X-Operator-OTP)',
        ].join('\n'),
      );
      return 0;
    }
    if (command === 'list') {
      for (const op of (await store.list()).map((d) => operatorView(d)))
        console.log(`${op.id}\t${op.role}\t${op.status}${op.lockedUntil ? `\tlocked until ${op.lockedUntil}` : ''}`);
      return 0;
    }
    if (command === 'code' && name) {
      const id = operatorIdOf(name);
      const doc = OperatorIdSchema.safeParse(id).success
        ? await db.models.Operator.findById(id, { totpSealed: 1 }).lean()
        : null;
      if (!doc) {
        console.error(`no operator ${id}`);
        return 1;
      }
      const period = config.OPERATOR_TOTP_PERIOD_SECONDS;
      const step = currentStep(Date.now(), period);
      const left = period - Math.floor((Date.now() / 1000) % period);
      console.log(codeAtStep(open(secretsKey, doc.totpSealed, id), step, period));
      console.error(`(valid about ${left + period} s; each code is accepted once)`);
      return 0;
    }
    console.error(USAGE);
    return 2;
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof ConfigError ? err.message : err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
