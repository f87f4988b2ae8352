import type { Client } from '@temporalio/client';
import type { Config } from '../src/shared/config';
import type { Database } from '../src/shared/db/connection';
import type { Logger } from '../src/shared/logger';

/** What every activity factory gets; its own module so activity modules need not import the index. */
export interface ActivityDeps {
  db: Database;
  client: Client;
  config: Config;
  logger: Logger;
}
