import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { CustomerIdKey, FlagsKey, PaymentStatusKey } from '../src/shared/contract';
import { describeMoney } from '../src/shared/money';
import { describeIssues } from '../src/shared/operator-actions';
import { LifecycleEventSchema } from '../src/payments/state';
import {
  initialProfileState,
  isApiManaged,
  ProfileEventSchema,
  upgradeProfileState,
  type ProfileState,
} from '../src/profiles/state';
import { PROFILE_OPERATOR_ACTIONS, type ProfileActionPath } from '../src/profiles/actions';
import {
  decideProfile,
  needsPerson,
  NVP_NOT_SENT,
  type ActionResult,
  type OperatorInput,
  type ProfileEffect,
  type ProfileFactNeed,
  type ProfileFacts,
  type ProfileInput,
  type ProfileRules,
} from '../src/profiles/rules';
import { decideWithFacts, postingFact } from './shared/decide-with-facts';
import { operatorDoors, parseAction, type Parsed } from './shared/operator-doors';
import type { OperatorAnswer } from '../src/shared/operator-actions';

type ProfileAnswer = OperatorAnswer<ProfileState, ActionResult>;
import {
  PROFILE_ACTION_SIGNALS,
  profileActionUpdate,
  profileAdjustmentSignal,
  profileIpnSignal,
  profileStateQuery,
  type RecurringProfileInput,
} from '../src/profiles/contract';
import { oncePayPal, paypalCall, quickLocal } from './shared/activity-options';

// Bookkeeping as local activities, as for payments; PayPal's API is a regular activity (slow, external).
const act = proxyLocalActivities<Activities>(quickLocal);
// A few tries for the calls that move no money: repeating GetRecurringPaymentsProfileDetails reads
// again, and repeating ManageRecurringPaymentsProfileStatus asks for the status PayPal already set
// (at worst a refusal such as 11557, which changes nothing and is reported as such). An operator
// waits on the answer, hence few.
const paypal = proxyActivities<Activities>(paypalCall);
// BillOutstandingAmount moves money and PayPal documents no idempotency for it: one attempt. A
// failure after it may have been sent is `Unknown` (the rules hold the bill as uncertain).
const paypalOnce = proxyActivities<Activities>(oncePayPal);
/** Patches (see ProfileRules): histories decided before them replay with the rules they had. */
const BILL_ONCE_PATCH = 'profile-bill-once';
const NAMED_MATTERS_PATCH = 'profile-named-matters';

const TERMINAL = ['Cancelled', 'Expired'];
const SIGNAL_EXTRA_FIELDS: Partial<Record<ProfileActionPath, string>> = {
  'bill-outstanding': ', "amount": "10.00"',
  assign: ', "customerId": "..."',
  acknowledge: ', "matter": "one of attention (without it, only notices close)"',
};

function toOperatorInput(path: string, body: unknown): Parsed<ProfileInput> {
  const spec = Object.hasOwn(PROFILE_OPERATOR_ACTIONS, path)
    ? PROFILE_OPERATOR_ACTIONS[path as ProfileActionPath]
    : undefined;
  if (!spec) return { ok: false, issues: `unknown action ${String(path).slice(0, 40)}` };
  return parseAction(spec.schema as z.ZodType<OperatorInput['action']>, body, (action) => {
    return { type: spec.type, action } as OperatorInput;
  });
}

/**
 * The life of one PayPal recurring profile (or subscription): its IPNs, its cycle payments and
 * their refunds, operator requests and PayPal's answers, one at a time through `decideProfile`.
 */
export async function recurringProfile(input: RecurringProfileInput): Promise<ProfileState> {
  const inbox: Array<{ input: ProfileInput }> = [];
  const accept =
    <T>(signal: string, schema: z.ZodType<T>, toInput: (v: T) => ProfileInput) =>
    (payload: unknown) => {
      const parsed = schema.safeParse(payload);
      inbox.push({
        input: parsed.success
          ? toInput(parsed.data)
          : { type: 'malformed', signal, issues: describeIssues(parsed.error) },
      });
    };
  setHandler(
    profileIpnSignal,
    accept('profileIpn', ProfileEventSchema, (event) => ({ type: 'ipn', event })),
    {
      description: 'A verified IPN about this profile (sent by processIpn; checked against the stored message).',
    },
  );
  setHandler(
    profileAdjustmentSignal,
    accept('profileAdjustment', LifecycleEventSchema, (event) => ({ type: 'adjustment', event })),
    {
      description: 'A verified refund, reversal or dispute of one of this profile’s payments.',
    },
  );
  // Operator actions: an update from the admin API, a signal from the Web UI; one parse, one queue.
  const doors = operatorDoors<{ input: ProfileInput }, ProfileAnswer>({
    inbox,
    parse: (action, body) => {
      const parsed = toOperatorInput(action, body);
      return parsed.ok ? { ok: true, input: { input: parsed.input } } : parsed;
    },
    malformed: (signal, issues) => ({ input: { type: 'malformed', signal, issues } }),
    // Money decisions from the Web UI carry a proof (a refresh or an acknowledgement moves no money).
    proofNeeded: (action) =>
      action === 'refresh' || action === 'acknowledge' ? null : action === 'assign' ? 'operator' : 'approver',
  });
  for (const [path, signal] of Object.entries(PROFILE_ACTION_SIGNALS) as Array<
    [ProfileActionPath, (typeof PROFILE_ACTION_SIGNALS)[ProfileActionPath]]
  >) {
    setHandler(signal, doors.signal(path, signal.name), {
      description:
        `Operator: ${path}. Input: {"operator": "...", "reason": "..."` + `${SIGNAL_EXTRA_FIELDS[path] ?? ''}}`,
    });
  }
  // Refused before it reaches history: a malformed request changes nothing and is not recorded.
  setHandler(profileActionUpdate, doors.update, { validator: doors.validator });

  const loaded = await act.loadProfileState({ integrationId: input.integrationId, profileId: input.profileId });
  let state = loaded ? upgradeProfileState(loaded) : initialProfileState(input.integrationId, input.profileId);
  setHandler(profileStateQuery, () => state);
  publish(state);
  const refreshBase = Date.now();

  for (;;) {
    const refreshDue = state.status !== null && !TERMINAL.includes(state.status) && isApiManaged(input.profileId);
    const lastRefresh = state.lastRefreshAt ? Date.parse(state.lastRefreshAt) : refreshBase;
    let untilRefresh = refreshDue ? Math.max(0, lastRefresh + input.refreshSeconds * 1000 - Date.now()) : null;
    // An uncertain bill is reconciled by a refresh once its settle window is over (not a day later).
    const settled = state.billUncertain ? Date.parse(state.billUncertain.at) + billSettleMs(input) : null;
    if (untilRefresh !== null && settled !== null && settled > lastRefresh)
      untilRefresh = Math.min(untilRefresh, Math.max(0, settled - Date.now()));
    const idle = !refreshDue && !needsPerson(state) && state.status !== null ? input.idleCloseSeconds * 1000 : null;
    const wait = untilRefresh ?? idle;
    const woken =
      wait === null ? (await condition(() => inbox.length > 0), true) : await condition(() => inbox.length > 0, wait);
    if (!woken) {
      // Idle and finished: a later IPN starts it again (an action that came in meanwhile is answered first).
      if (untilRefresh === null && inbox.length === 0) break;
      if (untilRefresh !== null) inbox.push({ input: { type: 'scheduled_refresh' } });
    }
    while (inbox.length > 0) {
      const item = inbox.shift()!;
      const decision = await decide(state, item.input, input);
      state = decision.state;
      publish(state);
      await act.saveProfileState(state);
      if (decision.outcome) await act.recordMessageOutcome(decision.outcome);
      const saved = state;
      doors.answer(item, () => ({
        result: decision.result ?? { ok: false, status: 409, rule: 'not_an_action', detail: 'no result' },
        state: saved,
        inFlight: [],
      }));
    }
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof recurringProfile>(input);
    }
  }
  await condition(allHandlersFinished);
  return state;
}

/** PayPal announces a collected outstanding payment by IPN: we give it one refresh interval. */
function billSettleMs(input: RecurringProfileInput): number {
  return input.refreshSeconds * 1000;
}

function decide(state: ProfileState, item: ProfileInput, input: RecurringProfileInput) {
  const undecidable: ProfileInput = { type: 'malformed', signal: item.type, issues: 'no decision after 500 facts' };
  const rules: ProfileRules = { billOnce: patched(BILL_ONCE_PATCH), namedMatters: patched(NAMED_MATTERS_PATCH) };
  return decideWithFacts({
    rules: (facts: ProfileFacts, stuck) =>
      decideProfile(state, stuck ? undecidable : item, stuck ? {} : facts, {
        now: new Date().toISOString(),
        outstandingAlertCycles: input.outstandingAlertCycles,
        billSettleMs: billSettleMs(input),
        rules,
      }),
    fetch: (need, facts) => fetchFact(need, facts, state, rules),
    run: (effect) => runEffect(effect, state),
    facts: {},
  });
}

async function runEffect(effect: ProfileEffect, s: ProfileState): Promise<void> {
  if (effect.type === 'alert') await act.raiseAlert(effect);
  else if (effect.type === 'claim_txn')
    await act.claimProfileTxn({ integrationId: s.integrationId, txnId: effect.txnId, profileId: s.profileId });
  else {
    const { type: _type, ...audit } = effect;
    await act.audit({ ...audit, integrationId: s.integrationId, txnId: s.profileId });
  }
}

async function fetchFact(
  need: ProfileFactNeed,
  facts: ProfileFacts,
  s: ProfileState,
  rules: ProfileRules,
): Promise<void> {
  switch (need.fact) {
    case 'proof':
    case 'adjustmentProof':
      facts.proof = await act.proveProfileEvent(need.event);
      return;
    case 'customerExists':
      facts.customerExists = await act.customerExists(need.customerId);
      return;
    case 'customerMatch':
      facts.customerMatch = await act.matchCustomer(need);
      return;
    case 'nvp': {
      const once = rules.billOnce && need.call.method === 'BillOutstandingAmount';
      try {
        facts.nvp = await (once ? paypalOnce : paypal).callPayPalNvp({
          integrationId: s.integrationId,
          call: need.call,
        });
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        const message = (err.cause?.message ?? err.message).slice(0, 300);
        // Certainly not sent (the activity says so) is safe to ask again; anything else may have reached PayPal.
        const notSent = err.cause instanceof ApplicationFailure && err.cause.type === NVP_NOT_SENT;
        facts.nvp = once && !notSent ? { ack: 'Unknown', message } : { ack: 'Unreachable', message };
      }
      return;
    }
    case 'posting':
      facts.postings = {
        ...facts.postings,
        [need.posting.idempotencyKey]: await postingFact(() => act.postToLedger(need.posting)),
      };
      return;
  }
}

function publish(s: ProfileState): void {
  const held = s.payments.filter((p) => p.held).map((p) => `held:${p.held}`);
  upsertSearchAttributes([
    { key: PaymentStatusKey, value: s.status ?? 'unknown' },
    { key: FlagsKey, value: [...new Set([...s.attention, ...held])] },
    ...(s.customerId ? [{ key: CustomerIdKey, value: s.customerId }] : []),
  ]);
  const money = (m: number | null) => (m === null || !s.currency ? 'unknown' : describeMoney(m, s.currency));
  const attention =
    s.attention.length || held.length ? `\n\nNEEDS A PERSON: ${[...s.attention, ...held].join(', ')}` : '';
  setCurrentDetails(
    `**${s.status ?? 'unknown'}**, customer ${s.customerId ?? 'unknown'}; per cycle ${money(s.amountPerCycleMinor)}, ` +
      `outstanding ${money(s.outstandingMinor)}, credited ${money(s.creditedMinor)}${attention}`,
  );
}
