import { ActivityFailure, CancelledFailure, TemporalFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { describeIssues } from '../../src/shared/operator-actions';

/**
 * The one loop every entity workflow runs an input through: ask the pure rules; when they name a
 * fact only I/O can answer, fetch it and ask again; run their effects in the order they arose (a
 * rerun produces the same effects again first, so only the new ones run). Rules that kept asking
 * would be a bug: after `maxRounds` the input is decided as undecidable instead (`giveUp`), so a
 * workflow never loops forever on it.
 */
export async function decideWithFacts<Facts, Need, Effect, Done extends { kind: 'done'; effects: Effect[] }>(opts: {
  rules: (facts: Facts, stuck: boolean) => Done | { kind: 'need'; need: Need; effects: Effect[] };
  fetch: (need: Need, facts: Facts) => Promise<void>;
  run: (effect: Effect) => Promise<void>;
  facts: Facts;
  maxRounds?: number;
}): Promise<Done> {
  const maxRounds = opts.maxRounds ?? 500;
  let effectsRun = 0;
  for (let round = 0; ; round++) {
    const stuck = round >= maxRounds;
    if (round === maxRounds) effectsRun = 0; // a different input now: its effects are all new
    const decision = opts.rules(opts.facts, stuck);
    for (const effect of decision.effects.slice(effectsRun)) await opts.run(effect);
    effectsRun = decision.effects.length;
    if (decision.kind === 'done') return decision;
    await opts.fetch(decision.need, opts.facts);
  }
}

/**
 * A ledger posting asked for as a fact: accepted, or refused for good (a conflict). Contention is
 * retried inside the activity, so what fails here is real. A local activity's failure may arrive as
 * the ApplicationFailure itself, not wrapped in an ActivityFailure.
 */
export async function postingFact(post: () => Promise<unknown>): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await post();
    return { ok: true };
  } catch (err) {
    if (!(err instanceof TemporalFailure) || err instanceof CancelledFailure) throw err;
    return { ok: false, reason: (err instanceof ActivityFailure ? err.cause?.message : undefined) ?? err.message };
  }
}

type Malformed = { type: 'malformed'; signal: string; issues: string };

/**
 * Signal handlers that only validate and enqueue: whatever a person types into the Web UI is input,
 * and a payload that fails its schema is enqueued as `malformed` (recorded and ignored by the rules),
 * never allowed to fail a workflow task.
 */
export function validatingHandlers<Input>(inbox: Array<Input | Malformed>) {
  return <T>(signal: string, schema: z.ZodType<T>, toInput: (value: T) => Input) =>
    (payload: unknown): void => {
      const parsed = schema.safeParse(payload);
      inbox.push(
        parsed.success ? toInput(parsed.data) : { type: 'malformed', signal, issues: describeIssues(parsed.error) },
      );
    };
}
