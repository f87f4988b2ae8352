import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { Database } from '../db/connection';
import type { Logger } from '../logger';
import type { IpnDispatcher } from '../../messages/dispatcher';
import type { IntakeIntegrations } from '../../integrations/intake-cache';
import type { WebhookIntake } from '../../webhooks/intake';

/** What the app and every route get; its own module so routes need not import the app that mounts them. */
export interface AppDeps {
  db: Database;
  client: Client;
  config: Config;
  logger: Logger;
  dispatcher: IpnDispatcher;
  /** The IPN route's short-lived view of integrations; the admin API forgets what it saves. */
  integrations: IntakeIntegrations;
  /** Payouts webhooks after the door stored them (verify, route, tell the batch). */
  webhooks: WebhookIntake;
}
