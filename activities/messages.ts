import { ApplicationFailure, Context } from '@temporalio/activity';
import { LRUCache } from 'lru-cache';
import mongoose from 'mongoose';
import { request } from 'undici';
import type { ActivityDeps } from './deps';
import type { IpnSummary } from '../src/messages/summary';
import type { Integration } from '../src/integrations/schema';
import { LifecycleEventSchema, type LifecycleEvent } from '../src/payments/state';
import type { Proof } from '../src/shared/rules-kit';
import { readIpnFull, readIpnHead } from '../src/messages/read';
import { RouteSchema, type Route } from '../src/messages/classify';
import { receivedMasspayEvents } from '../src/masspay/received';
import { inParallel } from '../src/masspay/items-engine';
import { createPayoutActivities } from './masspay';
import { toIntegration } from '../src/integrations/store';
import { IntegrationCache } from '../src/integrations/cache';
import { ipnEventSignal, signalPayment } from '../src/payments/contract';
import { paymentWorkflowId } from '../src/shared/ids';
import { alerts } from '../src/shared/metrics';
import { canonicalJson } from '../src/shared/canonical-json';
import type { MessageState } from '../src/messages/state';
import { recordOutcome, type OutcomeWrite } from '../src/messages/outcomes';
import { matchPayer } from '../src/customers/match';
import { storedMessage } from '../src/messages/stored';
import { gatheredInserts } from '../src/shared/db/gathered';
import { isDuplicateKey } from '../src/shared/db/duplicate-keys';

export interface LoadedMessage {
  integration: Integration | null;
  /** Without Mass Pay items, whatever the body (routeMasspayMessage reads them after verification). */
  summary: IpnSummary | null;
  /**
   * Where intake's classification sent it (stored with the message): the workflow does not classify
   * again. Null (absent in histories from before) for a message stored before routes were stored.
   */
  route?: Route | null;
  decodeError: string | null;
  duplicateOf: string | null;
  receivedAt: string;
  /** Why the asking workflow may not take this message (it was dispatched elsewhere, or is settled). */
  refusal?: string;
  /** PayPal's answer to the postback tried with the load (`postback`); null when it did not answer. */
  firstVerdict?: 'VERIFIED' | 'INVALID' | null;
  /** A proven payment's payer, matched with the load (`postback`): the customer it credits, or null. */
  payerMatch?: { custom: string | null; payerEmail: string | null; customerId: string | null };
}

/** The failure type of an activity asked for a message that is not stored (never retried). */
export const MESSAGE_NOT_FOUND = 'MessageNotFound';

/** States in which a message still waits for the workflow it was dispatched to. */
const TAKEABLE_STATES: readonly string[] = ['received', 'dispatched', 'parked'] satisfies MessageState[];

/** What routeMasspayMessage did, in counts and a few ids: bounded whatever the message. */
export interface MasspayRouting {
  items: number;
  /** Items paid to us, each sent to its payment. */
  received: number;
  /** Our batches the other items belong to (at most MAX_LISTED). */
  batchIds: string[];
  unmatched: number;
  unmatchedSample: string[];
}

const USER_AGENT = 'ipnflow-ipn-verifier/0.1 (PayPal IPN listener; +https://developer.paypal.com/api/nvp-soap/ipn/)';
const PREFIX = Buffer.from('cmd=_notify-validate&');

const MAX_LISTED = 50;
/** The postback tried with the load: as long as the local try it replaces (postbackLocalTry). */
const FIRST_POSTBACK_MS = 3_000;
/** Bytes of recently loaded bodies kept for their postback (a PayPal IPN is a few KB). */
const LOADED_BODIES_BYTES = 8 * 1024 * 1024;
const SIGNALS_AT_ONCE = 16;

export function createMessageActivities(deps: ActivityDeps) {
  const { db, client, config, logger } = deps;
  const { IpnMessage, IpnClaim, Integration: Integrations } = db.models;
  // Read once per integration every couple of seconds, not once per message (see IntegrationCache).
  const integrations = new IntegrationCache(db.models);
  const payouts = createPayoutActivities(deps);
  /**
   * The stored bytes loadMessage just read, for the postback that follows it in the same workflow task
   * (the first attempt is a local activity, so in this process): one read of the message, not two.
   * Stored bytes never change, so a cached copy is the truth; a miss (another worker, a retry much
   * later, a large Mass Pay body) reads the store. lru-cache bounds it by bytes.
   */
  const loadedBodies = new LRUCache<string, { raw: Buffer; testIpn: boolean }>({
    maxSize: LOADED_BODIES_BYTES,
    maxEntrySize: LOADED_BODIES_BYTES / 64,
    sizeCalculation: (v) => v.raw.length + 64,
  });

  /** Delivery claims, inserted gathered with those of other messages loaded at the same moment. */
  const claims = gatheredInserts('claim delivery', IpnClaim.collection, 'refused');
  /**
   * The first delivery of a (integration, txn, status) claims it; any later one is its duplicate.
   * One insert by _id, no scan of past messages. Returns the claimant when it is another message.
   * The key is unambiguous: integration ids and checked txn ids never contain ':'.
   */
  const claimDelivery = async (key: string, messageId: string): Promise<string | null> => {
    try {
      await claims.add({ _id: key as never, messageId });
      return null;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    const claim = await IpnClaim.findById(key).lean();
    // Our own claim when an earlier attempt of this activity inserted it.
    return claim && claim.messageId !== messageId ? claim.messageId : null;
  };

  const readBody = async (messageId: string) => {
    const msg = await IpnMessage.findById(messageId, { raw: 1, testIpn: 1 }).lean();
    if (!msg) throw ApplicationFailure.nonRetryable(`IPN message ${messageId} not found`, MESSAGE_NOT_FOUND);
    return { raw: Buffer.from(msg.raw.buffer), testIpn: msg.testIpn === true };
  };

  /**
   * PayPal's postback: the exact bytes we received, prefixed. Only an exact VERIFIED or INVALID
   * is an answer; anything else (5xx, HTML error pages, "Fatal Failure", timeouts) is thrown so
   * Temporal retries with backoff until the workflow's time bound.
   */
  const postback = async (
    messageId: string,
    msg: { raw: Buffer; testIpn: boolean },
    timeoutMs: number,
  ): Promise<'VERIFIED' | 'INVALID'> => {
    // test_ipn picks the host: a sandbox message is only ever verifiable by the sandbox.
    const url = msg.testIpn ? config.PAYPAL_SANDBOX_VERIFY_URL : config.paypalLiveVerifyUrl;
    let status: number;
    let body: string;
    try {
      // undici's request, not fetch: one postback per message, and fetch's web streams cost about 0.3 ms
      // of CPU more per call (measured in docs/performance.md). It follows no redirect: the verify hosts
      // are fixed, and anything but a 200 with an exact answer is retried.
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': USER_AGENT },
        body: Buffer.concat([PREFIX, msg.raw]),
        // Also given up when the attempt is (a local attempt timing out): no postback outlives its activity.
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), Context.current().cancellationSignal]),
      });
      status = res.statusCode;
      body = (await res.body.text()).trim();
    } catch (err) {
      throw ApplicationFailure.retryable(
        `postback to ${url} failed: ${(err as Error).message}`,
        'PostbackUnavailable',
        { messageId },
      );
    }
    if (status === 200 && (body === 'VERIFIED' || body === 'INVALID')) return body;
    throw ApplicationFailure.retryable(
      `postback to ${url} answered ${status}: ${JSON.stringify(body.slice(0, 120))}`,
      'PostbackUnclear',
      { messageId },
    );
  };

  /** One quick try, never thrown: null when PayPal did not answer in time (the workflow retries it durably). */
  const firstPostback = (messageId: string, msg: { raw: Buffer; testIpn: boolean }) =>
    postback(messageId, msg, FIRST_POSTBACK_MS).catch((err: unknown) => {
      if (err instanceof ApplicationFailure) return null;
      throw err;
    });

  return {
    /** PayPal's postback for a stored message (see postback): retried by Temporal until it answers. */
    async verifyWithPayPal({ messageId }: { messageId: string }): Promise<'VERIFIED' | 'INVALID'> {
      return postback(messageId, loadedBodies.get(messageId) ?? (await readBody(messageId)), 30_000);
    },

    /**
     * Decodes the stored raw bytes again: the stored bytes are the only truth (ids checked as at intake).
     * With `forWorkflow`, only the workflow the message was dispatched to may take it, and only while it
     * waits: anything else (a message id typed into the Web UI) is refused without writing a thing.
     * With `postback`, PayPal's postback is tried once too (when the integration verifies and the
     * bytes decode), and a payment's payer matched to a customer once it is proven: most postbacks
     * answer at once, and a payment is then loaded, proven and matched in one step.
     */
    async loadMessage(messageId: string, forWorkflow?: string, opts?: { postback?: boolean }): Promise<LoadedMessage> {
      // Through the driver: a message's every load skips mongoose's query machinery (see storedMessage).
      const msg = await storedMessage(db.models, messageId);
      if (!msg) throw ApplicationFailure.nonRetryable(`IPN message ${messageId} not found`, MESSAGE_NOT_FOUND);
      const refusal = !forWorkflow
        ? undefined
        : msg.workflowId !== forWorkflow
          ? `message ${messageId} was dispatched to ${msg.workflowId ?? 'no workflow'}`
          : !TAKEABLE_STATES.includes(msg.state)
            ? `message ${messageId} is settled (${msg.state})`
            : undefined;
      if (refusal) {
        const receivedAt = msg.receivedAt.toISOString();
        return {
          integration: null,
          summary: null,
          route: null,
          decodeError: null,
          duplicateOf: null,
          receivedAt,
          refusal,
        };
      }
      const integrationDoc = await integrations.get(msg.integrationId);
      let summary: IpnSummary | null = null;
      let decodeError: string | null = null;
      const raw = Buffer.from(msg.raw.buffer);
      loadedBodies.set(messageId, { raw, testIpn: msg.testIpn === true });
      try {
        summary = (await readIpnHead(raw)).summary;
      } catch (err) {
        decodeError = (err as Error).message;
      }
      const claimKey = summary?.txnId ? `${msg.integrationId}:${summary.txnId}:${summary.paymentStatus ?? ''}` : null;
      const duplicateOf = claimKey ? await claimDelivery(claimKey, messageId) : null;
      const stored = RouteSchema.safeParse(msg.route);
      const integration = integrationDoc ? toIntegration(integrationDoc) : null;
      const route = summary && stored.success ? stored.data : null;
      const tryPostback = opts?.postback === true && summary !== null && integration?.verifyTransaction === true;
      const firstVerdict = tryPostback
        ? await firstPostback(messageId, { raw, testIpn: msg.testIpn === true })
        : undefined;
      // With its postback answered (or none needed), the outcome is written in this same workflow task:
      // `dispatched` would be seen by no one. It shows a message waiting for PayPal, and a duplicate's claimant.
      if (opts?.postback !== true || firstVerdict === null || duplicateOf) {
        // First activity of its workflow, so nothing recorded an outcome yet: no need to filter on state.
        const set = { state: 'dispatched' satisfies MessageState, ...(duplicateOf ? { duplicateOf } : {}) };
        await IpnMessage.updateOne({ _id: msg._id }, { $set: set });
      }
      const proven = tryPostback ? firstVerdict === 'VERIFIED' : true;
      const payer =
        opts?.postback === true && proven && route?.kind === 'payment' && summary && integration
          ? { custom: summary.custom, payerEmail: summary.payerEmail, matchBy: integration.matchBy }
          : null;
      const customerId = payer ? await matchPayer(db.models, integration!.id, payer) : undefined;
      return {
        integration,
        summary,
        route,
        decodeError,
        duplicateOf,
        receivedAt: msg.receivedAt.toISOString(),
        ...(tryPostback ? { firstVerdict } : {}),
        ...(payer
          ? { payerMatch: { custom: payer.custom, payerEmail: payer.payerEmail, customerId: customerId! } }
          : {}),
      };
    },

    /**
     * A verified Mass Pay message's items, read here from the stored bytes (never through a workflow:
     * 5,000 items are over a megabyte): those paid to us are recorded on the message and go to their
     * payments, the rest are matched to our batches (routeMasspay), whose workflows apply them in
     * slices. Retried whole: recording and signalling again change nothing. The answer is counts.
     */
    async routeMasspayMessage({
      messageId,
      paymentIdleCloseSeconds,
    }: {
      messageId: string;
      paymentIdleCloseSeconds: number;
    }): Promise<MasspayRouting> {
      const msg = await IpnMessage.findById(messageId, { raw: 1, integrationId: 1, receivedAt: 1 }).lean();
      if (!msg) throw ApplicationFailure.nonRetryable(`IPN message ${messageId} not found`, MESSAGE_NOT_FOUND);
      const integrationDoc = await Integrations.findById(msg.integrationId).lean();
      if (!integrationDoc) throw ApplicationFailure.nonRetryable('the integration was deleted', 'IntegrationGone');
      const integration = toIntegration(integrationDoc);
      // The workflow verified these bytes after loadMessage read them alike: they decode.
      const { summary } = await readIpnFull(Buffer.from(msg.raw.buffer));
      const receivedAt = msg.receivedAt.toISOString();
      const received = receivedMasspayEvents(summary, integration, { messageId, receivedAt });
      if (received.events.length > 0) {
        // Stored before any payment hears of them: a payment applies only an event its message backs.
        await IpnMessage.updateOne({ _id: messageId }, { $set: { receivedEvents: received.events } });
        const taskQueue = Context.current().info.taskQueue;
        const settings = { ...config, PAYMENT_IDLE_CLOSE_SECONDS: paymentIdleCloseSeconds };
        await inParallel(received.events, SIGNALS_AT_ONCE, async (event) => {
          const { integrationId, paymentTxnId } = event;
          const to = {
            workflowId: paymentWorkflowId(integrationId, paymentTxnId),
            integrationId,
            paymentTxnId,
            taskQueue,
          };
          await signalPayment(client, { ...to, config: settings }, ipnEventSignal, event);
        });
      }
      const ours = new Set(received.received);
      const items = summary.masspayItems.filter((item) => !ours.has(item));
      const base = { items: summary.masspayItems.length, received: received.events.length };
      if (items.length === 0) return { ...base, batchIds: [], unmatched: 0, unmatchedSample: [] };
      const routed = await payouts.routeMasspay({
        messageId,
        integrationId: integration.id,
        paymentStatus: summary.paymentStatus,
        sandbox: summary.testIpn,
        items,
      });
      return {
        ...base,
        batchIds: routed.batchIds.slice(0, MAX_LISTED),
        unmatched: routed.unmatched.length,
        unmatchedSample: routed.unmatched.slice(0, 5),
      };
    },

    async recordMessageOutcome(record: OutcomeWrite): Promise<void> {
      await recordOutcome(db.models, record);
    },

    /**
     * Whether a stored message backs this event: the one processIpn recorded after verifying the
     * message, field for field. Anything else (a hand-typed signal) moves no money.
     */
    async proveEvent(event: LifecycleEvent): Promise<Proof> {
      // A malformed id (typed by hand) finds nothing; any other error is the store's, retried by Temporal:
      // a transient failure must never turn a genuine event into an unproven one.
      if (!mongoose.isValidObjectId(event.messageId)) return { ok: false, reason: 'not a stored message id' };
      const msg = await IpnMessage.findById(event.messageId, {
        integrationId: 1,
        routedEvent: 1,
        receivedEvents: 1,
      }).lean<{ integrationId: string; routedEvent?: unknown; receivedEvents?: unknown[] }>();
      if (!msg) return { ok: false, reason: `no stored message ${String(event.messageId).slice(0, 40)}` };
      if (msg.integrationId !== event.integrationId)
        return { ok: false, reason: 'the message belongs to another integration' };
      // One event per message, or (a Mass Pay IPN) one per item paid to us.
      const backed = [msg.routedEvent, ...(msg.receivedEvents ?? [])].filter((e) => e !== undefined && e !== null);
      if (backed.length === 0) return { ok: false, reason: 'the message was never verified and routed' };
      const wanted = canonicalJson(event);
      const matches = backed.some((e) => {
        const stored = LifecycleEventSchema.safeParse(e);
        return stored.success && canonicalJson(stored.data) === wanted;
      });
      return matches ? { ok: true } : { ok: false, reason: 'the event differs from what its verified message says' };
    },

    /** Delivers the event to its payment's lifecycle, starting that workflow if it is not running. */
    async routeToPayment({
      event,
      idleCloseSeconds,
    }: {
      event: LifecycleEvent;
      idleCloseSeconds: number;
    }): Promise<string> {
      return signalPayment(
        client,
        {
          workflowId: paymentWorkflowId(event.integrationId, event.paymentTxnId),
          integrationId: event.integrationId,
          paymentTxnId: event.paymentTxnId,
          taskQueue: Context.current().info.taskQueue,
          config: { ...config, PAYMENT_IDLE_CLOSE_SECONDS: idleCloseSeconds },
        },
        ipnEventSignal,
        event,
      );
    },

    /** What a person must look at: a log line at error level and a counter to alert on. */
    async raiseAlert({
      kind,
      messageId,
      detail,
    }: {
      kind: string;
      messageId: string | null;
      detail: string;
    }): Promise<void> {
      alerts.inc({ kind });
      logger.warn({ alert: kind, messageId, detail }, `alert: ${kind}`);
    },
  };
}

export type MessageActivities = ReturnType<typeof createMessageActivities>;
