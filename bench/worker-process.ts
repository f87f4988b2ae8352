/**
 * A worker in its own process, so the bench can read its peak RSS from /proc and its CPU does not
 * share an event loop with the load generator. `service`: ipnflow's worker exactly as
 * test/support/stack.ts builds it; `floor`: the bench's two-activity workflow.
 * Prints READY once polling; stops gracefully on SIGTERM (the Temporal SDK's own handler).
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import mongoose from 'mongoose';
import { loadConfig } from '../src/shared/config';
import { connectDatabase } from '../src/shared/db/connection';
import { createLogger } from '../src/shared/logger';
import { connectTemporalClient } from '../src/shared/temporal/client';
import { createWorker, WORKFLOW_THREADS } from '../src/shared/temporal/worker';
import { createFloorActivities } from './floor/activities';

import { READY } from './lib/children';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`worker-process: ${name} is not set`);
  return v;
}

async function service(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const db = await connectDatabase(config.MONGODB_URI, config.MONGODB_DB);
  const client = await connectTemporalClient(config);
  const { worker, connection } = await createWorker({
    config,
    db,
    client,
    logger,
    workflowBundlePath: need('BENCH_WORKFLOW_BUNDLE'),
  });
  const done = worker.run();
  console.log(READY);
  await done;
  await connection.close();
  await client.connection.close();
  await db.close();
}

async function floor(): Promise<void> {
  const mongo = await new mongoose.mongo.MongoClient(need('MONGODB_URI')).connect();
  const connection = await NativeConnection.connect({ address: need('TEMPORAL_ADDRESS') });
  const worker = await Worker.create({
    connection,
    taskQueue: need('BENCH_TASK_QUEUE'),
    workflowBundle: { codePath: need('BENCH_WORKFLOW_BUNDLE') },
    activities: createFloorActivities(mongo.db(need('MONGODB_DB')), need('BENCH_VERIFY_URL')),
    // The service worker's threads (shared/temporal/worker.ts): the floor is measured as the service runs.
    workflowThreadPoolSize: WORKFLOW_THREADS,
  });
  const done = worker.run();
  console.log(READY);
  await done;
  await connection.close();
  await mongo.close();
}

const kind = process.argv[2];
(kind === 'service'
  ? service()
  : kind === 'floor'
    ? floor()
    : Promise.reject(new Error(`worker-process: unknown kind ${kind}`))
).catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
