import { z } from 'zod';
import { operatorActionSchema } from '../shared/operator-actions';

/**
 * What an operator may ask of a recurring profile, from the admin API or the Temporal Web UI. One
 * schema per action (the shared operator action: `operator` and `reason`, `note` read as `reason`),
 * used by both: the update's validator refuses a bad body (400), the workflow records and ignores a bad signal.
 */
const text = (max: number) => z.string().trim().min(1).max(max);

export const ProfileActionSchema = operatorActionSchema();
export type ProfileAction = z.infer<typeof ProfileActionSchema>;

/** `amount` is PayPal's AMT: a decimal string in the profile's currency; absent bills the whole balance. */
export const BillOutstandingActionSchema = operatorActionSchema(() => ({
  amount: z
    .string()
    .trim()
    .regex(/^\d{1,12}(\.\d{1,2})?$/, 'a positive decimal like "10.00"')
    .optional(),
}));
export type BillOutstandingAction = z.infer<typeof BillOutstandingActionSchema>;

export const AssignProfileActionSchema = operatorActionSchema(() => ({ customerId: text(64) }));
export type AssignProfileAction = z.infer<typeof AssignProfileActionSchema>;

/**
 * `matter` names the one matter to close (as listed in the profile's `attention`); without it only
 * the notices are closed: a contradiction always needs its own decision.
 */
export const AcknowledgeProfileActionSchema = operatorActionSchema(() => ({ matter: text(300).optional() }));
export type AcknowledgeProfileAction = z.infer<typeof AcknowledgeProfileActionSchema>;

/** API path segment → input type and schema. PayPal calls: bill, suspend, reactivate, cancel, refresh. */
export const PROFILE_OPERATOR_ACTIONS = {
  'bill-outstanding': { type: 'bill', schema: BillOutstandingActionSchema },
  suspend: { type: 'suspend', schema: ProfileActionSchema },
  reactivate: { type: 'reactivate', schema: ProfileActionSchema },
  cancel: { type: 'cancel', schema: ProfileActionSchema },
  refresh: { type: 'refresh', schema: ProfileActionSchema },
  assign: { type: 'assign', schema: AssignProfileActionSchema },
  approve: { type: 'approve', schema: ProfileActionSchema },
  acknowledge: { type: 'acknowledge', schema: AcknowledgeProfileActionSchema },
} as const;
export type ProfileActionPath = keyof typeof PROFILE_OPERATOR_ACTIONS;
export type ProfileActionType = (typeof PROFILE_OPERATOR_ACTIONS)[ProfileActionPath]['type'];
