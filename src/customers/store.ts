import { z } from 'zod';
import type { Models } from '../shared/db/models';
import { isDuplicateKey } from '../shared/db/duplicate-keys';
import { getIntegration } from '../integrations/store';
import type { MatchBy } from '../integrations/schema';
import { CONFIG_AUDIT_ACTIONS, configChange } from '../shared/config-audit';
import { customerExists } from './known';

export const CustomerInputSchema = z.object({
  name: z.string().trim().min(1),
  paypalEmails: z.array(z.email().transform((e) => e.trim().toLowerCase())).default([]),
});
export type CustomerInput = z.input<typeof CustomerInputSchema>;

export class EmailTakenError extends Error {
  constructor(
    readonly email: string,
    readonly ownerId: string,
  ) {
    super(`PayPal email ${email} already belongs to customer ${ownerId}`);
    this.name = 'EmailTakenError';
  }
}

/**
 * An email is claimed by inserting a document whose _id is the email: uniqueness without a
 * multikey unique index or a transaction. Claims are taken before the customer document lists
 * them and released after, so a crash in between leaves at worst an unused claim, never an
 * email matching two customers.
 */
export async function saveCustomer(models: Models, id: string, input: unknown, actor: string) {
  const customer = CustomerInputSchema.parse(input);
  const emails = [...new Set(customer.paypalEmails)];
  for (const email of emails) {
    try {
      await models.EmailClaim.create({ _id: email, customerId: id });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const owner = await models.EmailClaim.findById(email).lean();
      if (owner && owner.customerId !== id) throw new EmailTakenError(email, owner.customerId);
    }
  }
  const after = { name: customer.name, paypalEmails: emails };
  // The document before comes from the replace itself: two edits at once are each audited against what they replaced.
  const before = await models.Customer.findOneAndReplace(
    { _id: id },
    { _id: id, ...after },
    { upsert: true, returnDocument: 'before' },
  ).lean();
  await models.EmailClaim.deleteMany({ customerId: id, _id: { $nin: emails } });
  // Which emails match (and may be paid) is what an audit must show; the person's name only that it changed.
  const change = configChange(before && { name: before.name, paypalEmails: before.paypalEmails }, after, ['name']);
  if (change) {
    await models.AuditEvent.create({
      at: new Date(),
      actor,
      action: before ? CONFIG_AUDIT_ACTIONS.customerUpdated : CONFIG_AUDIT_ACTIONS.customerCreated,
      customerId: id,
      details: change,
    });
  }
  return { id, ...after };
}

/** Our id echoed back in `custom` wins over the payer's email, which a person can share or change. */
export async function findCustomerForPayer(
  models: Models,
  integrationId: string,
  payer: { custom: string | null; payerEmail: string | null },
  known?: MatchBy,
): Promise<string | null> {
  const matchBy = known ?? (await getIntegration(models, integrationId))?.matchBy ?? ['custom', 'email'];
  if (matchBy.includes('custom') && payer.custom) {
    // The common case (custom names the customer): read once per customer and process (see known.ts).
    if (await customerExists(models, payer.custom)) return payer.custom;
  }
  if (matchBy.includes('email') && payer.payerEmail) {
    const claim = await models.EmailClaim.findById(payer.payerEmail.toLowerCase()).lean();
    // The claim may outlive a crash mid-save: the customer must still list the email (checked here,
    // not in the filter — by _id alone, a lookup costs the same however many customers there are).
    const owner = claim ? await models.Customer.findById(claim.customerId, { paypalEmails: 1 }).lean() : null;
    if (owner?.paypalEmails.includes(claim!._id)) return claim!.customerId;
  }
  return null;
}
