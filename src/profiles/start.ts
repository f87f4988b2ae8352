import type { Config } from '../shared/config';
import { IntegrationIdKey, TxnIdKey } from '../shared/contract';
import { profileWorkflowId } from '../shared/ids';
import type { RecurringProfileInput } from './contract';

/** How a profile's workflow is started, wherever it is started from (an IPN, an operator's request). */
export function profileStartOptions(config: Config, integrationId: string, profileId: string) {
  const input: RecurringProfileInput = {
    integrationId,
    profileId,
    refreshSeconds: config.RECURRING_REFRESH_SECONDS,
    outstandingAlertCycles: config.RECURRING_OUTSTANDING_ALERT_CYCLES,
    idleCloseSeconds: config.PAYMENT_IDLE_CLOSE_SECONDS,
  };
  return {
    workflowId: profileWorkflowId(integrationId, profileId),
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    args: [input] as [RecurringProfileInput],
    typedSearchAttributes: [
      { key: IntegrationIdKey, value: integrationId },
      { key: TxnIdKey, value: profileId },
    ],
    staticSummary: `PayPal recurring profile ${profileId} (${integrationId})`,
  };
}
