import { z } from 'zod';
import type { ActivityDeps } from './deps';
import { requireOperatorSecretsKey } from '../src/shared/config';
import { OperatorStore, type OtpRefusal } from '../src/operators/store';
import { OperatorRoleSchema, roleAllows, type OperatorRole } from '../src/operators/contract';

/** What a workflow asks before acting on a money decision signalled from the Web UI. */
export const OperatorProofInputSchema = z.object({
  operator: z.string().min(1).max(100),
  otp: z.string().max(20).optional(),
  needs: OperatorRoleSchema,
  /** For the audit: which workflow and decision the code was given for. */
  workflowId: z.string().min(1).max(300),
  decision: z.string().min(1).max(100),
});
export type OperatorProofInput = z.infer<typeof OperatorProofInputSchema>;

export type OperatorProofOutcome =
  { ok: true; operator: string } | { ok: false; why: OtpRefusal | 'role' | 'malformed'; needs?: OperatorRole };

/**
 * The proof a Web UI signal carries, `{ operator: <operator id>, otp: <current code> }`, checked as the
 * admin API checks a request: an active operator whose role allows the decision, and a code taken once
 * (the same replay guard and lockout). Refusals are audited by the store; the workflow records them and
 * changes nothing. Never throws for a bad proof (an input must not fail a workflow task).
 */
export function createOperatorActivities(deps: ActivityDeps) {
  let store: OperatorStore | undefined;
  const storeOf = () =>
    (store ??= new OperatorStore(deps.db.models, {
      secretsKey: requireOperatorSecretsKey(deps.config),
      maxFailures: deps.config.OPERATOR_OTP_MAX_FAILURES,
      lockSeconds: deps.config.OPERATOR_OTP_LOCK_SECONDS,
      period: deps.config.OPERATOR_TOTP_PERIOD_SECONDS,
    }));
  return {
    async checkOperatorProof(raw: unknown): Promise<OperatorProofOutcome> {
      const parsed = OperatorProofInputSchema.safeParse(raw);
      if (!parsed.success) return { ok: false, why: 'malformed' };
      const input = parsed.data;
      const doc = await deps.db.models.Operator.findById(input.operator, { role: 1, status: 1 }).lean();
      if (!doc || doc.status !== 'active') return { ok: false, why: 'unknown_operator' };
      if (!roleAllows(doc.role as OperatorRole, input.needs)) {
        await storeOf().audit(input.operator, 'operator_role_refused', input.operator, {
          via: 'temporal_ui',
          workflowId: input.workflowId,
          decision: input.decision,
          needs: input.needs,
        });
        return { ok: false, why: 'role', needs: input.needs };
      }
      const outcome = await storeOf().takeCode(input.operator, input.otp, {
        via: 'temporal_ui',
        workflowId: input.workflowId,
        decision: input.decision,
      });
      return outcome.ok ? { ok: true, operator: input.operator } : { ok: false, why: outcome.why };
    },
  };
}
