import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import type { Models } from '../src/shared/db/models';
import { PaymentStateSchema, type PaymentState } from '../src/payments/state';
import { needsPerson } from '../src/payments/rules';
import { matchPayer, type PayerToMatch } from '../src/customers/match';
import { customerExists } from '../src/customers/known';
import { paymentDocId } from '../src/shared/ids';
import { isDuplicateKey } from '../src/shared/db/duplicate-keys';
import { gatheredInserts } from '../src/shared/db/gathered';
import { perHandle } from '../src/shared/db/per-handle';
import { recordOutcome, type OutcomeWrite } from '../src/messages/outcomes';
import { MESSAGE_NOT_FOUND, type LoadedMessage, type MessageActivities } from './messages';
import type { LedgerActivities } from './ledger';
import type { Posting, PostingResult } from '../src/shared/ledger';
import { planFirstTake, type FirstTake } from '../src/payments/first-take';

/** The steps of other features a payment's merged steps take (see loadPaymentWithMessage, postAndSavePayment). */
type Steps = Pick<MessageActivities, 'loadMessage'> & Pick<LedgerActivities, 'postToLedger'>;

/** A payment's document: the whole state for resuming, plus flat fields for the admin API's queries. */
export function paymentFields(state: PaymentState) {
  return {
    integrationId: state.integrationId,
    txnId: state.txnId,
    state: state.phase,
    paymentStatus: state.paymentStatus,
    customerId: state.customerId,
    currency: state.currency,
    grossMinor: state.payment?.grossMinor ?? null,
    creditedMinor: state.creditedMinor,
    debitedMinor: state.debitedMinor,
    holdReason: state.hold?.reason ?? null,
    holdCause: state.hold?.cause ?? null,
    needsOperator: needsPerson(state),
    attention: state.attention,
    flags: [...new Set([...(state.payment?.flags ?? []), ...state.attention])],
    payerEmail: state.payment?.payerEmail ?? null,
    snapshot: state,
  };
}

/**
 * Per database handle: new payments' inserts, gathered (a burst of payments: one command for many).
 * Undefined fields stay out, as with the update (and as in the workflow's JSON).
 */
const freshPaymentsOf = perHandle((models) =>
  gatheredInserts<object>('payment', models.Payment.collection, 'refused', { ignoreUndefined: true }),
);

/**
 * A payment's document, through the driver as it is loaded: every field is set here, with the types
 * the schema gives them, so mongoose's casting and defaults would change nothing (a test validates
 * the document against the schema); its timestamps are set here. Undefined fields stay out, as in the
 * workflow's JSON. `fresh`: the step that decided this state found no document, so it is inserted:
 * about 0.5 ms of client, FerretDB and PostgreSQL CPU less than an upsert, which looks for it first.
 * One there after all (that step retried after saving) is updated as usual.
 */
export async function writePaymentState(models: Models, state: PaymentState, fresh = false): Promise<void> {
  const now = new Date();
  const _id = paymentDocId(state.integrationId, state.txnId) as never;
  const { Payment } = models;
  if (fresh) {
    try {
      await freshPaymentsOf(models).add({ _id, createdAt: now, updatedAt: now, ...paymentFields(state) });
      return;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }
  await Payment.collection.updateOne(
    { _id },
    { $setOnInsert: { createdAt: now }, $set: { updatedAt: now, ...paymentFields(state) } },
    { upsert: true, ignoreUndefined: true },
  );
}

export function createPaymentActivities({ db }: ActivityDeps, steps: Steps) {
  const { Payment, AuditEvent, IpnMessage } = db.models;
  const loadPaymentState = async ({
    integrationId,
    txnId,
  }: {
    integrationId: string;
    txnId: string;
  }): Promise<PaymentState | null> => {
    type Saved = { snapshot?: { payment?: { sandbox?: unknown } } };
    // Through the driver, as the message is loaded (see storedMessage): a payment's every first step reads it.
    const doc = await Payment.collection.findOne<Saved>(
      { _id: paymentDocId(integrationId, txnId) as never },
      { projection: { snapshot: 1 } },
    );
    if (!doc?.snapshot) return null;
    const state = PaymentStateSchema.parse(doc.snapshot);
    // Saved before events carried their money mode. The schema's default (live) keeps money
    // already posted where it went; money not yet posted follows its message, like any other.
    if (state.payment && doc.snapshot.payment?.sandbox === undefined && state.creditedMinor === 0) {
      const msg = await IpnMessage.findById(state.payment.messageId, { testIpn: 1 }).lean();
      state.payment.sandbox = msg?.testIpn === true;
    }
    return state;
  };
  /**
   * The whole state for resuming, plus flat fields for the admin API's queries; then, when given,
   * the outcome of the message that led to it (state first: whoever reads the message finds both agree).
   */
  const saveState = async (state: PaymentState, outcome?: OutcomeWrite, fresh = false): Promise<void> => {
    await writePaymentState(db.models, state, fresh);
    if (outcome) await recordOutcome(db.models, outcome);
  };
  /**
   * A payment started by its first message: its state and that message (loadMessage, postback
   * included) side by side, in one local activity instead of two. A message that is not stored
   * comes back as null (the workflow records it refused, as it does a refused load), so the
   * state is never lost with it.
   */
  const loadPaymentWithMessage = async (req: {
    integrationId: string;
    txnId: string;
    messageId: string;
    forWorkflow: string;
  }): Promise<{ state: PaymentState | null; message: LoadedMessage | null }> => {
    const message = steps.loadMessage(req.messageId, req.forWorkflow, { postback: true }).catch((err: unknown) => {
      if (err instanceof ApplicationFailure && err.type === MESSAGE_NOT_FOUND) return null;
      throw err;
    });
    const [state, loaded] = await Promise.all([loadPaymentState(req), message]);
    return { state, message: loaded };
  };
  return {
    loadPaymentState,

    loadPaymentWithMessage,

    /**
     * A payment started by its first message, in one local activity where it used to take two: its
     * state and that message loaded (loadPaymentWithMessage), and, when the rules decide the message at
     * once (planFirstTake), its posting made and the state and outcome that follow saved
     * (postAndSavePayment). The state comes back as it was loaded, for the workflow to decide from.
     * A refused posting saves nothing here: the workflow posts again and decides what follows.
     */
    async takeFirstMessage(req: {
      integrationId: string;
      txnId: string;
      messageId: string;
      forWorkflow: string;
      orphanGraceSeconds: number;
    }): Promise<{ state: PaymentState | null; message: LoadedMessage | null; taken?: FirstTake }> {
      const loaded = await loadPaymentWithMessage(req);
      if (!loaded.message) return loaded;
      const decidedAt = new Date().toISOString();
      const plan = planFirstTake({
        messageId: req.messageId,
        msg: loaded.message,
        saved: loaded.state,
        integrationId: req.integrationId,
        paymentTxnId: req.txnId,
        orphanGraceSeconds: req.orphanGraceSeconds,
        decidedAt,
      });
      if (!plan) return loaded;
      try {
        await steps.postToLedger(plan.posting);
      } catch (err) {
        if (err instanceof ApplicationFailure && err.nonRetryable) return loaded;
        throw err;
      }
      await saveState(plan.state, plan.outcome, loaded.state === null);
      const { idempotencyKey } = plan.posting;
      return {
        ...loaded,
        taken: { messageId: req.messageId, decidedAt, idempotencyKey, state: plan.state, outcome: plan.outcome },
      };
    },

    async savePaymentState(state: PaymentState, outcome?: OutcomeWrite): Promise<void> {
      await saveState(state, outcome);
    },

    /**
     * A payment's posting and then the state (and its message's outcome) the rules decide once it
     * is made: one local activity instead of two. The workflow decided them beforehand from the
     * same pure rules, so they are what its next step would save. A refused posting saves nothing:
     * it fails like postToLedger, and the workflow decides again and saves what follows.
     */
    async postAndSavePayment(req: {
      posting: Posting;
      state: PaymentState;
      outcome: OutcomeWrite;
    }): Promise<PostingResult> {
      const posted = await steps.postToLedger(req.posting);
      await saveState(req.state, req.outcome);
      return posted;
    },

    async matchCustomer(payer: PayerToMatch & { integrationId: string }): Promise<string | null> {
      return matchPayer(db.models, payer.integrationId, payer);
    },

    async customerExists(customerId: string): Promise<boolean> {
      return customerExists(db.models, customerId);
    },

    async audit(event: {
      actor: string;
      action: string;
      reason?: string;
      integrationId?: string;
      txnId?: string;
      customerId?: string;
      details?: unknown;
    }): Promise<void> {
      await AuditEvent.create({ at: new Date(), ...event });
    },
  };
}
