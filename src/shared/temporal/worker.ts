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
  });
  return { worker, connection };
}
