import type { Context } from 'koa';
import {
  ApplicationFailure,
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  type Client,
  type UpdateDefinition,
  type Workflow,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { HttpError } from './errors';
import { INVALID_ACTION, type OperatorAnswer, type OperatorRequest } from '../operator-actions';

/**
 * The one way the admin API takes an operator's decision on an entity (a payment, a profile, a Mass
 * Pay batch): an Update, with the workflow started first if it is not running (closed when idle, or
 * never started), and the answer only once the decision is applied:
 *
 * - 200 `{ applied: true, detail, state, inFlight }`: applied; `state` as saved after it; `inFlight`
 *   what it set going that still runs (a Mass Pay send's calls to PayPal), empty when nothing does;
 * - 409/422 `{ error, details: { rule }, state }`: refused by the rule named (`rule` is its code),
 *   nothing changed but a note and an audit entry;
 * - 400 `{ error, issues }`: the body is not the action's (the update's validator; not recorded).
 *
 * No rule is checked here beforehand: the entity decides on its state as it is when the decision's
 * turn comes, so `/approve` then `/submitted` is answered on the approved batch.
 */
export async function decideByUpdate<W extends Workflow, State, Result extends { ok: boolean; detail: string }>(
  client: Client,
  workflow: { type: string; options: WorkflowStartOptions<W> },
  update: UpdateDefinition<OperatorAnswer<State, Result>, [OperatorRequest]>,
  request: OperatorRequest,
): Promise<OperatorAnswer<State, Result>> {
  const startWorkflowOperation = new WithStartWorkflowOperation<W>(workflow.type, {
    ...workflow.options,
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  try {
    return await client.workflow.executeUpdateWithStart(update, { args: [request], startWorkflowOperation });
  } catch (err) {
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === INVALID_ACTION) {
      throw new HttpError(400, 'invalid request body', { issues: cause.message });
    }
    throw err;
  }
}

/** Sets the answer (see decideByUpdate) on the response; `view` is what the API shows of the state. */
export function answerDecision<
  State,
  Result extends { ok: true; detail: string } | { ok: false; status: number; rule: string; detail: string },
>(
  ctx: Context,
  answer: OperatorAnswer<State, Result>,
  view: (s: State) => unknown,
  extra: Record<string, unknown> = {},
): void {
  const { result } = answer;
  if (result.ok) {
    ctx.status = 200;
    ctx.body = { applied: true, detail: result.detail, ...extra, state: view(answer.state), inFlight: answer.inFlight };
    return;
  }
  ctx.status = result.status;
  ctx.body = { error: result.detail, details: { rule: result.rule, ...extra }, state: view(answer.state) };
}
