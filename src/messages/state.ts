import { z } from 'zod';

/**
 * Where a stored message stands (its `state` in MongoDB, its `outcome` as recorded): declared once,
 * here. The intake and the relay set the first states; processIpn records how it ended when no
 * entity takes it; the entity that takes it records `applied:<phase>` or why it did not apply it.
 * Pure (bundled into workflows).
 */

/** Set by the intake (`received`, `ignored`) and the relay (`dispatched`, or set aside: `undispatchable`). */
export const MessageIntakeStateSchema = z.enum(['received', 'ignored', 'dispatched', 'undispatchable']);

/** How processIpn (or an entity examining the message) ended it without applying it to an entity. */
export const MessageOutcomeSchema = z.enum([
  'malformed',
  'unknown_integration',
  'invalid',
  'sandbox_on_live',
  'parked',
  'rejected_by_operator',
  'masspay_notification',
  'recorded_no_money',
  'unknown_alerted',
  'routed',
  /** A verified Mass Pay IPN delivered to the batches whose items it reports. */
  'masspay_routed',
  /** A Mass Pay IPN reporting items no batch of ours has: held for a person (GET /admin/held). */
  'masspay_unmatched',
  /** Every item of a Mass Pay IPN was paid to us: each went to its payment entity. */
  'masspay_received',
]);
export type MessageOutcome = z.infer<typeof MessageOutcomeSchema>;

/** What an entity records on a message it was given and did not apply (src/shared/rules-kit.ts). */
export const NotAppliedSchema = z.enum(['duplicate', 'unproven', 'refused_foreign', 'internal_error']);

/** Applied by its entity: `applied:<the payment's phase>` or `applied:<the profile's status>`. */
export const AppliedStateSchema = z.templateLiteral(['applied:', z.string()]);

export const MessageStateSchema = z.union([
  MessageIntakeStateSchema,
  MessageOutcomeSchema,
  NotAppliedSchema,
  AppliedStateSchema,
]);
export type MessageState = z.infer<typeof MessageStateSchema>;

/** What a workflow records on a stored message: `flags` replaces its flags, `addFlags` adds to them. */
export interface MessageOutcomeRecord {
  messageId: string;
  outcome: MessageState;
  /** Why, for a person (stored as the message's `outcome`). */
  detail: string;
  flags?: string[];
  addFlags?: string[];
}
