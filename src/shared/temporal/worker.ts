import os from 'node:os';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { createActivities } from '../../../activities';
import type { Config } from '../config';
import type { Database } from '../db/connection';
import type { Logger } from '../logger';
import { oneLineBundlerLogger, prebuiltBundle, WORKFLOW_BUNDLE } from './bundle';
import { installTemporalRuntime } from './runtime';
import { dataConverterFor } from './codec';

export interface WorkerDeps {
  config: Config;
  db: Database;
  client: Client;
  logger: Logger;
  /** A prebuilt workflow bundle (tests build one for all files; `npm run build` one for production). */
  workflowBundlePath?: string;
  interceptors?: WorkerOptions['interceptors'];
}

/** The prebuilt bundle when there is one; else bundled here, reporting in one line (not webpack's listing). */
async function workflowBundle(
  bundlePath: string | undefined,
  logger: Logger,
): Promise<WorkerOptions['workflowBundle']> {
  if (bundlePath) return { codePath: bundlePath };
  const { code } = await bundleWorkflowCode({ ...WORKFLOW_BUNDLE, logger: oneLineBundlerLogger(logger) });
  return { code };
}

/**
 * Threads that run workflow code, one per core up to two. With one (the SDK's default when it reuses a V8 context per
 * thread) a burst's workflow tasks queue behind each other on it while the main thread waits on the store, then the
 * other way round: measured on 2 cores, 200 payments at once kept 1.78-1.83 cores busy with one thread and 1.87-1.91
 * with two (docs/performance.md). More would not help: the main thread, which runs the activities, stays one.
 */
export const WORKFLOW_THREADS = Math.max(1, Math.min(2, os.availableParallelism()));

export async function createWorker(deps: WorkerDeps): Promise<{ worker: Worker; connection: NativeConnection }> {
  installTemporalRuntime(deps.logger);
  const connection = await NativeConnection.connect({ address: deps.config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: deps.config.TEMPORAL_NAMESPACE,
    taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
    workflowBundle: await workflowBundle(deps.workflowBundlePath ?? prebuiltBundle(), deps.logger),
    activities: createActivities({ db: deps.db, client: deps.client, config: deps.config, logger: deps.logger }),
    interceptors: deps.interceptors,
    dataConverter: dataConverterFor(deps.config),
    workflowThreadPoolSize: WORKFLOW_THREADS,
  });
  return { worker, connection };
}
