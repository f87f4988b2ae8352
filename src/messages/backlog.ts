import client from 'prom-client';
import type { Client } from '@temporalio/client';
import { Types } from 'mongoose';
import type { Models } from '../shared/db/models';
import { registry } from '../shared/metrics';

/**
 * What is stored but not finished, for /metrics: messages waiting to be dispatched (the outbox,
 * small by design) and messages being processed: a running processIpn, or a payment workflow
 * flagged `processing` while it verifies and applies a message (Temporal's visibility count).
 * Neither question reads the stored history, so scraping costs the same at any size.
 */
export function registerBacklogMetrics(deps: { models: Models; client: Client; taskQueue: string }): () => void {
  // One API per process in production; tests may serve several in one process: the latest wins.
  const names = ['ipnflow_ipn_backlog', 'ipnflow_ipn_backlog_oldest_seconds'] as const;
  for (const name of names) registry.removeSingleMetric(name);
  new client.Gauge({
    name: names[0],
    help: 'IPNs stored but not finished: undispatched (outbox) and processing (verified or applied now, parked too)',
    labelNames: ['stage'] as const,
    registers: [registry],
    async collect() {
      const [undispatched, processing] = await Promise.all([
        deps.models.IpnOutbox.estimatedDocumentCount(),
        deps.client.workflow
          .count(
            `(WorkflowType = "processIpn" OR IpnFlags = "processing") AND ExecutionStatus = "Running" ` +
              `AND TaskQueue = "${deps.taskQueue}"`,
          )
          .then((c) => c.count)
          .catch(() => Number.NaN),
      ]);
      this.set({ stage: 'undispatched' }, undispatched);
      this.set({ stage: 'processing' }, processing);
    },
  });
  new client.Gauge({
    name: names[1],
    help: 'Age of the oldest undispatched IPN (0 when none)',
    registers: [registry],
    async collect() {
      // Outbox ids are the messages' ObjectIds, which carry their creation time.
      const oldest = await deps.models.IpnOutbox.findOne({}, { _id: 1 })
        .sort({ _id: 1 })
        .lean<{ _id: Types.ObjectId }>();
      this.set(oldest ? Math.max(0, (Date.now() - oldest._id.getTimestamp().getTime()) / 1000) : 0);
    },
  });
  return () => names.forEach((name) => registry.removeSingleMetric(name));
}
