import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import {
  DYNAMIC_CONFIG,
  renderServerConfig,
  SERVER_CONFIG_TEMPLATE,
  type ServerConfigValues,
} from '../../tools/rehearse/server-config';

/**
 * `npm run rehearse` starts the real Temporal server with tools/rehearse/temporal-postgres.yaml; nothing else runs
 * that file, so these checks (no server started) are what keeps it valid between rehearsals.
 */
const values: ServerConfigValues = {
  PG_PORT: 54321,
  PG_USER: 'ferretdb',
  PG_PASSWORD: 'unused-with-trust',
  FRONTEND_PORT: 17233,
  FRONTEND_HTTP_PORT: 17243,
  FRONTEND_MEMBERSHIP_PORT: 16933,
  HISTORY_PORT: 17234,
  HISTORY_MEMBERSHIP_PORT: 16934,
  MATCHING_PORT: 17235,
  MATCHING_MEMBERSHIP_PORT: 16935,
  WORKER_PORT: 17239,
  WORKER_MEMBERSHIP_PORT: 16939,
  DYNAMIC_CONFIG_FILE: '/tmp/rehearse/temporal-dynamic.yaml',
};

test('the rendered config: YAML, both stores on postgres12 at the given port, each service on its port', () => {
  const config = parse(renderServerConfig(values));
  expect(config.persistence).toMatchObject({
    defaultStore: 'postgres-default',
    visibilityStore: 'postgres-visibility',
    numHistoryShards: 4,
  });
  for (const [store, database] of <Array<[string, string]>>[
    ['postgres-default', 'temporal'],
    ['postgres-visibility', 'temporal_visibility'],
  ]) {
    expect(config.persistence.datastores[store].sql).toMatchObject({
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: '127.0.0.1:54321',
      user: 'ferretdb',
      password: 'unused-with-trust',
    });
  }
  expect(config.services.frontend.rpc).toMatchObject({ grpcPort: 17233, httpPort: 17243, membershipPort: 16933 });
  expect(config.services.history.rpc).toMatchObject({ grpcPort: 17234, membershipPort: 16934 });
  expect(config.services.matching.rpc).toMatchObject({ grpcPort: 17235, membershipPort: 16935 });
  expect(config.services.worker.rpc).toMatchObject({ grpcPort: 17239, membershipPort: 16939 });
  expect(config.clusterMetadata.clusterInformation.active.rpcAddress).toBe('127.0.0.1:17233');
  expect(config.dynamicConfigClient.filepath).toBe('/tmp/rehearse/temporal-dynamic.yaml');
  // Every port distinct: two services on one port would fail only when the server starts.
  const ports = Object.values(config.services).flatMap((s: any) =>
    [s.rpc.grpcPort, s.rpc.membershipPort, s.rpc.httpPort].filter(Boolean),
  );
  expect(new Set(ports).size).toBe(ports.length);
});

test('a placeholder without a value, or a value the template never uses, is refused', () => {
  const { PG_PORT: _dropped, ...missing } = values;
  expect(() => renderServerConfig(missing as ServerConfigValues)).toThrow(/no value for \$\{PG_PORT\}/);
  expect(() => renderServerConfig({ ...values, EXTRA: 1 } as ServerConfigValues)).toThrow(/never uses EXTRA/);
  expect(readFileSync(SERVER_CONFIG_TEMPLATE, 'utf8')).toContain('${PG_PORT}');
});

test('the dynamic config turns on what the service needs from the server', () => {
  const dynamic = parse(readFileSync(DYNAMIC_CONFIG, 'utf8'));
  expect(dynamic['frontend.enableUpdateWorkflowExecution']).toEqual([{ value: true }]);
  expect(dynamic['system.forceSearchAttributesCacheRefreshOnRead'][0].value).toBe(true);
});
