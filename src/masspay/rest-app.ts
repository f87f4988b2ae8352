import type { Models } from '../shared/db/models';
import type { MoneyMode } from '../shared/ledger';
import { restCredentialNames, restCredentialsFromEnv, type RestCredentials } from '../shared/paypal/rest-client';

/**
 * The Payouts REST app a batch is sent with: its integration's, read now, for the batch's mode (an
 * integration switched to another mode sends nothing). The reason never carries a secret.
 */
export async function batchRestApp(
  models: Models,
  a: { batchId: string; integrationId: string; mode: MoneyMode },
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ ok: true; credentials: RestCredentials } | { ok: false; reason: string }> {
  const integration = await models.Integration.findById(a.integrationId, { mode: 1, payoutsRestEnv: 1 }).lean();
  if (!integration) return { ok: false, reason: `integration ${a.integrationId} no longer exists` };
  if (integration.mode !== a.mode) {
    return {
      ok: false,
      reason: `integration ${a.integrationId} is ${integration.mode} now; ${a.batchId} is ${a.mode}`,
    };
  }
  const prefix = integration.payoutsRestEnv;
  if (!prefix) return { ok: false, reason: `integration ${a.integrationId} names no REST app: set its payoutsRestEnv` };
  const credentials = restCredentialsFromEnv(prefix, env);
  if (!credentials) {
    const names = restCredentialNames(prefix);
    return { ok: false, reason: `${names.clientId} / ${names.secret} are not set` };
  }
  return { ok: true, credentials };
}
