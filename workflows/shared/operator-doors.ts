import { ApplicationFailure, condition, patched, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../../activities';
import type { OperatorRole } from '../../src/operators/contract';
import { describeIssues, INVALID_ACTION, type OperatorRequest } from '../../src/shared/operator-actions';
import { proofLocal } from './activity-options';

/**
 * Since this patch a money-deciding signal (the Temporal Web UI's door) acts only with a proof: the
 * operator's id and a current code, checked like the admin API's (once-only, lockout). Histories
 * from before replay without it.
 */
const SIGNAL_PROOF = 'web-ui-signals-carry-proof';
const proofs = proxyLocalActivities<Activities>(proofLocal);

/** An operator action's body read as the entity's input, or why it cannot be. */
export type Parsed<Input> = { ok: true; input: Input } | { ok: false; issues: string };

/** Reads `body` with `schema` into the entity's input (`toInput`). */
export function parseAction<T, Input>(
  schema: z.ZodType<T>,
  body: unknown,
  toInput: (action: T) => Input,
): Parsed<Input> {
  const parsed = schema.safeParse(body);
  return parsed.success
    ? { ok: true, input: toInput(parsed.data) }
    : { ok: false, issues: describeIssues(parsed.error) };
}

/**
 * The two doors an operator's action comes in by, onto an entity's one queue:
 *
 * - an Update (the admin API): its validator refuses a malformed body before it reaches history (the
 *   API answers 400); an accepted one is queued like any input and waits for its own answer, given
 *   by the loop once the rules applied it (ledger postings, reservations, PayPal calls done) and the
 *   state is saved: the applied state, or the refusal that names the rule;
 * - a signal (the Temporal Web UI): the same parse; a malformed payload is queued as `malformed`
 *   (recorded and ignored), a refused action is recorded by the rules, and neither fails a task.
 *
 * Inputs are told apart by identity: the loop hands back the very object it took from the queue.
 */
export function operatorDoors<Input extends object, Answer>(opts: {
  inbox: Input[];
  parse: (action: string, body: unknown) => Parsed<Input>;
  malformed: (signal: string, issues: string) => Input;
  /** The role a signalled action needs a proof for (null: it decides no money, no proof asked). */
  proofNeeded?: (action: string) => OperatorRole | null;
}) {
  const waiting = new Map<Input, number>();
  const answers = new Map<number, Answer>();
  let next = 0;
  const invalid = (issues: string) =>
    ApplicationFailure.create({ type: INVALID_ACTION, message: issues, nonRetryable: true, details: [issues] });
  return {
    /**
     * A Web UI signal's handler for `action`. A money decision is queued only with a valid proof
     * (`{"operator": "<operator id>", "otp": "<current code>", …}`); without one it is recorded as a
     * refused (malformed) input and changes nothing. The check never fails the workflow task.
     */
    signal:
      (action: string, signalName: string) =>
      async (payload: unknown): Promise<void> => {
        const parsed = opts.parse(action, payload);
        if (!parsed.ok) {
          opts.inbox.push(opts.malformed(signalName, parsed.issues));
          return;
        }
        const needs = opts.proofNeeded?.(action) ?? null;
        if (needs !== null && patched(SIGNAL_PROOF)) {
          const refusal = await proofRefusal(payload, needs, signalName);
          if (refusal !== null) {
            opts.inbox.push(opts.malformed(signalName, refusal));
            return;
          }
        }
        opts.inbox.push(parsed.input);
      },
    /** The update's handler: queued, answered by the loop (see `answer`). */
    update: async (req: OperatorRequest): Promise<Answer> => {
      const parsed = opts.parse(req.action, req.body);
      // The validator refused it already; a replayed history from before it cannot reach here.
      if (!parsed.ok) throw invalid(parsed.issues);
      const id = next++;
      waiting.set(parsed.input, id);
      opts.inbox.push(parsed.input);
      await condition(() => answers.has(id));
      const answer = answers.get(id)!;
      answers.delete(id);
      return answer;
    },
    /** Refuses a malformed request before it is recorded: it changes nothing. */
    validator: (req: OperatorRequest): void => {
      const parsed = opts.parse(req?.action, req?.body);
      if (!parsed.ok) throw invalid(parsed.issues);
    },
    /** Once `item` is applied and saved: answers the update waiting for it, if any. */
    answer(item: Input, make: () => Answer): void {
      const id = waiting.get(item);
      if (id === undefined) return;
      waiting.delete(item);
      answers.set(id, make());
    },
  };
}

/** Why a signal's proof is refused, or null when it holds (the operator's id, a current code, the role). */
async function proofRefusal(payload: unknown, needs: OperatorRole, decision: string): Promise<string | null> {
  const p = (payload ?? {}) as { operator?: unknown; otp?: unknown };
  try {
    const outcome = await proofs.checkOperatorProof({
      operator: typeof p.operator === 'string' ? p.operator.slice(0, 100) : '',
      otp: typeof p.otp === 'string' ? p.otp.slice(0, 20) : undefined,
      needs,
      workflowId: workflowInfo().workflowId,
      decision,
    });
    return outcome.ok ? null : `refused: no valid operator proof (${outcome.why}); send {"operator": id, "otp": code}`;
  } catch {
    return 'refused: the operator proof could not be checked now; send the decision again';
  }
}
