import {
  isGrpcServiceError,
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  type Client,
} from '@temporalio/client';
import { Types } from 'mongoose';
import type { Config } from '../shared/config';
import type { Models } from '../shared/db/models';
import { gatheredDeletes, type Gathered } from '../shared/db/gathered';
import type { Logger } from '../shared/logger';
import { dispatchWorkflowId, type Dispatchable } from '../shared/ids';
import { classify, paymentTxnOf, RouteSchema, type Route } from './classify';
import { ipnMessageSignal, signalPayment } from '../payments/contract';
import { readIpnHead } from './read';
import { idPartOrHash, isIdPart, SUMMARY_MAX_CHARS } from '../shared/limits';
import { alerts } from '../shared/metrics';
import { IntegrationIdKey, TxnIdKey } from '../shared/contract';
import type { StoredMessage } from './intake';
import { PROCESS_IPN, type ProcessIpnWorkflow } from './contract';
import type { MessageState } from './state';

/** Temporal refused this message's start for good; the message is set aside for a person. */
export class UndispatchableError extends Error {
  constructor(
    readonly messageId: string,
    readonly reason: string,
  ) {
    super(`message ${messageId} cannot be dispatched: ${reason}`);
    this.name = 'UndispatchableError';
  }
}

const GRPC_INVALID_ARGUMENT = 3;

/**
 * The server judged the request itself invalid (id too long, search attribute too large...):
 * retrying the same start can never succeed. Anything else (unavailable, deadline, throttled)
 * may pass later.
 */
function refusedForGood(err: unknown): err is ServiceError {
  return err instanceof ServiceError && isGrpcServiceError(err.cause) && err.cause.code === GRPC_INVALID_ARGUMENT;
}

/** Entries the relay takes per sweep, oldest first. */
const RELAY_BATCH = 200;

/**
 * An outbox entry whose message is still missing this long after its _id was made belongs to a
 * message insert that failed (PayPal got a 503 and resends): no insert is still in flight by then.
 */
const ORPHAN_ENTRY_MS = 10 * 60_000;

/**
 * Hands each stored message to the one workflow intake named for it: its payment's entity (signal
 * `ipnMessage` with start; the entity takes a message id once) or its own processIpn. The request
 * path tries right after answering PayPal; the relay sweeps up whatever it missed (a crash, Temporal
 * briefly down) from the ipn_outbox collection, whose entry a dispatch deletes last. processIpn runs
 * exactly once because its id derives from the message id and a closed id is never reused: starting
 * twice yields "already started", which counts as done. Every query goes by _id (or an _id range).
 */
export class IpnDispatcher {
  private timer?: NodeJS.Timeout;
  private stopped = true;
  private draining?: Promise<number>;
  /** Entries of dispatched messages, deleted gathered (a burst's dispatches end in a few commands). */
  private readonly dispatched: Gathered<unknown>;

  constructor(private readonly deps: { models: Models; client: Client; config: Config; logger: Logger }) {
    this.dispatched = gatheredDeletes('delete outbox entry', deps.models.IpnOutbox.collection);
  }

  async dispatch(msg: Dispatchable & Partial<Pick<StoredMessage, 'workflowId'>>): Promise<string> {
    const { client, config, models } = this.deps;
    // Named once, at intake; only a message stored before intake named it (the relay) is named here.
    const workflowId = msg.workflowId ?? dispatchWorkflowId(msg);
    // Written before the start, never after: FerretDB v1 updates a document as a whole
    // (read-modify-write), so a write racing the workflow's own outcome writes could undo one.
    // From the start on, the workflow is the message's only writer.
    if (!msg.workflowId) {
      const known = await models.IpnMessage.findById(msg._id, { workflowId: 1 }).lean();
      if (known?.workflowId !== workflowId)
        await models.IpnMessage.updateOne({ _id: msg._id }, { $set: { workflowId, dispatchedAt: new Date() } });
    }
    try {
      if (msg.paymentTxnId) {
        // Its payment verifies and checks it; a second delivery of the same message id changes nothing there.
        const to = {
          ...msg,
          workflowId,
          paymentTxnId: msg.paymentTxnId,
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          config,
        };
        await signalPayment(client, to, ipnMessageSignal, { messageId: msg._id });
      } else
        await client.workflow.start<ProcessIpnWorkflow>(PROCESS_IPN, {
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          workflowId,
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          args: [
            {
              messageId: msg._id,
              verifyGiveUpSeconds: config.IPN_VERIFY_GIVE_UP_SECONDS,
              paymentIdleCloseSeconds: config.PAYMENT_IDLE_CLOSE_SECONDS,
            },
          ],
          typedSearchAttributes: [
            { key: IntegrationIdKey, value: msg.integrationId },
            ...(msg.txnId && isIdPart(msg.txnId) ? [{ key: TxnIdKey, value: msg.txnId }] : []),
          ],
          staticSummary: summaryOf(msg),
        });
    } catch (err) {
      if (refusedForGood(err)) throw await this.setAside(msg._id, (err.cause as Error).message);
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    // State stays with the workflow (loadMessage sets `dispatched`). Through the driver, as intake inserted it.
    await this.dispatched.add(new Types.ObjectId(msg._id));
    return workflowId;
  }

  /** Out of the outbox, into GET /admin/held, with an alert: it never waits silently nor blocks others. */
  private async setAside(messageId: string, reason: string): Promise<UndispatchableError> {
    const { models, logger } = this.deps;
    await models.IpnMessage.updateOne(
      { _id: messageId },
      {
        $set: { state: 'undispatchable' satisfies MessageState, outcome: reason },
        $addToSet: { flags: 'undispatchable' },
      },
    );
    await models.IpnOutbox.deleteOne({ _id: messageId });
    alerts.inc({ kind: 'ipn_undispatchable' });
    logger.warn({ alert: 'ipn_undispatchable', messageId, detail: reason }, 'alert: ipn_undispatchable');
    return new UndispatchableError(messageId, reason);
  }

  /** Dispatches messages still in the outbox after the grace period, oldest first. */
  async drainOnce(): Promise<number> {
    const { models, config, logger } = this.deps;
    // ObjectIds start with their creation second: entries made before the cutoff's second are due.
    const cutoff = Types.ObjectId.createFromTime(Math.floor((Date.now() - config.OUTBOX_RELAY_GRACE_MS) / 1000));
    const due = await models.IpnOutbox.find({ _id: { $lt: cutoff } })
      .sort({ _id: 1 })
      .limit(RELAY_BATCH)
      .lean();
    let started = 0;
    for (const { _id } of due) {
      const fields = { integrationId: 1, txnId: 1, txnType: 1, paymentStatus: 1, state: 1, route: 1, workflowId: 1 };
      const m = await models.IpnMessage.findById(_id, fields).lean();
      if (!m) {
        // Its message insert may still be in flight; past ORPHAN_ENTRY_MS it failed for good.
        if (Date.now() - _id.getTimestamp().getTime() < ORPHAN_ENTRY_MS) continue;
        await models.IpnOutbox.deleteOne({ _id });
        logger.warn({ messageId: String(_id) }, 'dropped an outbox entry whose message was never stored');
        continue;
      }
      if (m.state !== 'received') {
        await models.IpnOutbox.deleteOne({ _id }); // dispatched already; the entry outlived it
        continue;
      }
      try {
        const stored = RouteSchema.safeParse(m.route);
        // Intake's decision, stored with the message; one stored by an older version is read again.
        const to = stored.success
          ? { paymentTxnId: paymentTxnOf(stored.data), workflowId: m.workflowId ?? null }
          : await olderRouting(models, m);
        await this.dispatch({
          _id: String(m._id),
          integrationId: m.integrationId,
          txnId: m.txnId ?? null,
          txnType: m.txnType ?? null,
          paymentStatus: m.paymentStatus ?? null,
          ...to,
        });
        started++;
      } catch (err) {
        if (err instanceof UndispatchableError) continue; // set aside and alerted: on to the next
        logger.warn(
          { err: (err as Error).message, messageId: String(m._id) },
          'relay could not start workflow; will retry',
        );
        break; // Temporal is probably down: try again next tick, in order
      }
    }
    return started;
  }

  start(): void {
    this.stopped = false;
    const tick = async () => {
      this.draining = this.drainOnce().catch((err) => {
        this.deps.logger.warn({ err: (err as Error).message }, 'relay sweep failed');
        return 0;
      });
      await this.draining;
      // A stop that came while this sweep ran makes it the last: re-armed, the relay would outlive its
      // process's shutdown (and its database handle), sweeping every interval.
      if (!this.stopped) this.timer = setTimeout(tick, this.deps.config.OUTBOX_RELAY_INTERVAL_MS);
    };
    this.timer = setTimeout(tick, this.deps.config.OUTBOX_RELAY_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.draining;
  }
}

/**
 * A message stored before intake stored its route (an older version) goes where that version named
 * it: its payment only for a payment (adjustments went to processIpn then, which still takes them),
 * decided again from the same bytes. One stored before intake named any workflow is named now.
 */
async function olderRouting(
  models: Models,
  m: { _id: Types.ObjectId; workflowId?: string | null },
): Promise<{ paymentTxnId: string | null; workflowId: string | null }> {
  const doc = await models.IpnMessage.findById(m._id, { raw: 1 }).lean();
  const route = doc ? await readIpnHead(Buffer.from(doc.raw.buffer)).then((h) => classify(h.summary), noRoute) : null;
  if (!m.workflowId) return { paymentTxnId: paymentTxnOf(route), workflowId: null };
  return { paymentTxnId: route?.kind === 'payment' ? paymentTxnOf(route) : null, workflowId: m.workflowId };
}

/** Bytes that do not decode have no route: processIpn records them malformed. */
const noRoute = (): Route | null => null;

/** One line for the Web UI's list; body values only as ids (see limits.ts), never raw. */
function summaryOf(msg: Pick<StoredMessage, 'txnId' | 'txnType' | 'paymentStatus'>): string {
  const part = (v: string | null) => (v ? idPartOrHash(v) : '');
  const type = msg.txnType ? part(msg.txnType) : 'unknown type';
  const line = `IPN ${type} ${part(msg.paymentStatus)} ${msg.txnId ? `txn ${part(msg.txnId)}` : ''}`;
  return line.replace(/\s+/g, ' ').trim().slice(0, SUMMARY_MAX_CHARS);
}
