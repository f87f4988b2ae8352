import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { quietBundlerLogger, WORKFLOW_BUNDLE } from '../../src/shared/temporal/bundle';
import { startTemporalServer, type TemporalServer } from '../../tools/dev/services/temporal-server';
import { startMongoServer, type MongoServer } from '../../tools/dev/services/mongo-server';

declare global {
  var __IPNFLOW_STACK__: { temporal?: TemporalServer; mongo?: MongoServer; dir: string } | undefined;
}

/**
 * One Temporal dev server (in memory) and one MongoDB-wire server for the whole run, provisioned
 * by the same code as `npm start`; each test file then takes its own task queue and database.
 * TEMPORAL_ADDRESS / MONGODB_URI point the run at existing servers instead.
 */
export default async function globalSetup(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipnflow-test-'));
  const log = (m: string) => process.stderr.write(`[test stack] ${m}\n`);
  const [temporal, mongo] = await Promise.all([
    process.env.TEMPORAL_ADDRESS
      ? undefined
      : startTemporalServer({ headless: true, logFile: path.join(dir, 'temporal.log'), log }),
    process.env.MONGODB_URI ? undefined : startMongoServer({ logFile: path.join(dir, 'mongo.log'), log }),
  ]);
  globalThis.__IPNFLOW_STACK__ = { temporal, mongo, dir };
  process.env.TEMPORAL_ADDRESS ??= temporal!.address;
  process.env.MONGODB_URI ??= mongo!.uri;

  const bundle = await bundleWorkflowCode({ ...WORKFLOW_BUNDLE, logger: quietBundlerLogger });
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  fs.writeFileSync(bundlePath, bundle.code);
  process.env.IPNFLOW_TEST_WORKFLOW_BUNDLE = bundlePath;
  process.env.IPNFLOW_TEST_DIR = dir;
  log(
    `Temporal ${process.env.TEMPORAL_ADDRESS} (${temporal?.source ?? 'external'}), MongoDB ` +
      `${mongo ? `${mongo.kind}${mongo.backend ? ` on ${mongo.backend}` : ''} ${mongo.uri}` : 'external'}`,
  );
}
