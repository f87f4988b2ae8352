import {
  ActivityFailure,
  CancelledFailure,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  TemporalFailure,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { LoadedMessage } from '../../activities/messages';
import type { VerifiedMessage } from '../../src/payments/message-event';
import type { OperatorAction } from '../../src/shared/contract';
import type { MessageOutcome } from '../../src/messages/state';
import { underLock, type Lock } from './one-at-a-time';
import { messageLocal, postbackLocalTry, postbackUntil } from './activity-options';
import { FEWER_STEPS } from './patches';

const local = proxyLocalActivities<Activities>(messageLocal);

export interface ParkingDecision {
  kind: 'retry' | 'reject';
  action: OperatorAction;
  messageId?: string;
}

export type Examination =
  | { kind: 'refused'; detail: string }
  | { kind: 'finished'; outcome: MessageOutcome; detail: string }
  | { kind: 'verified'; msg: VerifiedMessage };

/**
 * What every stored message goes through before it may concern a payment, a profile or a batch:
 * loaded (and claimed against duplicates), decoded, proven with PayPal's postback, and kept away
 * from live money when it is a test message. When PayPal does not answer within the retry budget
 * the message is parked until a person decides (`awaitOperator`, which the calling workflow feeds
 * from its own signal handlers). `flags` collects what is worth showing on the message. A message
 * the workflow may not take is `refused`, and nothing is written to it.
 */
export async function examineMessage(
  messageId: string,
  opts: {
    /** Only a message dispatched to this workflow is taken (see loadMessage); processIpn owns its own. */
    forWorkflow?: string;
    verifyGiveUpSeconds: number;
    flags: string[];
    awaitOperator: (about: { integrationId: string; txnId?: string }) => Promise<ParkingDecision>;
    onParked?: () => void;
    /** Told when the postback goes to its durable retries (PayPal did not answer at once). */
    onSlow?: () => void;
    /** Taken around each local activity when the caller runs several examinations at once. */
    localActivityLock?: Lock;
    /** The caller's answer to FEWER_STEPS (a payment may know it from its input); else patched(). */
    fewerSteps?: () => boolean;
    /**
     * Loaded already, postback tried (loadPaymentWithMessage), or null when the message is not stored:
     * not loaded again.
     */
    preloaded?: LoadedMessage | null;
  },
): Promise<Examination> {
  const { flags } = opts;
  const lock = opts.localActivityLock;
  const { loadMessage, recordMessageOutcome, raiseAlert, audit } = lock ? underLock(local, lock) : local;
  // The first postback tried by loadMessage itself (one local activity, not two); when PayPal does
  // not answer it at once, the regular activity takes over as before.
  if (opts.preloaded === null) return { kind: 'refused', detail: `message ${messageId} is not stored` };
  const withPostback = opts.preloaded !== undefined || (opts.fewerSteps ? opts.fewerSteps() : patched(FEWER_STEPS));
  const msg =
    opts.preloaded ??
    (withPostback
      ? await loadMessage(messageId, opts.forWorkflow, { postback: true })
      : opts.forWorkflow
        ? await loadMessage(messageId, opts.forWorkflow)
        : await loadMessage(messageId));
  if (msg.refusal) return { kind: 'refused', detail: msg.refusal };
  if (msg.duplicateOf) flags.push('duplicate');
  if (!msg.integration)
    return { kind: 'finished', outcome: 'unknown_integration', detail: 'the integration was deleted after arrival' };
  if (!msg.summary) {
    flags.push('malformed');
    return { kind: 'finished', outcome: 'malformed', detail: msg.decodeError ?? 'could not decode' };
  }
  const { integration, summary } = msg;

  if (integration.verifyTransaction) {
    // Tried with the load: its answer, or (null) straight to the durable retries.
    let first = withPostback ? msg.firstVerdict : undefined;
    for (;;) {
      const verdict =
        first === undefined
          ? await verifyOrGiveUp(messageId, opts.verifyGiveUpSeconds, lock, opts.onSlow)
          : (first ?? (opts.onSlow?.(), await verifyDurably(messageId, opts.verifyGiveUpSeconds)));
      first = undefined;
      if (verdict === 'VERIFIED') break;
      if (verdict === 'INVALID') {
        flags.push('invalid');
        await raiseAlert({
          kind: 'ipn_invalid',
          messageId,
          detail: 'PayPal answered INVALID to the postback: possible spoof',
        });
        return { kind: 'finished', outcome: 'invalid', detail: 'PayPal answered INVALID: not credited' };
      }
      flags.push('parked');
      setCurrentDetails(
        '**parked**: PayPal did not answer the postback in time. Signal `retryVerification` or `rejectMessage`.',
      );
      opts.onParked?.();
      await recordMessageOutcome({
        messageId,
        outcome: 'parked',
        detail: 'verification gave up; waiting for an operator',
        flags,
      });
      const decided = await opts.awaitOperator({ integrationId: integration.id, txnId: summary.txnId ?? undefined });
      await audit({
        actor: decided.action.operator,
        action: decided.kind === 'retry' ? 'retry_verification' : 'reject_message',
        reason: decided.action.reason,
        integrationId: integration.id,
        txnId: summary.txnId ?? undefined,
        details: { messageId },
      });
      flags.splice(flags.indexOf('parked'), 1);
      if (decided.kind === 'reject')
        return {
          kind: 'finished',
          outcome: 'rejected_by_operator',
          detail: `${decided.action.operator}: ${decided.action.reason}`,
        };
    }
  } else {
    flags.push('unverified');
  }

  if (summary.testIpn && integration.mode === 'live') {
    flags.push('sandbox_on_live');
    return {
      kind: 'finished',
      outcome: 'sandbox_on_live',
      detail: 'test_ipn=1 on a live integration never moves money',
    };
  }
  return { kind: 'verified', msg: { ...msg, integration, summary } };
}

/**
 * VERIFIED or INVALID, or 'gave_up' once the retry budget (bounded in time) is spent.
 *
 * The first attempt is a local activity: PayPal answers a postback in well under a second, and
 * running it inside the workflow task saves an activity dispatch and a second workflow task per
 * message (bench/trace-payment.ts: POST to credit about 230 ms to 135 ms at concurrency 4). When
 * that attempt fails (PayPal slow or down), the regular activity takes over with the whole retry
 * budget, durable across worker restarts. Histories from before this replay as they were recorded.
 *
 * The local attempt gets a few seconds only: while it runs, the workflow task stays open and the
 * workflow takes no other input, so a postback PayPal leaves hanging (a forgery, say) would hold up
 * a payment's genuine messages and decisions for as long (it was 15 s; the task's own heartbeat
 * lets input in after 8 s at most). A local activity's timeout is not part of the history.
 */
async function verifyOrGiveUp(
  messageId: string,
  giveUpSeconds: number,
  lock: Lock = (run) => run(),
  onSlow?: () => void,
): Promise<'VERIFIED' | 'INVALID' | 'gave_up'> {
  if (patched(VERIFY_LOCALLY)) {
    const { verifyWithPayPal } = proxyLocalActivities<Activities>(postbackLocalTry);
    try {
      return await lock(() => verifyWithPayPal({ messageId }));
    } catch (err) {
      if (!(err instanceof TemporalFailure) || err instanceof CancelledFailure) throw err;
    }
  }
  onSlow?.();
  return verifyDurably(messageId, giveUpSeconds);
}

/** The postback as a regular activity, backing off until the message's give-up time. */
async function verifyDurably(messageId: string, giveUpSeconds: number): Promise<'VERIFIED' | 'INVALID' | 'gave_up'> {
  const { verifyWithPayPal } = proxyActivities<Activities>(postbackUntil(giveUpSeconds));
  try {
    return await verifyWithPayPal({ messageId });
  } catch (err) {
    if (err instanceof ActivityFailure) return 'gave_up';
    throw err;
  }
}

const VERIFY_LOCALLY = 'verify-postback-as-local-activity';
