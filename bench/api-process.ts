/**
 * The service's API in its own process, as production runs it (src/server.ts's serveApi on its own
 * connections), so a bench's load generator (the PayPal simulator signing and POSTing webhooks) does
 * not share the API's event loop. Listens on a free port of 127.0.0.1, prints API_READY and its URL;
 * stops on SIGTERM.
 */
import { loadConfig } from '../src/shared/config';
import { connectDatabase } from '../src/shared/db/connection';
import { createLogger } from '../src/shared/logger';
import { connectTemporalClient } from '../src/shared/temporal/client';
import { serveApi } from '../src/server';
import { API_READY } from './lib/children';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const db = await connectDatabase(config.MONGODB_URI, config.MONGODB_DB);
  const client = await connectTemporalClient(config);
  const api = await serveApi({ config, db, client, logger, port: 0, host: '127.0.0.1' });
  process.once('SIGTERM', () => {
    void (async () => {
      await api.stop();
      await client.connection.close();
      await db.close();
      // A normal exit, so --cpu-prof (BENCH_CPU_PROF_DIR) writes its profile.
      process.exit(0);
    })();
  });
  console.log(`${API_READY} ${api.url}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
