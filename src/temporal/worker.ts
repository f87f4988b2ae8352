import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { createActivities } from '../../activities';
import type { Config } from '../config';
import type { Database } from '../db/connection';
import type { Logger } from '../logger';
import { prebuiltBundle, WORKFLOW_BUNDLE } from './bundle';
import { installTemporalRuntime } from './runtime';

export interface WorkerDeps {
  config: Config;
  db: Database;
  client: Client;
  logger: Logger;
  /** A prebuilt workflow bundle (tests build one for all files; `npm run build` one for production). */
  workflowBundlePath?: string;
  interceptors?: WorkerOptions['interceptors'];
}

function workflowCode(
  bundlePath: string | undefined,
): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'bundlerOptions'> {
  return bundlePath
    ? { workflowBundle: { codePath: bundlePath } }
    : {
        workflowsPath: WORKFLOW_BUNDLE.workflowsPath,
        bundlerOptions: { preloadModules: WORKFLOW_BUNDLE.preloadModules },
      };
}

export async function createWorker(deps: WorkerDeps): Promise<{ worker: Worker; connection: NativeConnection }> {
  installTemporalRuntime(deps.logger);
  const connection = await NativeConnection.connect({ address: deps.config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: deps.config.TEMPORAL_NAMESPACE,
    taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
    ...workflowCode(deps.workflowBundlePath ?? prebuiltBundle()),
    activities: createActivities({ db: deps.db, client: deps.client, config: deps.config, logger: deps.logger }),
    interceptors: deps.interceptors,
  });
  return { worker, connection };
}
