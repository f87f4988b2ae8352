import { loadConfig } from './shared/config';
import { connectDatabase } from './shared/db/connection';
import { createLogger } from './shared/logger';
import { connectTemporalClient } from './shared/temporal/client';
import { prebuiltBundle } from './shared/temporal/bundle';
import { createWorker } from './shared/temporal/worker';
import { ensureRawRetentionSchedule } from './retention/schedule';

/** Production worker process: runs workflows and activities until SIGINT/SIGTERM. */
async function main() {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const db = await connectDatabase(config.MONGODB_URI, config.MONGODB_DB);
  const client = await connectTemporalClient(config);
  const { worker, connection } = await createWorker({ config, db, client, logger });
  await ensureRawRetentionSchedule(client, config);
  logger.info(
    { taskQueue: config.TEMPORAL_TASK_QUEUE, workflowBundle: prebuiltBundle() ?? 'bundled at start' },
    'worker running',
  );
  await worker.run(); // the SDK stops it gracefully on SIGINT/SIGTERM
  await connection.close();
  await client.connection.close();
  await db.close();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
