import { describeMoney } from '../shared/money';
import { ATTENTION, type ProfileStep } from './decide-kit';
import { matter } from './matters';
import type { ProfileField, ProfileState, ProfileStatus, Stamp } from './state';

/**
 * The fields PayPal tells us about a profile (status, amounts, dates, failures), each with a stamp
 * (who said it, as of when): only a newer word replaces one. Status moves backwards (Suspended →
 * Active) only on a strictly later dated event or on PayPal's own answer to our API call; Cancelled
 * and Expired are left only by PayPal's answer.
 */

const STATUS_RANK: Record<ProfileStatus, number> = { Pending: 0, Active: 1, Suspended: 2, Cancelled: 3, Expired: 3 };
export const TERMINAL: ProfileStatus[] = ['Cancelled', 'Expired'];

/** PayPal's own status moves forward; backwards only on a strictly later dated word, or PayPal's API answer. */
export function setStatus(d: ProfileStep, target: ProfileStatus, stamp: Stamp, messageId: string | null): void {
  const s = d.s;
  if (s.status === target) return restamp(d, 'status', stamp);
  const cur = s.fields.status;
  const fromApi = stamp.source !== 'ipn';
  const forward = s.status === null || STATUS_RANK[target] > STATUS_RANK[s.status];
  const later = stamp.dated && cur !== undefined && secs(stamp.at) > secs(cur.at);
  if (!fromApi && s.status !== null && TERMINAL.includes(s.status)) {
    d.note(stamp.source, `${target} after ${s.status}: recorded, not applied`, messageId);
    // Older news is normal; PayPal dating a live status after its own final one is a contradiction.
    if (d.rules.namedMatters && !TERMINAL.includes(target) && later && messageId) {
      d.contradiction(
        matter('final_status_contradicted', messageId),
        messageId,
        `${target} dated ${stamp.at}, after ${s.status} as of ${cur?.at ?? '?'}`,
      );
    }
    return;
  }
  if (!fromApi && !forward && !later) {
    d.note(
      stamp.source,
      `${target} is older than ${s.status} (as of ${cur?.at ?? '?'}): recorded, not applied`,
      messageId,
    );
    return;
  }
  s.status = target;
  s.fields.status = stamp;
}

function restamp(d: ProfileStep, field: ProfileField, stamp: Stamp): void {
  const cur = d.s.fields[field];
  if (!cur || secs(stamp.at) >= secs(cur.at)) d.s.fields[field] = stamp;
}

/** Sets an observed field when this word is at least as new as the one it replaces. */
export function setField(
  d: ProfileStep,
  field: Exclude<ProfileField, 'status' | 'customerId'>,
  value: unknown,
  stamp: Stamp,
  force = false,
): void {
  const s = d.s;
  const cur = s.fields[field];
  if (!force && cur && secs(stamp.at) < secs(cur.at)) return;
  s.fields[field] = stamp;
  switch (field) {
    case 'currency':
      s.currency = value as string;
      return;
    case 'amountPerCycle':
      s.amountPerCycleMinor = value as number;
      return;
    case 'outstanding':
      s.outstandingMinor = value as number;
      return;
    case 'nextPaymentDate':
      s.nextPaymentDate = value as string | null;
      return;
    case 'failedPaymentCount':
      s.failedPaymentCount = value as number;
      return;
  }
}

export function checkOutstanding(d: ProfileStep, messageId: string | null): void {
  const s = d.s;
  const { outstandingMinor: out, amountPerCycleMinor: cycle } = s;
  if (out === null || cycle === null || cycle <= 0 || !s.currency) return;
  if (out > cycle * d.ctx.outstandingAlertCycles && !s.attention.includes(ATTENTION.outstanding)) {
    d.attend(ATTENTION.outstanding);
    const detail =
      `${s.profileId}: outstanding ${describeMoney(out, s.currency)} ` +
      `is over ${d.ctx.outstandingAlertCycles} cycles`;
    d.alert('profile_outstanding_over_threshold', messageId, detail);
  }
}

/** The observed fields in one line, for history and drift notes. */
export function summary(st: ProfileState): string {
  const money = (m: number | null) => (m === null || !st.currency ? String(m) : describeMoney(m, st.currency));
  return (
    `status ${st.status ?? '?'}, per cycle ${money(st.amountPerCycleMinor)}, outstanding ` +
    `${money(st.outstandingMinor)}, next ${st.nextPaymentDate ?? 'N/A'}, failed ${st.failedPaymentCount}`
  );
}

/** PayPal's clock has whole seconds: two words in the same second are equally new. */
export function secs(iso: string): string {
  return iso.slice(0, 19);
}
