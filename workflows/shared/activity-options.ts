import type { ActivityOptions, LocalActivityOptions, RetryPolicy } from '@temporalio/workflow';

/**
 * How the workflows call their activities, named once: each preset says what kind of work it is for
 * and why it retries as it does. Deterministic and Node-free (bundled into workflows). Retry options
 * are not part of a history's determinism; the values are the ones each workflow had before.
 */

/** Retried without limit: a database that is down delays the work, it never fails it. */
export const untilDone: Readonly<RetryPolicy> = { initialInterval: '200ms', maximumInterval: '30s' };

/**
 * One attempt: a PayPal call that moves money with no documented idempotency (MassPay,
 * BillOutstandingAmount). A lost answer is reconciled from evidence, never sent again blindly.
 */
export const oneAttempt: Readonly<RetryPolicy> = { maximumAttempts: 1 };

/**
 * Short database bookkeeping (load and save a state, match a customer, post to the ledger, record
 * an outcome): local activities, run inside the workflow task without a server round trip each
 * (measured: see docs/performance.md). Ledger postings are idempotent by key, so retrying is safe.
 */
export const quickLocal: Readonly<LocalActivityOptions> = { startToCloseTimeout: '20s', retry: untilDone };

/**
 * Bookkeeping on a stored message (loading one up to the size limit, routing it, which may start
 * its entity's workflow): local too, with a little more time than quickLocal.
 */
export const messageLocal: Readonly<LocalActivityOptions> = { startToCloseTimeout: '30s', retry: untilDone };

/** Reading an operator's proof (a second factor): a few quick tries, then the decision is refused. */
export const proofLocal: Readonly<LocalActivityOptions> = {
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumAttempts: 3 },
};

/** The first PayPal postback, tried once inside the workflow task: most answer at once. */
export const postbackLocalTry: Readonly<LocalActivityOptions> = { startToCloseTimeout: '3s', retry: oneAttempt };

/** The PayPal postback once the quick try failed: backing off, until the message's give-up time. */
export function postbackUntil(giveUpSeconds: number): ActivityOptions {
  return {
    startToCloseTimeout: '45s',
    scheduleToCloseTimeout: `${giveUpSeconds}s`,
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '10m' },
  };
}

/**
 * A PayPal NVP call that moves no money (a details read, a status change PayPal already made is
 * refused without effect): a few tries.
 */
export const paypalCall: Readonly<ActivityOptions> = {
  startToCloseTimeout: '45s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
};

/** A PayPal NVP call that moves money with no documented idempotency: one attempt (see oneAttempt). */
export const oncePayPal: Readonly<ActivityOptions> = { startToCloseTimeout: '45s', retry: oneAttempt };

/**
 * A checkout call to PayPal (create, capture, read an order or an Express Checkout token): safe to
 * repeat (capture carries PayPal-Request-Id, DoExpressCheckoutPayment MSGSUBID), so a few quick
 * tries inside the workflow task; past them the top-up asks again at its next poll.
 */
export const checkoutLocal: Readonly<LocalActivityOptions> = {
  startToCloseTimeout: '40s',
  retry: { initialInterval: '200ms', maximumInterval: '5s', maximumAttempts: 5 },
};

/** Decoding, matching and routing a Mass Pay message's items (a second or two, up to 5,000 items). */
export const masspayRouting: Readonly<ActivityOptions> = {
  startToCloseTimeout: '5m',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
};

/** A sweep step over the store (thousands of documents): a dead worker's step is retried elsewhere. */
export const storeSweep: Readonly<ActivityOptions> = {
  startToCloseTimeout: '10m',
  retry: { initialInterval: '5s', maximumInterval: '5m' },
};
