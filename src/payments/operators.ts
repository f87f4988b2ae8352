import type { AcknowledgeAction, AssignCustomerAction, OperatorAction } from '../shared/operator-actions';
import {
  LIVE_ON_SANDBOX_RULE,
  type PaymentInput,
  type PaymentRefusal,
  type PaymentRefusalRule,
  type PaymentStep,
} from './decide-kit';
import { capsOnApprove } from './hold';
import { acknowledged, acknowledgeRefusal } from './matters';
import { applyWaiting, credit } from './money';
import type { PaymentState } from './state';

/**
 * An operator's decision on a payment: refused (and audited) unless it matches something pending,
 * else audited and applied: assigning a customer or approving a hold retries what was held with the
 * decision in place, rejecting drops it, acknowledging closes named matters.
 */

/**
 * Why an operator's decision is refused now, or null when it matches something pending. The
 * workflow asks it for the update and the signal alike, on the payment as it is when the decision's
 * turn comes. (Assigning a customer that does not exist is refused too, once the rules asked.)
 */
export function refusalOf(
  s: PaymentState,
  input: Extract<PaymentInput, { action: unknown }>,
  rules: { refuseLiveOnSandbox: boolean; namedMatters?: boolean } = { refuseLiveOnSandbox: true },
): PaymentRefusal | null {
  const conflict = (rule: PaymentRefusalRule, detail: string): PaymentRefusal => ({ status: 409, rule, detail });
  switch (input.type) {
    case 'approve': {
      if (!s.hold) return conflict('nothing_held', `nothing is held on ${s.txnId} to approve`);
      const held = s.hold.on === 'payment' ? s.payment : s.waiting[0];
      if (rules.refuseLiveOnSandbox && held?.flags.includes('live_message_on_sandbox'))
        return {
          status: 422,
          rule: LIVE_ON_SANDBOX_RULE,
          detail:
            `${held.txnId} came without test_ipn to a sandbox integration, ` +
            'which never posts live money; reject it (a real live payment belongs to a live integration)',
        };
      return null;
    }
    case 'reject':
      return s.hold ? null : conflict('nothing_held', `nothing is held on ${s.txnId} to ${input.type}`);
    case 'acknowledge': {
      const refusal = acknowledgeRefusal(s, input.action.matter, rules.namedMatters ?? true);
      return refusal === null ? null : conflict(refusal.rule, refusal.detail);
    }
    case 'assign':
      // Who was credited is settled by the ledger entry; moving money between customers is not an assignment.
      return s.creditedMinor > 0
        ? conflict('already_credited', `${s.txnId} is already credited to ${s.customerId}`)
        : null;
  }
}

/** Records and audits a refused decision; true when refused. */
function refused(d: PaymentStep, input: Extract<PaymentInput, { action: unknown }>, action: string): boolean {
  const namedMatters = d.ctx.namedMatters ?? true;
  const why = refusalOf(d.s, input, { refuseLiveOnSandbox: d.ctx.refuseLiveOnSandbox ?? true, namedMatters });
  if (why === null) return false;
  const a = input.action;
  d.note(`${a.operator} tried to ${input.type}: refused, ${why.detail}`);
  const customerId = input.type === 'assign' ? input.action.customerId : undefined;
  d.audit({
    actor: a.operator,
    action: `${action}_refused`,
    reason: a.reason,
    customerId,
    details: { refused: why.detail, rule: why.rule },
  });
  d.result = { ok: false, ...why };
  return true;
}

export function onAssign(d: PaymentStep, a: AssignCustomerAction): void {
  const s = d.s;
  if (refused(d, { type: 'assign', action: a }, 'assign_customer')) return;
  const exists = d.need(d.facts.customerExists, { fact: 'customerExists', customerId: a.customerId });
  if (!exists) {
    d.note(`${a.operator} tried to assign unknown customer ${a.customerId}`);
    d.audit({
      actor: a.operator,
      action: 'assign_customer_refused',
      reason: a.reason,
      customerId: a.customerId,
      details: { hold: s.hold?.reason ?? null, refused: 'no such customer', rule: 'unknown_customer' },
    });
    d.result = { ok: false, status: 422, rule: 'unknown_customer', detail: `no customer ${a.customerId}` };
    return;
  }
  d.audit({
    actor: a.operator,
    action: 'assign_customer',
    reason: a.reason,
    customerId: a.customerId,
    details: { hold: s.hold?.reason ?? null },
  });
  s.customerId = a.customerId;
  d.note(`${a.operator} assigned customer ${a.customerId}: ${a.reason}`);
  resume(d, a);
}

export function onApprove(d: PaymentStep, a: OperatorAction): void {
  const s = d.s;
  if (refused(d, { type: 'approve', action: a }, 'approve')) return;
  const hold = s.hold!;
  d.audit({
    actor: a.operator,
    action: 'approve',
    reason: a.reason,
    customerId: s.customerId ?? undefined,
    details: { hold: hold.reason },
  });
  d.note(`${a.operator} approved ${hold.reason}: ${a.reason}`);
  if (hold.on === 'payment') s.approvedFlags.push(...(s.payment?.flags ?? []));
  else {
    s.approvedFlags.push(...(s.waiting[0]?.flags ?? []));
    // Capping is approved only by approving an over-limit hold, and used up by the adjustment
    // held; approving a flagged one must not silently cap a later refund.
    s.capApproved = capsOnApprove(hold.cause);
  }
  resume(d, a);
}

export function onReject(d: PaymentStep, a: OperatorAction): void {
  const s = d.s;
  if (refused(d, { type: 'reject', action: a }, 'reject')) return;
  const hold = s.hold!;
  d.audit({
    actor: a.operator,
    action: 'reject',
    reason: a.reason,
    customerId: s.customerId ?? undefined,
    details: { hold: hold.reason },
  });
  d.note(`${a.operator} rejected ${hold.reason}: ${a.reason}`);
  s.hold = null;
  if (hold.on === 'payment') {
    s.phase = 'rejected';
  } else {
    const dropped = s.waiting.shift();
    d.note(`dropped ${dropped?.kind ?? 'adjustment'} ${dropped?.txnId ?? ''}`);
    applyWaiting(d);
  }
}

export function onAcknowledge(d: PaymentStep, a: AcknowledgeAction): void {
  const s = d.s;
  if (refused(d, { type: 'acknowledge', action: a }, 'acknowledge')) return;
  const named = d.ctx.namedMatters ?? true;
  const { closed, open } = acknowledged(s, a.matter, named);
  d.audit({
    actor: a.operator,
    action: 'acknowledge',
    reason: a.reason,
    customerId: s.customerId ?? undefined,
    details: named ? { closed, open } : { attention: s.attention },
  });
  d.note(`${a.operator} acknowledged ${closed.join(', ')}: ${a.reason}`);
  // Before named matters, an orphaned refund was acknowledged too: it stays waiting (a person knows).
  s.attention = open;
}

/** Retries whatever was held, now with the operator's decision in place. */
function resume(d: PaymentStep, by: OperatorAction): void {
  const s = d.s;
  const hold = s.hold;
  if (!hold) return;
  s.hold = null;
  if (hold.on === 'payment') {
    s.phase = 'pending';
    if (s.payment?.paymentStatus === 'Completed') credit(d, by);
  } else {
    applyWaiting(d, by);
  }
}
