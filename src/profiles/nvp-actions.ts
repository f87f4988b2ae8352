import { describeMoney, formatMinor, isSupportedCurrency, parseAmount } from '../shared/money';
import type { ProfileAction, BillOutstandingAction } from './actions';
import { ATTENTION, type ProfileStep } from './decide-kit';
import { auditedCall, type NvpCall, type NvpOutcome } from './nvp-calls';
import { checkOutstanding, setField, setStatus, summary } from './observed-fields';
import { billAmount } from './refusals';
import { ProfileStatusSchema, type ProfileEvent, type ProfileStatus, type Stamp } from './state';

/**
 * What an operator (or the refresh schedule) asks PayPal to do to a profile through its NVP API:
 * change its status, bill what is outstanding (once: a lost answer leaves the bill uncertain until
 * evidence settles it), and read its details back (drift from what the IPNs said is recorded).
 */

function callPayPal(d: ProfileStep, call: NvpCall): NvpOutcome {
  return d.need(d.facts.nvp, { fact: 'nvp', call });
}

/** Records who asked what and what PayPal said; false (with the result set) unless PayPal said Success. */
function answered(
  d: ProfileStep,
  type: string,
  a: ProfileAction,
  call: NvpCall,
  answer: NvpOutcome,
): answer is Extract<NvpOutcome, { ack: 'Success' }> {
  const shown =
    answer.ack === 'Success'
      ? 'Success'
      : answer.ack === 'Failure'
        ? `Failure ${answer.code} ${answer.longMessage}`
        : `no answer: ${answer.message}`;
  d.audit({
    actor: a.operator,
    action: `profile_${type}`,
    reason: a.reason,
    customerId: d.s.customerId ?? undefined,
    details: auditedCall(call, answer),
  });
  d.note('api', `${a.operator} asked to ${type} (${a.reason}): PayPal answered ${shown}`);
  if (answer.ack === 'Success') return true;
  d.result =
    answer.ack === 'Failure'
      ? {
          ok: false,
          status: 409,
          rule: answer.code,
          detail: `PayPal refused: ${answer.code} ${answer.shortMessage}: ${answer.longMessage}`,
          paypal: answer,
        }
      : { ok: false, status: 502, rule: 'paypal_unreachable', detail: answer.message, paypal: answer };
  return false;
}

export function manage(
  d: ProfileStep,
  type: 'cancel' | 'suspend' | 'reactivate',
  action: string,
  to: ProfileStatus,
  a: ProfileAction,
): void {
  const call: NvpCall = {
    method: 'ManageRecurringPaymentsProfileStatus',
    params: { PROFILEID: d.s.profileId, ACTION: action, NOTE: a.reason },
  };
  const answer = callPayPal(d, call);
  if (!answered(d, type, a, call, answer)) {
    // PayPal's 11556 on a cancel means it is cancelled there already: that is what was asked.
    if (type === 'cancel' && answer.ack === 'Failure' && answer.code === '11556') {
      d.note('api', 'PayPal says the profile cannot be cancelled: refresh to learn its status');
    }
    return;
  }
  // No IPN follows an API change: PayPal's answer is the confirmation.
  setStatus(d, to, { source: 'api', at: d.ctx.now, dated: true, by: a.operator }, null);
  if (type === 'reactivate') d.s.attention = d.s.attention.filter((x) => x !== ATTENTION.maxFailed);
  d.result = { ok: true, detail: `${d.s.profileId} is ${to}`, paypal: answer };
}

export function bill(d: ProfileStep, a: BillOutstandingAction): void {
  const st = d.s;
  const amount = billAmount(st, a)!;
  const params: Record<string, string> = { PROFILEID: st.profileId, NOTE: a.reason };
  if (a.amount !== undefined) params.AMT = formatMinor(amount, st.currency!);
  const call: NvpCall = { method: 'BillOutstandingAmount', params };
  const answer = callPayPal(d, call);
  if (!answered(d, 'bill', a, call, answer)) {
    if (answer.ack === 'Unknown' && d.rules.billOnce) billUncertain(d, amount, a, answer.message);
    return;
  }
  // The money arrives (or fails) by IPN; until then PayPal refuses another bill.
  st.billQueued = { amountMinor: amount, at: d.ctx.now, operator: a.operator };
  d.result = {
    ok: true,
    detail: `billing ${describeMoney(amount, st.currency!)}; the result arrives by IPN`,
    paypal: answer,
  };
}

/**
 * The bill was sent and its answer lost: PayPal may have billed. Not sent again (PayPal documents
 * no idempotency for it), held for a person until evidence settles it (`reconcileBill`).
 */
function billUncertain(d: ProfileStep, amount: number, a: BillOutstandingAction, why: string): void {
  const st = d.s;
  st.billUncertain = {
    amountMinor: amount,
    at: d.ctx.now,
    operator: a.operator,
    outstandingBeforeMinor: st.outstandingMinor ?? 0,
    why: why.slice(0, 300),
  };
  d.attend(ATTENTION.billUncertain);
  const detail =
    `PayPal's answer to billing ${describeMoney(amount, st.currency!)} was lost (${why.slice(0, 200)}): it may ` +
    `have billed. Not sent again; held until its IPN arrives or PayPal's balance settles it`;
  d.note('api', detail);
  d.alert('profile_bill_uncertain', null, `${st.profileId}: ${detail}`);
  d.result = { ok: false, status: 502, rule: 'bill_uncertain', detail, paypal: { ack: 'Unknown', message: why } };
}

/**
 * Evidence about an uncertain bill. PayPal's outstanding-payment IPN (Completed or failed) means
 * it was carried out; so does PayPal's balance below what it was when the bill was sent (were
 * something else to have lowered it, a new bill could still ask only for what remains). A balance
 * not lower once the settle window has passed, with no such IPN in it, means it was not: only then
 * may a bill be sent again. Within the window an unchanged balance proves nothing (PayPal may
 * still be collecting).
 */
export function reconcileBill(
  d: ProfileStep,
  evidence: { by: 'paypal'; ipn: ProfileEvent } | { by: string; outstandingMinor: number },
): void {
  const st = d.s;
  const u = st.billUncertain;
  if (!u) return;
  const money = (m: number) => describeMoney(m, st.currency!);
  const elapsed = Date.parse(d.ctx.now) - Date.parse(u.at);
  let verdict: 'carried_out' | 'not_carried_out';
  let why: string;
  if ('ipn' in evidence) {
    verdict = 'carried_out';
    why = `PayPal's ${evidence.ipn.txnType} IPN arrived`;
  } else if (evidence.outstandingMinor < u.outstandingBeforeMinor) {
    verdict = 'carried_out';
    why = `PayPal's outstanding is ${money(evidence.outstandingMinor)}, ${money(u.outstandingBeforeMinor)} when sent`;
  } else if (elapsed >= d.ctx.billSettleMs) {
    verdict = 'not_carried_out';
    why =
      `PayPal's outstanding is still ${money(evidence.outstandingMinor)} ` +
      `${Math.round(elapsed / 1000)} s after the bill, and no outstanding-payment IPN came`;
  } else {
    d.note(
      'refresh',
      `bill of ${money(u.amountMinor)} still uncertain: PayPal's outstanding is ` +
        `${money(evidence.outstandingMinor)} as when sent; settled no earlier than ` +
        `${new Date(Date.parse(u.at) + d.ctx.billSettleMs).toISOString()}`,
    );
    return;
  }
  st.billUncertain = null;
  st.attention = st.attention.filter((m) => m !== ATTENTION.billUncertain);
  const messageId = 'ipn' in evidence ? evidence.ipn.messageId : null;
  const detail =
    `bill of ${money(u.amountMinor)} by ${u.operator} at ${u.at}: ` + `${verdict.replaceAll('_', ' ')} (${why})`;
  d.note('ipn' in evidence ? 'ipn' : 'refresh', detail, messageId);
  d.audit({
    actor: evidence.by,
    action: 'profile_bill_reconciled',
    customerId: st.customerId ?? undefined,
    details: {
      verdict,
      amountMinor: u.amountMinor,
      sentAt: u.at,
      outstandingBeforeMinor: u.outstandingBeforeMinor,
      ...('ipn' in evidence
        ? { messageId, txnType: evidence.ipn.txnType }
        : { outstandingAfterMinor: evidence.outstandingMinor }),
    },
  });
  d.alert('profile_bill_reconciled', messageId, `${st.profileId}: ${detail}`);
}

/** PayPal's current view of the profile replaces ours field by field; what changed is recorded as drift. */
export function refresh(d: ProfileStep, a: ProfileAction | null): void {
  const st = d.s;
  const call: NvpCall = { method: 'GetRecurringPaymentsProfileDetails', params: { PROFILEID: st.profileId } };
  const answer = callPayPal(d, call);
  const who = a ?? { operator: 'schedule', reason: 'scheduled refresh' };
  st.lastRefreshAt = d.ctx.now;
  if (!answered(d, 'refresh', who, call, answer)) {
    if (!a)
      d.alert('profile_refresh_failed', null, `${st.profileId}: ${d.result?.ok === false ? d.result.detail : ''}`);
    return;
  }
  const f = answer.fields;
  const stamp: Stamp = { source: 'refresh', at: d.ctx.now, dated: true, by: who.operator };
  const before = summary(st);
  const status = ProfileStatusSchema.safeParse(f.STATUS);
  if (status.success) setStatus(d, status.data, stamp, null);
  const currency = f.CURRENCYCODE ?? st.currency;
  if (currency && isSupportedCurrency(currency)) {
    setField(d, 'currency', currency, stamp);
    const minor = (v: string | undefined) => {
      try {
        return v === undefined ? null : parseAmount(v, currency);
      } catch {
        return null;
      }
    };
    const out = minor(f.OUTSTANDINGBALANCE);
    if (out !== null) setField(d, 'outstanding', out, stamp);
    if (out !== null) reconcileBill(d, { by: who.operator, outstandingMinor: out });
    const amt = minor(f.AMT);
    if (amt !== null) setField(d, 'amountPerCycle', amt, stamp);
  }
  // PayPal leaves NEXTBILLINGDATE out when nothing is scheduled (a suspended or ended profile).
  const next = Date.parse(f.NEXTBILLINGDATE ?? '');
  setField(d, 'nextPaymentDate', Number.isFinite(next) ? new Date(next).toISOString() : null, stamp);
  if (f.FAILEDPAYMENTCOUNT !== undefined && /^\d+$/.test(f.FAILEDPAYMENTCOUNT)) {
    setField(d, 'failedPaymentCount', Number(f.FAILEDPAYMENTCOUNT), stamp);
  }
  // PayPal no longer shows a queued bill once it ran: its IPN tells us the result.
  const after = summary(st);
  if (before !== after) {
    d.note('refresh', `PayPal's view differed: ${before} → ${after}`);
    d.alert('profile_drift', null, `${st.profileId}: ${before} → ${after}`);
  }
  checkOutstanding(d, null);
  d.result = { ok: true, detail: before === after ? 'no change' : `updated: ${after}`, paypal: answer };
}
