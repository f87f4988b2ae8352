import type { PayoutBatchState } from './state';
import { describeMoney } from '../shared/money';
import { NeedFact, clone } from '../shared/rules-kit';
import {
  APPLIED_MESSAGES_LIMIT,
  type BatchContext,
  type BatchDecision,
  type BatchFacts,
  type BatchInput,
  NOT_COMPLETED,
  NOT_PROCESSED,
} from './batch-model';
import { pushHistory, sentByUs, uncertainChunks } from './batch-rules';
import { OperatorDecisions } from './operator-decisions';

export function decideBatch(
  state: PayoutBatchState,
  input: BatchInput,
  facts: BatchFacts,
  ctx: BatchContext,
): BatchDecision {
  const d = new BatchDecider(clone(state), facts, ctx);
  try {
    d.apply(input);
    return { kind: 'done', state: d.s, effects: d.effects, result: 'action' in input ? d.result : null };
  } catch (err) {
    if (err instanceof NeedFact) return { kind: 'need', need: err.need, effects: d.effects };
    const s = clone(state);
    const detail = `${input.type}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300);
    if (!s.attention.includes('internal_error')) s.attention.push('internal_error');
    pushHistory(s, { at: ctx.now, what: `could not decide (${detail}); waiting for a person`, messageId: null });
    return {
      kind: 'done',
      state: s,
      effects: [{ type: 'alert', kind: 'payout_internal_error', messageId: null, detail: `${s.id}: ${detail}` }],
      result: 'action' in input ? { ok: false, status: 409, rule: 'internal_error', detail } : null,
    };
  }
}

export class BatchDecider extends OperatorDecisions {
  apply(input: BatchInput): void {
    switch (input.type) {
      case 'reserve':
        return this.onReserve();
      case 'masspay':
        return this.onMasspay(input.messageId);
      case 'malformed':
        this.note(`ignored a malformed ${input.signal} signal: ${input.issues}`);
        this.audit({
          actor: 'unknown',
          action: 'malformed_signal',
          details: { signal: input.signal, issues: input.issues },
        });
        this.alert('malformed_signal', null, `${this.s.id}: ${input.signal}: ${input.issues}`);
        return;
      case 'tick':
        return this.onTick();
      case 'sendChunk':
        return this.onSendChunk();
      default:
        return this.onOperator(input);
    }
  }

  protected onReserve(): void {
    if (this.s.reserved) return;
    const r = this.need(this.facts.reserve, { fact: 'reserve' });
    this.s.counts = r.counts;
    if (r.failures.length > 0) {
      this.attend('reservation_failed');
      this.note(`${r.failures.length} reservation(s) failed: ${r.failures.slice(0, 3).join('; ')}`);
      this.alert('payout_reservation_failed', null, `${this.s.id}: ${r.failures.slice(0, 3).join('; ')}`);
      return;
    }
    this.s.reserved = true;
    this.note(`reserved ${describeMoney(this.s.totalMinor, this.s.currency)} over ${this.s.itemCount} item(s)`);
  }

  protected onMasspay(messageId: string): void {
    const s = this.s;
    if (s.appliedMessages.includes(messageId)) {
      this.note('message already applied: ignored', messageId);
      return;
    }
    const applied = this.need(this.facts.applyMessage, { fact: 'applyMessage', messageId });
    if (!applied.ok) {
      this.attend(`unproven_message:${messageId.slice(0, 40)}`);
      this.note(`ignored a Mass Pay signal no verified message backs: ${applied.reason}`, messageId);
      this.alert('payout_unproven_message', messageId, `${s.id}: ${applied.reason}`);
      return;
    }
    s.appliedMessages.push(messageId);
    if (s.appliedMessages.length > APPLIED_MESSAGES_LIMIT)
      s.appliedMessages.splice(0, s.appliedMessages.length - APPLIED_MESSAGES_LIMIT);
    s.counts = applied.counts;
    const status = applied.paymentStatus;
    this.note(
      `PayPal: batch ${status ?? '(no status)'}; ${applied.moved} item(s) moved, ${applied.ignored} unchanged`,
      messageId,
    );
    if (applied.problems.length > 0) {
      this.attend(`item_problems:${messageId.slice(0, 40)}`);
      this.alert('payout_item_problems', messageId, `${s.id}: ${applied.problems.slice(0, 5).join(', ')}`);
    }
    if (!this.legacy) for (const c of applied.contradictions ?? []) this.contradict(c);
    if (s.state === 'created' && !this.legacy) {
      // PayPal has a batch nobody approved: money may be out on one person's word.
      this.contradict({
        code: 'sent_unapproved',
        id: 'sent_unapproved',
        messageId,
        at: this.ctx.now,
        ours: 'created',
        paypal: status ?? 'none',
      });
      s.submittedAt ??= this.ctx.now;
    } else if (s.state === 'created' || s.state === 'approved') {
      // PayPal has the batch although nobody marked it submitted (or approved): money may be out.
      this.attend(`sent_while_${s.state}`);
      this.alert(
        'payout_sent_unapproved',
        messageId,
        `${s.id}: PayPal reports ${status} while the batch is ${s.state}`,
      );
      s.submittedAt ??= this.ctx.now;
    }
    if (!this.legacy && uncertainChunks(s).length > 0) {
      // PayPal reporting items of an unanswered call proves it has the call: it is never sent again.
      const r = this.need(this.facts.reconcile, {
        fact: 'reconcile',
        search: false,
        chunks: uncertainChunks(s).map((c) => this.toReconcile(c)),
      });
      this.applyReconciliation(r, null);
    }
    switch (status) {
      case 'Processed':
        return this.advance('processed', messageId);
      case 'Completed':
        if (sentByUs(s) && (s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0) > 0) {
          // Each API call is its own payment at PayPal, completed on its own: the batch is complete
          // once every call's items are (a batch PayPal never finishes meets the Completed deadline).
          this.note('PayPal completed part of the batch (one API call); waiting for the rest', messageId);
          return this.advance('processed', messageId);
        }
        this.advance('completed', messageId);
        if ((s.counts['Pending'] ?? 0) + (s.counts['Unclaimed'] ?? 0) > 0 && s.state === 'completed') {
          this.attend('items_open_after_completed');
          this.note('PayPal completed the batch but some items are still open: resolve them', messageId);
        }
        return;
      case 'Denied':
        return this.onDenied(messageId);
      default:
        this.attend(`unknown_batch_status:${(status ?? 'none').slice(0, 24)}`);
        this.alert('payout_unknown_status', messageId, `${s.id}: payment_status ${status}`);
    }
  }

  /** Processed then Completed, or Completed first: the batch never moves back. */
  protected advance(to: 'processed' | 'completed', messageId: string): void {
    const s = this.s;
    if (s.state === 'denied' || s.state === 'cancelled') {
      this.note(`PayPal says ${to} but the batch is ${s.state}: a person must check the money`, messageId);
      if (!this.legacy) return this.contradictBatch(messageId, to);
      this.attend(`paypal_${to}_after_${s.state}`);
      this.alert('payout_contradiction', messageId, `${s.id}: ${to} after ${s.state}`);
      return;
    }
    if (to === 'processed') {
      s.processedAt ??= this.ctx.now;
      if (s.state !== 'completed') s.state = 'processed';
    } else {
      s.completedAt ??= this.ctx.now;
      s.state = 'completed';
    }
    // PayPal answered: the deadline that asked a person about it is moot.
    this.unattend(NOT_PROCESSED);
    if (to === 'completed') this.unattend(NOT_COMPLETED);
  }

  protected onDenied(messageId: string): void {
    const s = this.s;
    if (s.state === 'denied' || s.state === 'cancelled') return;
    if (s.send && s.send.chunks.length > 1) {
      // One API call was denied, not necessarily the others: which items come back is for a person.
      this.attend(`denied_partial:${messageId.slice(0, 40)}`);
      this.alert('payout_contradiction', messageId, `${s.id}: PayPal denied one of ${s.send.chunks.length} API calls`);
      this.note('PayPal denied one API call of the batch: resolve its items as Failed once checked', messageId);
      return;
    }
    if (s.state === 'processed' || s.state === 'completed') {
      // Money may already be with the payees: releasing it now could pay twice.
      if (!this.legacy) return this.contradictBatch(messageId, 'Denied');
      this.attend(`denied_after_${s.state}`);
      this.alert('payout_contradiction', messageId, `${s.id}: Denied after ${s.state}`);
      return;
    }
    const r = this.need(this.facts.applyAll, { fact: 'applyAll', to: 'Denied', messageId, operator: null });
    s.counts = r.counts;
    s.state = 'denied';
    this.unattend(NOT_PROCESSED);
    this.unattend(NOT_COMPLETED);
    this.note(`PayPal denied the batch: ${r.moved} reservation(s) released`, messageId);
    this.alert('payout_denied', messageId, `${s.id}: denied by PayPal`);
  }

  protected onTick(): void {
    const s = this.s;
    if (s.stoppedWaiting || !s.submittedAt) return;
    const since = Date.parse(this.ctx.now) - Date.parse(s.submittedAt);
    const d = this.ctx.deadlines;
    if (s.state === 'submitted' && since >= d.processedWithinSeconds * 1000 && !s.attention.includes(NOT_PROCESSED)) {
      this.attend(NOT_PROCESSED);
      this.note(`no Processed from PayPal ${Math.round(since / 3600_000)} h after submission`);
      this.alert('payout_not_processed', null, s.id);
    }
    if (
      (s.state === 'submitted' || s.state === 'processed') &&
      since >= d.completedWithinSeconds * 1000 &&
      !s.attention.includes(NOT_COMPLETED)
    ) {
      this.attend(NOT_COMPLETED);
      this.note(`no Completed from PayPal ${Math.round(since / 86400_000)} days after submission`);
      this.alert('payout_not_completed', null, s.id);
    }
  }
}
