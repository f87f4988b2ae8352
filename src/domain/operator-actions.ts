import { z } from 'zod';

/**
 * What an operator may send a payment, from the admin API or straight from the Temporal Web UI.
 * One schema per action, used by both: the API answers 400 on a bad body, a workflow handler
 * records and ignores it (a signal typed by hand must never wedge a payment).
 */
const text = (max: number) => z.string().trim().min(1).max(max);

export const OperatorActionSchema = z.object({ operator: text(100), reason: text(2000) });
export type OperatorAction = z.infer<typeof OperatorActionSchema>;

export const AssignCustomerActionSchema = OperatorActionSchema.extend({ customerId: text(64) });
export type AssignCustomerAction = z.infer<typeof AssignCustomerActionSchema>;

/**
 * The decisions, each about one kind of pending matter: `approve`/`reject` decide a hold (money
 * waits on them), `acknowledge` closes matters that only inform (disputes, alerts), `assign`
 * names the customer. A decision that matches nothing pending is refused and audited.
 */
export const PAYMENT_OPERATOR_ACTIONS = {
  assign: AssignCustomerActionSchema,
  approve: OperatorActionSchema,
  reject: OperatorActionSchema,
  acknowledge: OperatorActionSchema,
} as const;
export type PaymentOperatorActionName = keyof typeof PAYMENT_OPERATOR_ACTIONS;

/** The part of a zod failure worth recording: where and what, never the whole (possibly huge) input. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`)
    .join('; ')
    .slice(0, 500);
}
