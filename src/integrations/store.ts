import type { IntegrationDoc, Models } from '../db/models';
import { IntegrationInputSchema, type Integration } from '../domain/integration';

export function toIntegration(doc: IntegrationDoc): Integration {
  return { id: doc._id, ...IntegrationInputSchema.parse(doc) };
}

export async function saveIntegration(models: Models, id: string, input: unknown): Promise<Integration> {
  const parsed = IntegrationInputSchema.parse(input);
  await models.Integration.replaceOne({ _id: id }, { _id: id, ...parsed }, { upsert: true });
  return { id, ...parsed };
}

export async function getIntegration(models: Models, id: string): Promise<Integration | null> {
  const doc = await models.Integration.findById(id).lean();
  return doc ? toIntegration(doc) : null;
}
