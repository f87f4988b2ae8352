import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

export const ipnReceived = new client.Counter({
  name: 'ipnflow_ipn_received_total',
  help: 'IPN deliveries received, by how the endpoint answered',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const alerts = new client.Counter({
  name: 'ipnflow_alerts_total',
  help: 'Conditions a person should look at (invalid postbacks, held payments, unknown statuses, disputes)',
  labelNames: ['kind'] as const,
  registers: [registry],
});

export const httpDuration = new client.Histogram({
  name: 'ipnflow_http_request_duration_seconds',
  help: 'HTTP request duration',
  labelNames: ['route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});
