import { loadConfig } from '../../src/shared/config';
import { connectDatabase, type Database } from '../../src/shared/db/connection';
import { startMongoServer, type MongoServer } from '../../tools/dev/services/mongo-server';
import { serveApi, type ApiServer } from '../../src/server';
import { createLogger } from '../../src/shared/logger';
import { connectTemporalClient } from '../../src/shared/temporal/client';
import type { Client } from '@temporalio/client';
import { sample, waitFor } from '../support/stack';

// This file owns a database server of its own, because it stops it.
let mongo: MongoServer;
let db: Database;
let client: Client;
let api: ApiServer;
let base: string;

beforeAll(async () => {
  mongo = await startMongoServer();
  const config = loadConfig(process.env, {
    MONGODB_URI: mongo.uri,
    MONGODB_DB: 'readyz',
    ADMIN_TOKEN: 'r'.repeat(32),
    OPERATOR_SECRETS_KEY: 'ab'.repeat(32),
    LOG_LEVEL: 'silent',
    TEMPORAL_TASK_QUEUE: 'readyz',
  });
  db = await connectDatabase(mongo.uri, 'readyz');
  client = await connectTemporalClient(config);
  api = await serveApi({ config, db, client, logger: createLogger('silent'), port: 0, host: '127.0.0.1' });
  base = api.url;
  await db.models.Integration.create({
    _id: 'shop',
    name: 'Shop',
    mode: 'sandbox',
    ipnEnabled: true,
    verifyTransaction: true,
    allowedCurrencies: ['USD'],
    receiverEmails: ['seller@paypalsandbox.com'],
    feePolicy: 'gross',
  });
});

afterAll(async () => {
  await api?.stop();
  await client?.connection.close();
  await db?.close();
  await mongo?.stop();
});

const readyz = async () => {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: (await res.json()) as { down: string[] } };
};
const postIpn = () =>
  fetch(`${base}/ipn/shop`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: sample('web_accept_completed_01'),
  });

test('/healthz answers while the process lives', async () => {
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
});

test('/readyz follows the database: 200, 503 naming it while stopped, 200 once it is back', async () => {
  expect(await readyz()).toEqual({ status: 200, body: expect.objectContaining({ status: 'ready', down: [] }) });

  await mongo.stop();
  expect(await readyz()).toEqual({
    status: 503,
    body: expect.objectContaining({ mongodb: 'down', temporal: 'up', down: ['mongodb'] }),
  });
  // PayPal must resend what we could not store: 503, not 200.
  expect((await postIpn()).status).toBe(503);

  mongo = await startMongoServer({ port: mongo.port, dataDir: mongo.dataDir });
  await waitFor('readyz 200 again', async () => (await readyz()).status === 200);
  expect((await postIpn()).status).toBe(200);
  expect(await db.models.IpnMessage.countDocuments({ integrationId: 'shop' })).toBe(1);
}, 60_000);

test('/metrics serves Prometheus text including IPN counters', async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  expect(text).toMatch(/ipnflow_ipn_received_total\{result="store_failed"\} [1-9]/);
  expect(text).toMatch(/ipnflow_ipn_received_total\{result="received"\} [1-9]/);
});
