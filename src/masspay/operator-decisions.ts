import type { PendingRelease } from './state';
import { pushBounded } from '../shared/rules-kit';
import { itemRefusal } from './item-rules';
import { type BatchOperatorInput, CLEARED_LIMIT } from './batch-model';
import type { BatchRefusal } from './batch-model';
import { sendMatter, sendMatterKind, batchRefusal, capsText, resolvePlan, uncertainChunks } from './batch-rules';
import { SendDecisions } from './send-decisions';

export abstract class OperatorDecisions extends SendDecisions {
  protected onOperator(input: BatchOperatorInput): void {
    const s = this.s;
    const a = input.action;
    const refusal = batchRefusal(s, input, { legacy: this.legacy }) ?? this.refusalByFacts(input);
    if (refusal) return this.refuse(input, refusal);
    const details: Record<string, unknown> = { batchId: s.id };
    switch (input.type) {
      case 'approve':
        if (this.legacy) {
          s.approvedBy = a.operator;
          s.state = 'approved';
          this.note(`approved by ${a.operator}: ${a.reason}`);
          break;
        }
        s.approvals.push({ operator: a.operator, at: this.ctx.now });
        details.approval = `${s.approvals.length}/${s.requiredApprovals}`;
        if (s.approvals.length < s.requiredApprovals) {
          this.note(
            `first approval, by ${a.operator}: ${s.id} is over ${capsText(s)}, ` +
              `a second operator (not ${s.createdBy}, not ${a.operator}) must approve it too: ${a.reason}`,
          );
          break;
        }
        s.approvedBy = a.operator;
        s.state = 'approved';
        this.note(
          `approved by ${a.operator}` +
            (s.approvals.length > 1 ? ` (second approval, after ${s.approvals[0]!.operator})` : '') +
            `: ${a.reason}`,
        );
        break;
      case 'submitted':
        s.submittedAt = input.action.submittedAt ?? this.ctx.now;
        s.state = 'submitted';
        s.channel = 'upload';
        // An API send that never reached PayPal is abandoned for the upload.
        s.send = null;
        s.attention = s.attention.filter((m) => sendMatterKind(m) === null);
        this.note(`${a.operator} submitted the batch to PayPal at ${s.submittedAt}: ${a.reason}`);
        break;
      case 'cancel': {
        const r = this.need(this.facts.applyAll, {
          fact: 'applyAll',
          to: 'Cancelled',
          messageId: null,
          operator: a.operator,
        });
        s.counts = r.counts;
        s.state = 'cancelled';
        // Nothing of it is at PayPal (else cancel is refused): what its send left asks nobody now.
        if (!this.legacy) s.attention = s.attention.filter((m) => sendMatterKind(m) === null);
        this.note(`cancelled by ${a.operator}: ${a.reason}; ${r.moved} reservation(s) released`);
        break;
      }
      case 'resolve':
        if (!this.onResolve(input)) return;
        Object.assign(details, { uniqueId: input.action.uniqueId, to: input.action.state });
        break;
      case 'send':
        this.onSend(input.action);
        break;
      case 'cancelUnclaimed': {
        const r = this.need(this.facts.cancelUnclaimed, { fact: 'cancelUnclaimed', uniqueId: input.action.uniqueId });
        details.uniqueId = input.action.uniqueId;
        if (!r.ok) {
          this.note(`${a.operator} asked PayPal to cancel ${input.action.uniqueId}: refused, ${r.reason}`);
          this.audit({
            actor: a.operator,
            action: 'payout_cancelUnclaimed_refused',
            reason: a.reason,
            details: { ...details, refused: r.reason, rule: 'paypal_refused' },
          });
          this.result = { ok: false, status: 409, rule: 'paypal_refused', detail: r.reason };
          return;
        }
        s.counts = r.counts;
        this.note(
          `${a.operator} cancelled unclaimed ${input.action.uniqueId} at PayPal ` +
            `(${r.moved} item(s) moved): ${a.reason}`,
        );
        break;
      }
      case 'reconcile': {
        if (s.send?.channel === 'rest') {
          // A Payouts call is sent again with the same sender_batch_id: PayPal creates nothing twice
          // (it answers that it has that batch, and the send goes on from PayPal's copy).
          for (const c of uncertainChunks(s)) {
            c.state = 'pending';
            this.unattend(sendMatter('send_unanswered', c.index));
          }
          this.note(`${a.operator} sends the unanswered Payouts call(s) again under their own ids: ${a.reason}`);
          details.chunks = s.send.chunks.map((c) => c.state);
          break;
        }
        const r = this.need(this.facts.reconcile, {
          fact: 'reconcile',
          search: true,
          chunks: uncertainChunks(s).map((c) => this.toReconcile(c)),
        });
        this.note(`${a.operator} reconciles the unanswered call(s) with PayPal: ${a.reason}`);
        this.applyReconciliation(r, a.operator);
        details.chunks = s.send!.chunks.map((c) => c.state);
        break;
      }
      case 'clearContradiction': {
        const c = s.contradictions.find((x) => x.id === input.action.contradictionId)!;
        s.contradictions = s.contradictions.filter((x) => x.id !== c.id);
        pushBounded(s.clearedContradictions, c.id, CLEARED_LIMIT);
        this.note(`${a.operator} cleared the contradiction ${c.id}: ${a.reason}`);
        details.contradiction = c;
        break;
      }
      case 'stopWaiting': {
        // Contradictions, releases waiting for a second operator and unanswered calls are not
        // waiting for PayPal: each closes only by its own decision (legacy: everything closed here).
        const closed = this.legacy ? s.attention : s.attention.filter((m) => sendMatterKind(m) !== 'send_unanswered');
        this.note(
          `${a.operator} stopped waiting for ` +
            `PayPal${closed.length ? ` and closed ${closed.join(', ')}` : ''}: ${a.reason}`,
        );
        s.stoppedWaiting = true;
        s.attention = s.attention.filter((m) => !closed.includes(m));
        break;
      }
    }
    details.state = s.state;
    this.audit({ actor: a.operator, action: `payout_${input.type}`, reason: a.reason, details });
    this.result = { ok: true, detail: s.history.at(-1)?.what ?? input.type };
  }

  /**
   * What only I/O can tell refuses an action before anything changes: a send without credentials
   * (or for an integration now in another mode), a resolution of an item that is not there or cannot
   * move so. Asked only where the rules since patched('masspay-operator-updates') apply.
   */
  protected refusalByFacts(input: BatchOperatorInput): BatchRefusal | null {
    if (this.legacy || !this.ctx.checkBeforeActing) return null;
    if (input.type === 'send') {
      const channel = this.s.send?.channel ?? input.action.channel ?? null;
      const ready = this.need(this.facts.sendReady, { fact: 'sendReady', channel });
      return ready.ok ? null : { status: 422, rule: 'send_not_possible', detail: ready.reason };
    }
    if (input.type === 'cancelUnclaimed') {
      const { uniqueId } = input.action;
      const current = this.need(this.facts.itemState, { fact: 'itemState', uniqueId });
      if (current === null) return { status: 422, rule: 'no_such_item', detail: `no item ${uniqueId} in ${this.s.id}` };
      return current === 'Unclaimed'
        ? null
        : {
            status: 409,
            rule: 'item_state',
            detail: `${uniqueId} is ${current}: only an Unclaimed item can be cancelled`,
          };
    }
    if (input.type === 'resolve') {
      const { uniqueId, state } = input.action;
      const current = this.need(this.facts.itemState, { fact: 'itemState', uniqueId });
      if (current === null) return { status: 422, rule: 'no_such_item', detail: `no item ${uniqueId} in ${this.s.id}` };
      const why = itemRefusal(current, state);
      return why ? { status: 409, rule: 'item_state', detail: `${uniqueId}: ${why}` } : null;
    }
    return null;
  }

  /** A refused action: noted and audited, nothing else changes. */
  protected refuse(input: BatchOperatorInput, refusal: BatchRefusal): void {
    const a = input.action;
    this.note(`${a.operator} tried to ${input.type}: refused, ${refusal.detail}`);
    this.audit({
      actor: a.operator,
      action: `payout_${input.type}_refused`,
      reason: a.reason,
      details: {
        refused: refusal.detail,
        rule: refusal.rule,
        ...(input.type === 'resolve' ? { uniqueId: input.action.uniqueId } : {}),
      },
    });
    this.result = { ok: false, ...refusal };
  }

  /** Applies or proposes a resolution (see resolvePlan); false when refused (audited here). */
  protected onResolve(input: Extract<BatchOperatorInput, { type: 'resolve' }>): boolean {
    const s = this.s;
    const action = input.action;
    const plan = resolvePlan(s, action, this.ctx);
    if (plan.kind === 'propose') {
      s.pendingReleases = s.pendingReleases.filter((p) => p.uniqueId !== action.uniqueId);
      s.pendingReleases.push({
        uniqueId: action.uniqueId,
        state: action.state as PendingRelease['state'],
        operator: action.operator,
        note: action.reason,
        at: this.ctx.now,
      });
      this.note(
        `${action.operator} asks to resolve ${action.uniqueId} as ${action.state} (its money comes back) ` +
          `${plan.until ? `before the waiting period ends (${plan.until})` : 'early'}: ` +
          `another operator must confirm it: ${action.reason}`,
      );
      this.audit({
        actor: action.operator,
        action: 'payout_resolve_proposed',
        reason: action.reason,
        details: { batchId: s.id, uniqueId: action.uniqueId, to: action.state, until: plan.until },
      });
      this.result = { ok: true, detail: s.history.at(-1)!.what, needsSecondOperator: { until: plan.until } };
      return false;
    }
    const r = this.need(this.facts.applyOne, { fact: 'applyOne', action });
    s.pendingReleases = s.pendingReleases.filter((p) => p.uniqueId !== action.uniqueId);
    if (!r.ok) {
      this.refuse(input, { status: 409, rule: 'item_state', detail: r.reason });
      return false;
    }
    s.counts = r.counts;
    const confirms = plan.confirms ? ` (confirming ${plan.confirms.operator}'s request)` : '';
    this.note(`${action.operator} resolved ${action.uniqueId} as ${action.state}${confirms}: ${action.reason}`);
    if ((s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0) === 0) this.unattend('items_open_after_completed');
    return true;
  }
}
