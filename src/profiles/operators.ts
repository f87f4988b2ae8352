import { acknowledgeMatters } from '../shared/matters';
import type { AcknowledgeProfileAction } from './actions';
import { ATTENTION, type OperatorInput, type ProfileStep } from './decide-kit';
import { releaseHeld } from './money';
import { MATTER_CLOSING } from './matters';
import { bill, manage, refresh } from './nvp-actions';
import { refusalOf } from './refusals';

/**
 * An operator's request on a profile: refused when PayPal (or our rules) would refuse it
 * (refusals.ts), else audited and applied: assigning a customer or approving failed checks credits
 * what was held, acknowledging closes matters, and status changes and bills go to PayPal.
 */

export function onOperator(d: ProfileStep, input: OperatorInput): void {
  const s = d.s;
  const a = input.action;
  const refusal = refusalOf(s, input, d.ctx.now, d.rules);
  const auditAction = `profile_${input.type}`;
  if (refusal) {
    d.result = refusal;
    d.note('operator', `${a.operator} asked to ${input.type}: refused (${refusal.rule}) ${refusal.detail}`);
    d.audit({
      actor: a.operator,
      action: `${auditAction}_refused`,
      reason: a.reason,
      details: { rule: refusal.rule, refused: refusal.detail },
    });
    return;
  }
  switch (input.type) {
    case 'assign': {
      const exists = d.need(d.facts.customerExists, {
        fact: 'customerExists',
        customerId: input.action.customerId,
      });
      if (!exists) {
        d.result = {
          ok: false,
          status: 422,
          rule: 'no_such_customer',
          detail: `no customer ${input.action.customerId}`,
        };
        d.audit({
          actor: a.operator,
          action: 'profile_assign_refused',
          reason: a.reason,
          details: { refused: 'no such customer' },
        });
        return;
      }
      d.audit({
        actor: a.operator,
        action: 'profile_assign',
        reason: a.reason,
        customerId: input.action.customerId,
      });
      s.customerId = input.action.customerId;
      s.fields.customerId = { source: 'api', at: d.ctx.now, dated: false, by: a.operator };
      s.attention = s.attention.filter((x) => x !== ATTENTION.noCustomer);
      d.note('operator', `${a.operator} assigned customer ${s.customerId}: ${a.reason}`);
      releaseHeld(d, a);
      d.result = { ok: true, detail: `assigned to ${s.customerId}` };
      return;
    }
    case 'approve': {
      d.audit({
        actor: a.operator,
        action: 'profile_approve',
        reason: a.reason,
        customerId: s.customerId ?? undefined,
      });
      for (const p of s.payments) if (p.holdCause?.code === 'checks_failed') s.approvedFlags.push(...p.flags);
      d.note('operator', `${a.operator} approved held payments: ${a.reason}`);
      releaseHeld(d, a);
      d.result = { ok: true, detail: 'approved' };
      return;
    }
    case 'acknowledge':
      return acknowledge(d, input.action);
    case 'refresh':
      refresh(d, a);
      return;
    case 'cancel':
      if (s.status === 'Cancelled') {
        d.result = { ok: true, detail: `${s.profileId} is already cancelled` };
        d.note('operator', `${a.operator} asked to cancel: already cancelled, nothing to do`);
        d.audit({
          actor: a.operator,
          action: auditAction,
          reason: a.reason,
          details: { result: 'already cancelled' },
        });
        return;
      }
      return manage(d, input.type, 'Cancel', 'Cancelled', a);
    case 'suspend':
      return manage(d, input.type, 'Suspend', 'Suspended', a);
    case 'reactivate':
      return manage(d, input.type, 'Reactivate', 'Active', a);
    case 'bill':
      return bill(d, input.action);
  }
}

function acknowledge(d: ProfileStep, a: AcknowledgeProfileAction): void {
  const s = d.s;
  // Refused beforehand (refusalOf) when it would close nothing it may.
  const ack = acknowledgeMatters(MATTER_CLOSING, s.attention, a.matter, s.profileId);
  const closes = (m: string) =>
    !d.rules.namedMatters
      ? // No customer stays a matter until one is assigned: acknowledging it would hide held money.
        !(m === ATTENTION.noCustomer && s.customerId === null)
      : ack.ok && ack.closed.includes(m);
  const closed = s.attention.filter(closes);
  s.attention = s.attention.filter((m) => !closes(m));
  d.audit({
    actor: a.operator,
    action: 'profile_acknowledge',
    reason: a.reason,
    details: { closed, open: s.attention },
  });
  d.note('operator', `${a.operator} acknowledged ${closed.join(', ')}: ${a.reason}`);
  const open = s.attention.length ? `; still open: ${s.attention.join(', ')}` : '';
  d.result = {
    ok: true,
    detail: d.rules.namedMatters ? `acknowledged ${closed.join(', ')}${open}` : 'acknowledged',
  };
}
