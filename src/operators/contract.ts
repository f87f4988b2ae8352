import { z } from 'zod';

/**
 * Roles, from least to most: `viewer` reads; `operator` also creates batches, assigns customers and
 * acknowledges; `approver` also decides money (holds, payouts, profiles, parked messages). `admin`
 * manages operators and configuration and reads, but decides no money by that role alone. `portal`
 * is a customer portal's service account: it creates and reads top-ups (and their hosted page
 * links), nothing else; operators from `operator` up may do the same.
 */
export const OPERATOR_ROLES = ['viewer', 'operator', 'approver', 'admin', 'portal'] as const;
export const OperatorRoleSchema = z.enum(OPERATOR_ROLES);
export type OperatorRole = z.infer<typeof OperatorRoleSchema>;

/** The chain in which each role can do what the one before it can; admin stands beside it. */
const CHAIN: readonly OperatorRole[] = ['viewer', 'operator', 'approver'];

/** Whether `role` may use a route that needs `needed`. */
export function roleAllows(role: OperatorRole, needed: OperatorRole): boolean {
  if (role === 'portal') return needed === 'portal';
  if (needed === 'portal') return CHAIN.indexOf(role) >= CHAIN.indexOf('operator');
  if (needed === 'viewer') return true;
  if (needed === 'admin' || role === 'admin') return role === needed;
  return CHAIN.indexOf(role) >= CHAIN.indexOf(needed);
}

export const OperatorStatusSchema = z.enum(['active', 'disabled']);
export type OperatorStatus = z.infer<typeof OperatorStatusSchema>;

/** An operator id: what audits, four-eyes checks and Web UI signals name. Derived from the name. */
export const OperatorIdSchema = z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'lowercase letters, digits and -');

/** The id a display name stands for: lowercase, every run of other characters one `-`. */
export function operatorIdOf(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
}

export const CreateOperatorSchema = z.object({
  name: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .refine((n) => OperatorIdSchema.safeParse(operatorIdOf(n)).success, 'must start with a letter'),
  role: OperatorRoleSchema,
});
export type CreateOperator = z.infer<typeof CreateOperatorSchema>;

/** What the admin API shows of an operator: never its key's hash or its secret. */
export interface OperatorView {
  id: string;
  name: string;
  role: OperatorRole;
  status: OperatorStatus;
  createdBy: string;
  createdAt: string;
  /** Until when failed codes lock the operator's decisions, or null. */
  lockedUntil: string | null;
  otpFailures: number;
}

/** Who makes an admin request: an operator by their key, or the break-glass ADMIN_TOKEN. */
export type AdminIdentity =
  | { kind: 'operator'; id: string; name: string; role: OperatorRole }
  | { kind: 'break_glass'; id: typeof BREAK_GLASS_ID };
export const BREAK_GLASS_ID = 'break-glass';

/** The header carrying an operator's current TOTP code on money decisions. */
export const OTP_HEADER = 'x-operator-otp';

/** Audit actions about operators themselves. */
export const OPERATOR_AUDIT = {
  created: 'operator_created',
  disabled: 'operator_disabled',
  keyRotated: 'operator_key_rotated',
  totpReset: 'operator_totp_reset',
  otpRefused: 'operator_otp_refused',
  locked: 'operator_locked',
  keyRefused: 'operator_key_refused',
  roleRefused: 'operator_role_refused',
} as const;
