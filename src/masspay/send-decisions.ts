import { NVP_DUPLICATE_UNIQUE_ID, SEND_CHANNEL_MAX_ITEMS, type SendAction, type SendChunk } from './state';
import { type ChunkReconciliation, type ChunkToReconcile, RECONCILE_MARGIN_MS } from './batch-model';
import { sendMatter, sendMatterKind, nextSendChunk, planChunks } from './batch-rules';
import { DeciderBase } from './decider-base';

export abstract class SendDecisions extends DeciderBase {
  protected onSend(action: SendAction): void {
    const s = this.s;
    const previous = s.send;
    // Again after a halt: through the channel of the first send (its calls' ids are that channel's).
    const ready = this.facts.sendReady;
    const channel = previous?.channel ?? action.channel ?? (ready?.ok ? ready.channel : undefined) ?? 'api';
    const chunks = previous
      ? previous.chunks.map((c) => (c.state === 'acked' ? c : { ...c, state: 'pending' as const, error: null }))
      : planChunks(s.itemCount, SEND_CHANNEL_MAX_ITEMS[channel]);
    s.send = {
      channel,
      operator: action.operator,
      startedAt: this.ctx.now,
      emailSubject: action.emailSubject ?? previous?.emailSubject ?? `Payment ${s.id}`,
      chunks,
    };
    s.attention = s.attention.filter((m) => sendMatterKind(m) === null);
    const left = chunks.filter((c) => c.state === 'pending').length;
    this.note(
      `${action.operator} ${previous ? 'sends again' : 'sends'} the batch through PayPal's ` +
        `${channel === 'rest' ? 'Payouts REST' : 'MassPay'} API ` +
        `(${left} call(s) of at most ${SEND_CHANNEL_MAX_ITEMS[channel]} items): ${action.reason}`,
    );
  }

  /** Where a search for an unanswered chunk's items starts: an hour before its call went unanswered. */
  protected toReconcile(c: SendChunk): ChunkToReconcile {
    const since = Date.parse(c.uncertainSince ?? this.s.send?.startedAt ?? this.ctx.now) - RECONCILE_MARGIN_MS;
    return { index: c.index, from: c.from, to: c.to, since: new Date(since).toISOString() };
  }

  /**
   * Settles unanswered chunks from what PayPal shows: items reported by IPN, or found by a search,
   * mean PayPal has the call (it takes a call whole): acked, never sent again. A search that found
   * none of its items lets it go again; one that cannot tell leaves it held.
   */
  protected applyReconciliation(results: ChunkReconciliation[], operator: string | null): void {
    const s = this.s;
    for (const r of results) {
      const chunk = s.send?.chunks.find((c) => c.index === r.index && c.state === 'uncertain');
      if (!chunk) continue;
      const label = `call ${chunk.index + 1} (items ${chunk.from + 1}-${chunk.to})`;
      const settle = (state: 'acked' | 'not_found', by: 'ipn' | 'search', found: number) => {
        chunk.state = state;
        chunk.reconciled = { at: this.ctx.now, by, operator, items: r.items, found };
        this.unattend(sendMatter('send_unanswered', chunk.index));
        this.unattend(sendMatter('reconcile_inconclusive', chunk.index));
      };
      if (r.reported > 0) {
        settle('acked', 'ipn', r.reported);
        this.note(`PayPal's IPNs report ${r.reported} of the ${r.items} item(s) of ${label}: PayPal has it`);
        continue;
      }
      if (r.search === null) continue;
      if ('inconclusive' in r.search) {
        this.attend(sendMatter('reconcile_inconclusive', chunk.index));
        this.note(`reconciling ${label} could not tell whether PayPal has it: ${r.search.inconclusive}; still held`);
        this.alert('payout_reconcile_inconclusive', null, `${s.id}: ${label}: ${r.search.inconclusive}`);
        continue;
      }
      const found = r.search.found;
      if (found === 0) {
        settle('not_found', 'search', 0);
        this.note(`PayPal's transactions show none of the ${r.items} item(s) of ${label}: it may be sent again`);
        continue;
      }
      settle('acked', 'search', found);
      this.note(`PayPal's transactions show ${found} of the ${r.items} item(s) of ${label}: PayPal has it`);
      if (found < r.items) {
        // PayPal takes a call whole: some items missing means a person must look at them.
        this.attend(sendMatter('reconcile_partial', chunk.index));
        this.alert('payout_reconcile_partial', null, `${s.id}: ${label}: ${found} of ${r.items} item(s) found`);
      }
    }
  }

  protected onSendChunk(): void {
    const s = this.s;
    const chunk = nextSendChunk(s);
    if (!chunk || !s.send) return;
    const r = this.need(this.facts.sendChunk, {
      fact: 'sendChunk',
      channel: s.send.channel,
      chunk: { index: chunk.index, from: chunk.from, to: chunk.to },
      emailSubject: s.send.emailSubject,
    });
    const label = `call ${chunk.index + 1}/${s.send.chunks.length} (items ${chunk.from + 1}-${chunk.to})`;
    const callsBefore = chunk.calls;
    chunk.calls += r.calls;
    switch (r.outcome) {
      case 'acked':
        chunk.state = 'acked';
        chunk.correlationId = r.correlationId;
        this.note(`PayPal accepted ${label}, CORRELATIONID ${r.correlationId ?? '(none)'}`);
        return this.sentThroughApi();
      case 'refused':
        if (r.code === NVP_DUPLICATE_UNIQUE_ID)
          return this.onDuplicate(chunk, label, callsBefore === 0 && r.calls <= 1);
        chunk.state = 'refused';
        chunk.error = `${r.code}: ${r.message}`.slice(0, 300);
        this.attend(sendMatter('send_refused', chunk.index, r.code.slice(0, 12)));
        this.note(`PayPal refused ${label}: ${chunk.error}; nothing of it was paid`);
        this.alert('payout_send_refused', null, `${s.id}: ${label}: ${chunk.error}`);
        return;
      case 'unreachable':
        chunk.state = 'uncertain';
        chunk.error = r.message.slice(0, 300);
        this.attend(sendMatter('send_unanswered', chunk.index));
        if (this.legacy) {
          this.note(
            `no answer from PayPal for ${label} (${chunk.error}): PayPal may have it; send again ` +
              '(PayPal refuses unique ids it already has, so nothing is paid twice)',
          );
        } else {
          // PayPal documents no idempotency for MassPay (L_UNIQUEIDn is a tracking field): never
          // sent again on a guess. Its items' IPNs, or a search of PayPal's transactions, decide.
          chunk.uncertainSince = this.ctx.now;
          this.note(
            `no answer from PayPal for ${label} (${chunk.error}): PayPal may have it; held, and never sent ` +
              "again until reconciled (its items' IPNs, or reconcile: a search of PayPal's transactions)",
          );
        }
        this.alert('payout_send_unanswered', null, `${s.id}: ${label}: ${chunk.error}`);
        if (chunk.calls > 0) this.sentThroughApi();
        return;
      case 'unsendable':
        // A request that failed before may have reached PayPal: such a chunk is uncertain, not refused.
        chunk.state = chunk.calls > 0 ? 'uncertain' : 'refused';
        chunk.error = `not sent: ${r.message}`.slice(0, 300);
        this.attend(sendMatter('send_not_possible'));
        this.note(`${label} ${chunk.error}`);
        this.alert('payout_send_not_possible', null, `${s.id}: ${r.message}`.slice(0, 300));
        if (chunk.state === 'uncertain') this.sentThroughApi();
        return;
    }
  }

  /** PayPal already holds every unique id of the call: nothing was paid now, nothing is paid twice. */
  protected onDuplicate(chunk: SendChunk, label: string, firstCall: boolean): void {
    chunk.state = 'acked';
    chunk.error = `PayPal already had its unique ids (${NVP_DUPLICATE_UNIQUE_ID})`;
    if (firstCall) {
      // Not our lost answer: someone sent these items already (the upload file?). Money is out once.
      this.attend(sendMatter('duplicate_unique_ids', chunk.index));
      this.alert('payout_sent_elsewhere', null, `${this.s.id}: ${label}: PayPal already had its unique ids`);
      this.note(`PayPal already had the unique ids of ${label} though we never sent it: check how they got there`);
    } else {
      this.note(`PayPal already had ${label} (an earlier request whose answer was lost): not paid twice`);
    }
    this.sentThroughApi();
  }

  /** PayPal has (or may have) items of the batch: it is submitted, and the Processed deadline runs. */
  protected sentThroughApi(): void {
    const s = this.s;
    if (s.state !== 'approved') return;
    s.state = 'submitted';
    s.channel = s.send?.channel ?? 'api';
    s.submittedAt = this.ctx.now;
    this.note(`submitted to PayPal through the API at ${s.submittedAt}`);
  }
}
