import type { IntegrationDoc, Models } from '../shared/db/models';
import { IntegrationInputSchema, type Integration } from './schema';
import { CONFIG_AUDIT_ACTIONS, configChange } from '../shared/config-audit';

export function toIntegration(doc: IntegrationDoc): Integration {
  return { id: doc._id, ...IntegrationInputSchema.parse(doc) };
}

/**
 * Creates or replaces an integration and audits what changed, as `actor`. The document before is
 * read by the replace itself, so two edits at once are each audited against what they replaced.
 */
export async function saveIntegration(models: Models, id: string, input: unknown, actor: string): Promise<Integration> {
  const parsed = IntegrationInputSchema.parse(input);
  const before = await models.Integration.findOneAndReplace(
    { _id: id },
    { _id: id, ...parsed },
    { upsert: true, returnDocument: 'before' },
  ).lean();
  // Read through the schema, so a default filled in since the last save is no change.
  const old = before ? IntegrationInputSchema.safeParse(before) : null;
  const change = configChange(old ? (old.success ? old.data : before) : null, parsed);
  if (change) {
    await models.AuditEvent.create({
      at: new Date(),
      actor,
      action: before ? CONFIG_AUDIT_ACTIONS.integrationUpdated : CONFIG_AUDIT_ACTIONS.integrationCreated,
      integrationId: id,
      details: change,
    });
  }
  return { id, ...parsed };
}

export async function getIntegration(models: Models, id: string): Promise<Integration | null> {
  const doc = await models.Integration.findById(id).lean();
  return doc ? toIntegration(doc) : null;
}
