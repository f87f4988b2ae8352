import type { MessageOutcomeRecord } from '../messages/state';
import { clone, NeedFact } from '../shared/rules-kit';
import {
  pushHistory,
  ProfileStep,
  type ProfileContext,
  type ProfileDecision,
  type ProfileFacts,
  type ProfileInput,
} from './decide-kit';
import { onIpn } from './ipn-events';
import { matter } from './matters';
import { onAdjustment } from './money';
import { refresh } from './nvp-actions';
import { onOperator } from './operators';
import type { ProfileState } from './state';

/**
 * The rules of one recurring profile's life, as a pure function (the shape of decidePayment):
 * given the state and one input, what the state becomes and which effects follow. Facts (a
 * customer match, a ledger posting, PayPal's answer to an NVP call) are asked for by stopping
 * and re-running with the fact added.
 *
 * PayPal's messages about a profile arrive late, twice, out of order and not always of the kind
 * expected, so each observed field carries a stamp (who said it, as of when) and only a newer
 * word replaces it; status moves backwards (Suspended → Active) only on a strictly later dated
 * event or on PayPal's own answer to our API call; Cancelled and Expired are left only by PayPal's
 * answer. Money moves only on Completed payments, once per PayPal transaction (the ledger key is
 * the one a payment entity would use for the same txn, so even a misrouted copy cannot credit twice).
 *
 * This module is the entry: it sends each input to its part of the rules (see decide-kit.ts).
 */

export {
  ATTENTION,
  CURRENT_RULES,
  type ActionResult,
  type OperatorInput,
  type ProfileContext,
  type ProfileDecision,
  type ProfileEffect,
  type ProfileFactNeed,
  type ProfileFacts,
  type ProfileInput,
  type ProfileRules,
} from './decide-kit';
export { keepUsedFields, NVP_ANSWER_FIELDS, NVP_NOT_SENT, type NvpCall, type NvpOutcome } from './nvp-calls';
export { billAmount, refusalOf } from './refusals';

/** Never throws: an unexpected error leaves the state unchanged and asks a person. */
export function decideProfile(
  state: ProfileState,
  input: ProfileInput,
  facts: ProfileFacts,
  ctx: ProfileContext,
): ProfileDecision {
  const d = new ProfileStep(clone(state), facts, ctx);
  try {
    const outcome = apply(d, input);
    return { kind: 'done', state: d.s, effects: d.effects, outcome, result: d.result };
  } catch (err) {
    if (err instanceof NeedFact) return { kind: 'need', need: err.need, effects: d.effects };
    const s = clone(state);
    const messageId = input.type === 'ipn' || input.type === 'adjustment' ? input.event.messageId : null;
    const detail = `${input.type}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300);
    if (!s.attention.includes(matter('internal_error'))) s.attention.push(matter('internal_error'));
    pushHistory(s, {
      at: ctx.now,
      source: 'workflow',
      messageId,
      what: `could not decide (${detail}); waiting for a person`,
    });
    return {
      kind: 'done',
      state: s,
      effects: [{ type: 'alert', kind: 'profile_internal_error', messageId, detail: `${s.profileId}: ${detail}` }],
      outcome: messageId ? { messageId, outcome: 'internal_error', detail, addFlags: ['alert'] } : null,
      result: 'action' in input ? { ok: false, status: 409, rule: 'internal_error', detail } : null,
    };
  }
}

export function needsPerson(s: ProfileState): boolean {
  return s.attention.length > 0 || s.payments.some((p) => p.held !== null);
}

function apply(d: ProfileStep, input: ProfileInput): MessageOutcomeRecord | null {
  switch (input.type) {
    case 'ipn':
      return onIpn(d, input.event);
    case 'adjustment':
      return onAdjustment(d, input.event);
    case 'malformed':
      d.note('workflow', `ignored a malformed ${input.signal} signal: ${input.issues}`);
      d.audit({
        actor: 'unknown',
        action: 'malformed_signal',
        details: { signal: input.signal, issues: input.issues },
      });
      d.alert('malformed_signal', null, `${d.s.profileId}: ${input.signal}: ${input.issues}`);
      return null;
    case 'scheduled_refresh':
      refresh(d, null);
      return null;
    default:
      onOperator(d, input);
      return null;
  }
}
