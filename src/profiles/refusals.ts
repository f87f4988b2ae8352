import { describeMoney, isSupportedCurrency, parseAmount } from '../shared/money';
import { acknowledgeMatters } from '../shared/matters';
import type { BillOutstandingAction } from './actions';
import { CURRENT_RULES, type ActionResult, type OperatorInput, type ProfileRules } from './decide-kit';
import { MATTER_CLOSING } from './matters';
import type { ProfileState } from './state';

/**
 * Which operator requests a profile refuses as it stands, with PayPal's own error codes where PayPal
 * would refuse them (11556-11578): asked before any call to PayPal, by the rules and the admin API alike.
 */

const DAY_MS = 24 * 3600 * 1000;

/**
 * Why PayPal (or our own rules) would refuse this request now, or null. Checked before calling
 * PayPal so a request PayPal would refuse costs no call; the admin API asks the same question.
 */
export function refusalOf(
  s: ProfileState,
  input: OperatorInput,
  now: string,
  rules: ProfileRules = CURRENT_RULES,
): Extract<ActionResult, { ok: false }> | null {
  const refuse = (status: 409 | 422, rule: string, detail: string) => ({ ok: false as const, status, rule, detail });
  const st = s.status ?? 'unknown';
  switch (input.type) {
    case 'suspend':
      return s.status === 'Active'
        ? null
        : refuse(409, '11557', `only an Active profile can be suspended; ${s.profileId} is ${st}`);
    case 'reactivate':
      return s.status === 'Suspended'
        ? null
        : refuse(409, '11558', `only a Suspended profile can be reactivated; ${s.profileId} is ${st}`);
    case 'cancel':
      return s.status === 'Active' || s.status === 'Suspended' || s.status === 'Cancelled'
        ? null
        : refuse(409, '11556', `only an Active or Suspended profile can be cancelled; ${s.profileId} is ${st}`);
    case 'bill': {
      // First: until we know whether PayPal acted on the last bill, any bill could be a second one.
      if (rules.billOnce && s.billUncertain) {
        const u = s.billUncertain;
        return refuse(
          409,
          'bill_uncertain',
          `the bill sent by ${u.operator} at ${u.at} got no answer and may have been carried out: no bill ` +
            `is sent again until its IPN arrives or PayPal's outstanding balance settles it (refresh)`,
        );
      }
      if (s.status !== 'Active' && s.status !== 'Suspended') {
        return refuse(
          409,
          'profile_status',
          `only an Active or Suspended profile can be billed; ${s.profileId} is ${st}`,
        );
      }
      const outstanding = s.outstandingMinor ?? 0;
      if (outstanding <= 0 || !s.currency)
        return refuse(409, 'no_outstanding_balance', `${s.profileId} has no outstanding balance`);
      const amount = billAmount(s, input.action);
      if (amount === null)
        return refuse(422, 'amount', `amount ${JSON.stringify(input.action.amount)} is not an amount of ${s.currency}`);
      if (amount <= 0) return refuse(422, 'amount', 'amount must be greater than zero');
      if (amount > outstanding) {
        return refuse(
          409,
          '11576',
          `amount ${describeMoney(amount, s.currency)} exceeds the ` +
            `outstanding ${describeMoney(outstanding, s.currency)}`,
        );
      }
      if (s.billQueued)
        return refuse(
          409,
          '11577',
          `an outstanding payment billed by ${s.billQueued.operator} at ${s.billQueued.at} is still queued`,
        );
      const next = s.nextPaymentDate ? Date.parse(s.nextPaymentDate) : NaN;
      const untilNext = next - Date.parse(now);
      if (Number.isFinite(untilNext) && untilNext >= 0 && untilNext < DAY_MS) {
        return refuse(409, '11578', `a scheduled payment is due at ${s.nextPaymentDate}, within 24 hours`);
      }
      return null;
    }
    case 'refresh':
      return null;
    case 'assign':
      return s.payments.some((p) => p.creditedMinor > 0)
        ? refuse(
            409,
            'already_credited',
            `${s.profileId} already credited ${s.customerId}; moving money between customers is not an assignment`,
          )
        : null;
    case 'approve':
      return s.payments.some((p) => p.holdCause?.code === 'checks_failed')
        ? null
        : refuse(409, 'nothing_held', `no payment of ${s.profileId} is held on failed checks`);
    case 'acknowledge': {
      const ack = acknowledgeMatters(MATTER_CLOSING, s.attention, input.action.matter, s.profileId);
      if (ack.ok) return null;
      if (ack.rule === 'nothing_to_acknowledge') return refuse(409, ack.rule, ack.detail);
      if (!rules.namedMatters) return null;
      if (ack.rule !== 'closed_otherwise') return refuse(409, ack.rule, ack.detail);
      return ack.closing === 'assign'
        ? refuse(409, 'assign_customer', 'payments wait for a customer: assign one, which closes this matter')
        : refuse(
            409,
            'bill_uncertain',
            'an uncertain bill is closed by what PayPal did (its IPN, or its balance on refresh), ' +
              'not by acknowledgement',
          );
    }
  }
}

/** The amount a bill request asks for, in minor units (the whole balance when none is given); null when unreadable. */
export function billAmount(s: ProfileState, a: BillOutstandingAction): number | null {
  if (a.amount === undefined) return s.outstandingMinor ?? 0;
  if (!s.currency || !isSupportedCurrency(s.currency)) return null;
  try {
    return parseAmount(a.amount, s.currency);
  } catch {
    return null;
  }
}
