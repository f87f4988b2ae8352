import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { Database } from '../db/connection';
import type { Logger } from '../logger';
import type { IpnDispatcher } from '../../messages/dispatcher';
import type { IntegrationCache } from '../../integrations/cache';
import type { WebhookIntake } from '../../webhooks/intake';

/** What the app and every route get; its own module so routes need not import the app that mounts them. */
export interface AppDeps {
  db: Database;
  client: Client;
  config: Config;
  logger: Logger;
  dispatcher: IpnDispatcher;
  /** Integrations as read a moment ago (the IPN door, this process's workers); the admin API forgets a save. */
  integrations: IntegrationCache;
  /** Payouts webhooks after the door stored them (verify, route, tell the batch). */
  webhooks: WebhookIntake;
}
