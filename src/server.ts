import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { loadConfig, type Config } from './shared/config';
import { connectDatabase, type Database } from './shared/db/connection';
import { createApp } from './app';
import { IpnDispatcher } from './messages/dispatcher';
import { IntegrationCache } from './integrations/cache';
import { WebhookIntake } from './webhooks/intake';
import { registerBacklogMetrics } from './messages/backlog';
import { createLogger, redactUri, type Logger } from './shared/logger';
import { connectTemporalClient } from './shared/temporal/client';

export interface ApiServer {
  server: Server;
  /** Where it listens, e.g. http://127.0.0.1:3000. */
  url: string;
  dispatcher: IpnDispatcher;
  /** Stops listening and relaying; the connections stay with whoever opened them. */
  stop(): Promise<void>;
}

/** The API process on given connections: Koa plus the outbox relay. */
export async function serveApi(deps: {
  config: Config;
  db: Database;
  client: Client;
  logger: Logger;
  port?: number;
  host?: string;
}): Promise<ApiServer> {
  const { config, db, client, logger } = deps;
  const dispatcher = new IpnDispatcher({ models: db.models, client, config, logger });
  const integrations = new IntegrationCache(db.models);
  const webhooks = new WebhookIntake({ models: db.models, client, config, logger });
  const app = createApp({ db, client, config, logger, dispatcher, integrations, webhooks });
  // Errors after the answer (a client cut off by the timeouts below): logged, not printed by Koa to stderr.
  app.on('error', (err: Error) => logger.debug({ err: err.message }, 'HTTP connection error'));
  // Short limits for slow clients (Node's defaults: 60 s for headers, 5 min for a request), checked
  // every second (Node checks every 30 s by default, which would stretch a 10 s limit to 40 s).
  const server = createServer(
    {
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      headersTimeout: Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS),
      connectionsCheckingInterval: 1_000,
    },
    app.callback(),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port ?? config.PORT, deps.host ?? config.HOST, () => resolve());
  });
  dispatcher.start();
  webhooks.start();
  const unregisterBacklog = registerBacklogMetrics({
    models: db.models,
    client,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address === '0.0.0.0' || address === '::' ? 'localhost' : address}:${port}`;
  logger.info(
    { url, mongodb: redactUri(config.MONGODB_URI), temporal: config.TEMPORAL_ADDRESS },
    'API server listening',
  );
  return {
    server,
    url,
    dispatcher,
    async stop() {
      await new Promise((r) => server.close(r));
      await dispatcher.stop();
      await webhooks.stop();
      unregisterBacklog();
    },
  };
}

/** Production API process (workers run separately: src/worker.ts). */
async function main(config = loadConfig()) {
  const logger = createLogger(config.LOG_LEVEL);
  const db = await connectDatabase(config.MONGODB_URI, config.MONGODB_DB);
  const client = await connectTemporalClient(config);
  const api = await serveApi({ config, db, client, logger });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void (async () => {
        await api.stop();
        await client.connection.close();
        await db.close();
        process.exit(0);
      })();
    });
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
