import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, publicBaseUrl, ConfigError } from '../../src/shared/config';
import { ensureRawRetentionSchedule } from '../../src/retention/schedule';
import { connectDatabase } from '../../src/shared/db/connection';
import { serveApi } from '../../src/server';
import { createLogger, redactUri } from '../../src/shared/logger';
import { connectTemporalClient } from '../../src/shared/temporal/client';
import { createWorker } from '../../src/shared/temporal/worker';
import { startPayPalSimulator } from '../paypal-sim';
import { startTemporalServer } from './services/temporal-server';
import { startMongoServer, type DbBackend, type MongoServer } from './services/mongo-server';
import { ProvisioningError } from './provision/errors';
import { seedDemo } from './seed-demo';
import { DEMO_PROFILE_ID, startDemoProfile } from './demo-profile';
import { startDemoMasspay, startDemoPayoutsRest } from './demo-masspay';
import { devLogDestination } from './pretty-log';
import { devAdminToken, devOperatorSecretsKey, devSecret } from './dev-secrets';
import { seedOperators, webUiKey } from './seed-operators';
import { OperatorStore } from '../../src/operators/store';
import { requireOperatorSecretsKey } from '../../src/shared/config';

const ROOT = path.resolve(__dirname, '../..');
const DATA = path.resolve(process.env.IPNFLOW_DATA_DIR || path.join(ROOT, '.data'));
const devPort = (name: string, fallback: number) => Number(process.env[name] || fallback);
const say = (m: string) => console.log(`[ipnflow] ${m}`);

/**
 * `npm start`: the whole product on one machine, on embedded defaults. Temporal (dev server,
 * SQLite file, Web UI) and the database keep their data under .data/, so a second start finds
 * everything again. TEMPORAL_ADDRESS / MONGODB_URI use existing servers instead.
 */
async function main() {
  fs.mkdirSync(DATA, { recursive: true });
  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err) => console.error(err));
  };
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      say('stopping...');
      void stopAll().then(() => process.exit(0));
    });
  }

  try {
    const logDestination = devLogDestination(); // before any server starts: a wrong IPNFLOW_LOG_FORMAT stops here
    const sim = await startPayPalSimulator({ port: devPort('PAYPAL_SIM_PORT', 8787) });
    stops.push(() => sim.close());

    // Workflow histories are encrypted (TEMPORAL_CODEC_KEYS); the dev Web UI decodes them through our codec
    // server, its endpoint carrying a viewer's key chosen here (the operator is seeded once the API runs).
    const codecKey = devSecret('temporal-codec-key', () => crypto.randomBytes(32).toString('hex')).value;
    const webUiSecret = devSecret('web-ui-key', () => crypto.randomBytes(32).toString('base64url')).value;
    const apiPort = Number(process.env.PORT || 3000);
    let temporalAddress = process.env.TEMPORAL_ADDRESS;
    let uiUrl: string | undefined;
    if (!temporalAddress) {
      say('starting the Temporal dev server...');
      const temporal = await startTemporalServer({
        port: devPort('TEMPORAL_DEV_PORT', 7233),
        uiPort: devPort('TEMPORAL_UI_PORT', 8233),
        dbFile: path.join(DATA, 'temporal.db'),
        logFile: path.join(DATA, 'temporal.log'),
        uiCodecEndpoint: `http://localhost:${apiPort}/codec/${webUiKey(webUiSecret)}`,
        log: say,
      });
      stops.push(() => temporal.stop());
      temporalAddress = temporal.address;
      uiUrl = temporal.uiUrl;
    }
    let mongoUri = process.env.MONGODB_URI;
    let store = 'your MONGODB_URI';
    if (!mongoUri) {
      say('starting the database...');
      const mongo = await startMongoServer({
        port: devPort('MONGODB_DEV_PORT', 27018),
        dataDir: path.join(DATA, 'db'),
        logFile: path.join(DATA, 'db.log'),
        log: say,
      });
      stops.push(() => mongo.stop());
      mongoUri = mongo.uri;
      const on = mongo.backend ? ` on ${STORE_NAMES[mongo.backend]}` : '';
      store = `${STORE_NAMES[mongo.kind]}${on} in ${mongo.dataDir}`;
    }

    const config = loadConfig(process.env, {
      TEMPORAL_ADDRESS: temporalAddress,
      MONGODB_URI: mongoUri,
      ADMIN_TOKEN: process.env.ADMIN_TOKEN || devAdminToken().value,
      OPERATOR_SECRETS_KEY: process.env.OPERATOR_SECRETS_KEY || devOperatorSecretsKey().value,
      TEMPORAL_CODEC_KEYS: process.env.TEMPORAL_CODEC_KEYS || `dev:${codecKey}`,
      TEMPORAL_UI_ORIGINS: process.env.TEMPORAL_UI_ORIGINS || `http://localhost:${devPort('TEMPORAL_UI_PORT', 8233)}`,
      // Sandbox postbacks go to our simulator in dev; live ones can only ever go to PayPal.
      PAYPAL_SANDBOX_VERIFY_URL: process.env.PAYPAL_SANDBOX_VERIFY_URL || sim.verifyUrl,
      // Likewise the recurring-payments API (NVP) for sandbox integrations: the simulator answers.
      PAYPAL_SANDBOX_NVP_URL: process.env.PAYPAL_SANDBOX_NVP_URL || sim.nvpUrl,
      // And Payouts REST (OAuth2, Payouts, the webhook signing certificate).
      PAYPAL_SANDBOX_REST_URL: process.env.PAYPAL_SANDBOX_REST_URL || sim.url,
      // And Express Checkout's buyer page (top-ups of NVP-only integrations).
      PAYPAL_SANDBOX_WEBSCR_URL: process.env.PAYPAL_SANDBOX_WEBSCR_URL || `${sim.url}/cgi-bin/webscr`,
      // The dev stack seeds a sandbox integration; off by default anywhere but development and tests.
      ALLOW_SANDBOX_INTEGRATIONS: process.env.ALLOW_SANDBOX_INTEGRATIONS || 'true',
    });
    const logger = createLogger(config.LOG_LEVEL, logDestination);
    const db = await connectDatabase(config.MONGODB_URI, config.MONGODB_DB);
    stops.push(() => db.close());
    const client = await connectTemporalClient(config);
    stops.push(() => client.connection.close());

    say('bundling workflows and starting the worker...');
    const { worker, connection } = await createWorker({ config, db, client, logger });
    await ensureRawRetentionSchedule(client, config);
    const workerDone = worker.run();
    stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await workerDone;
      await connection.close();
    });

    const api = await serveApi({ config, db, client, logger });
    stops.push(() => api.stop());
    const seeded = await seedDemo(db.models);
    const operatorKeys = await seedOperators(
      new OperatorStore(db.models, {
        secretsKey: requireOperatorSecretsKey(config),
        maxFailures: config.OPERATOR_OTP_MAX_FAILURES,
        lockSeconds: config.OPERATOR_OTP_LOCK_SECONDS,
        period: config.OPERATOR_TOTP_PERIOD_SECONDS,
      }),
      webUiSecret,
    );
    const cycleSeconds = Number(process.env.IPNFLOW_DEMO_CYCLE_SECONDS || 60);
    const stopDemo = startDemoProfile(sim, `${api.url}/ipn/${seeded.integrationId}`, cycleSeconds);
    stops.push(async () => stopDemo());
    // Sent batches: the simulator answers the MassPay call with the same credentials, then its IPNs follow.
    startDemoMasspay(sim, `${api.url}/ipn/${seeded.integrationId}`, 'seller@paypalsandbox.com');
    // Sent through Payouts REST (the demo integration's default): processed by the simulator, then its webhooks.
    // The same REST app takes the demo's top-ups; their IPNs come to the demo integration's listener.
    startDemoPayoutsRest(sim, `${api.url}/webhooks/paypal/${seeded.integrationId}`, {
      ipnUrl: `${api.url}/ipn/${seeded.integrationId}`,
      merchantEmail: 'seller@paypalsandbox.com',
    });

    const base = publicBaseUrl(config);
    const tokenNote = process.env.ADMIN_TOKEN
      ? 'break-glass: your ADMIN_TOKEN (reads and manages operators only)'
      : `break-glass token in ${devAdminToken().file} (reads and manages operators only)`;
    const temporalAt = `${config.TEMPORAL_ADDRESS}, namespace ${config.TEMPORAL_NAMESPACE}`;
    const pad = ' '.repeat(20);
    console.log(
      [
        '',
        'ipnflow is running.',
        `  HTTP API          ${base}   (health: ${base}/readyz, metrics: ${base}/metrics)`,
        `  Temporal Web UI   ${uiUrl ?? `(external Temporal at ${config.TEMPORAL_ADDRESS})`}`,
        `  Temporal          ${temporalAt}, task queue ${config.TEMPORAL_TASK_QUEUE}`,
        `  MongoDB           ${redactUri(config.MONGODB_URI)} (database ${config.MONGODB_DB}; ${store})`,
        `  PayPal simulator  ${sim.url}  (sandbox postbacks are verified here)`,
        `  Admin API         curl -H "Authorization: Bearer $KEY" ${base}/admin/held   with one of:`,
        ...Object.entries(operatorKeys).map(([name, key]) => `${pad}${name.padEnd(6)} ${key}`),
        `${pad}(admin: operators and configuration; alice: operator; bob: approver; portal: top-ups)`,
        `${pad}money decisions add -H "X-Operator-OTP: $(npm run -s operator -- code bob)"`,
        `${pad}${tokenNote}`,
        `  Demo              integration "${seeded.integrationId}", customer "${seeded.customerId}" ` +
          '(buyer@paypalsandbox.com):',
        `${pad}npm run ipn -- send web_accept_completed_ipn_simulator_01 --fresh-txn`,
        `${pad}then open the Web UI, or GET ${base}/admin/customers/${seeded.customerId}`,
        `  Recurring demo    profile ${DEMO_PROFILE_ID} pays 29.95 USD every ${cycleSeconds} s: ` +
          `GET ${base}/admin/profiles/${DEMO_PROFILE_ID}`,
        `  Mass Pay demo     POST ${base}/admin/payouts, approve, then /send: see docs/operating.md`,
        `  Top-up demo       POST ${base}/admin/topups/links (portal's key), open the link: see README.md`,
        'Ctrl-C stops everything.',
      ].join('\n'),
    );
  } catch (err) {
    if (err instanceof ProvisioningError || err instanceof ConfigError) console.error(`\n${err.message}\n`);
    else console.error(err);
    await stopAll();
    process.exit(1);
  }
}

const STORE_NAMES: Record<MongoServer['kind'] | DbBackend, string> = {
  mongod: 'mongod',
  ferretdb: 'FerretDB',
  'mongodb-memory-server': 'mongodb-memory-server',
  postgres: 'PostgreSQL',
  sqlite: 'SQLite',
};

void main();
