import { loadConfig } from './config';
import { connectDatabase } from './db/connection';
import { createApp } from './http/app';
import { IpnDispatcher } from './ipn/dispatcher';
import { createLogger, redactUri } from './logger';
import { connectTemporalClient } from './temporal/client';

/** Production API process: Koa plus the outbox relay. Workers run separately (src/worker.ts). */
export async function startApiServer(config = loadConfig()) {
  const logger = createLogger(config.LOG_LEVEL);
  const db = await connectDatabase(config.MONGODB_URI, config.MONGODB_DB);
  const client = await connectTemporalClient(config);
  const dispatcher = new IpnDispatcher({ models: db.models, client, config, logger });
  dispatcher.start();
  const app = createApp({ db, client, config, logger, dispatcher });
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
  });
  logger.info({ port: config.PORT, mongodb: redactUri(config.MONGODB_URI), temporal: config.TEMPORAL_ADDRESS }, 'API server listening');
  return {
    server,
    async stop() {
      await new Promise((r) => server.close(r));
      await dispatcher.stop();
      await client.connection.close();
      await db.close();
    },
  };
}

if (require.main === module) {
  startApiServer()
    .then(({ stop }) => {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stop().then(() => process.exit(0)));
    })
    .catch((err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    });
}
