import type { LoadedMessage } from '../../activities/messages';
import type { OutcomeWrite } from '../messages/outcomes';
import type { Posting } from '../shared/ledger';
import { paymentEventOf, paymentOutcomeOf, routeOf } from './message-event';
import { decidePayment, type PaymentFacts } from './rules';
import { initialPaymentState, upgradePaymentState, type PaymentState } from './state';

/**
 * A payment's first message as the step that loads it took it (takeFirstMessage): the posting the
 * rules asked for, made, and the state and outcome they decide once it is, saved. The workflow makes
 * the same plan from what the step loaded, at `decidedAt`, and adopts this only when it is exactly
 * that plan (see workflows/payments.ts); otherwise it takes the message through its own steps, posting
 * again (the idempotency key makes that safe) and saving what it decides, and alerts.
 */
export interface FirstTake {
  messageId: string;
  decidedAt: string;
  idempotencyKey: string;
  state: PaymentState;
  outcome: OutcomeWrite;
}

/** What the step would post and save, or undefined when the workflow must decide it in its own steps. */
export interface FirstTakePlan {
  posting: Posting;
  state: PaymentState;
  outcome: OutcomeWrite;
}

/**
 * The first message's decision when nothing but the load is needed for it: proven by the postback
 * tried with the load (or an integration that verifies nothing), routed to this very payment, its
 * payer matched with the load, and the rules asking for one posting and running no other effect
 * (an audit, an alert) before or after it. Anything else is left to the workflow's own steps. Pure:
 * the same pieces examineMessage, applyExamined and decide put together in the workflow.
 */
export function planFirstTake(args: {
  messageId: string;
  msg: LoadedMessage;
  saved: PaymentState | null;
  integrationId: string;
  paymentTxnId: string;
  orphanGraceSeconds: number;
  decidedAt: string;
}): FirstTakePlan | undefined {
  const { messageId, msg } = args;
  const { integration, summary } = msg;
  if (msg.refusal || !integration || !summary) return undefined;
  const flags = msg.duplicateOf ? ['duplicate'] : [];
  if (integration.verifyTransaction ? msg.firstVerdict !== 'VERIFIED' : (flags.push('unverified'), false))
    return undefined;
  if (summary.testIpn && integration.mode === 'live') return undefined;
  const state = args.saved
    ? upgradePaymentState(args.saved)
    : initialPaymentState(args.integrationId, args.paymentTxnId);
  if (state.history.some((h) => h.messageId === messageId)) return undefined;
  const verified = { ...msg, integration, summary };
  const route = routeOf(verified);
  if (route.kind !== 'payment' || route.paymentTxnId !== args.paymentTxnId || integration.id !== args.integrationId)
    return undefined;
  const event = paymentEventOf(messageId, verified, route);
  const facts: PaymentFacts = { proof: { ok: true } };
  const rules = (f: PaymentFacts) =>
    decidePayment(state, { type: 'ipn', event }, f, {
      now: args.decidedAt,
      orphanGraceSeconds: args.orphanGraceSeconds,
      refuseLiveOnSandbox: true,
      namedMatters: true,
    });
  // The rules ask for at most a customer and a posting; a few rounds more would be a bug.
  for (let round = 0; round < 4; round++) {
    const decision = rules(facts);
    if (decision.kind === 'done' || decision.effects.length > 0) return undefined;
    const { need } = decision;
    const known = msg.payerMatch;
    if (need.fact === 'customerMatch' && known?.custom === need.custom && known.payerEmail === need.payerEmail) {
      facts.customerMatch = known.customerId;
      continue;
    }
    if (need.fact !== 'posting') return undefined;
    const key = need.posting.idempotencyKey;
    const after = rules({ ...facts, postings: { ...facts.postings, [key]: { ok: true } } });
    if (after.kind !== 'done' || after.effects.length > 0) return undefined;
    return { posting: need.posting, state: after.state, outcome: paymentOutcomeOf(messageId, after, flags, event) };
  }
  return undefined;
}
