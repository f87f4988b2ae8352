import type { ActivityDeps } from './deps';
import { PaymentStateSchema, type PaymentState } from '../src/payments/state';
import { needsPerson } from '../src/payments/rules';
import { matchPayer, type PayerToMatch } from '../src/customers/match';
import { paymentDocId } from '../src/shared/ids';
import { recordOutcome, type OutcomeWrite } from '../src/messages/outcomes';

export function createPaymentActivities({ db }: ActivityDeps) {
  const { Payment, AuditEvent, Customer, IpnMessage } = db.models;
  return {
    async loadPaymentState({
      integrationId,
      txnId,
    }: {
      integrationId: string;
      txnId: string;
    }): Promise<PaymentState | null> {
      type Saved = { snapshot?: { payment?: { sandbox?: unknown } } };
      const doc = await Payment.findById(paymentDocId(integrationId, txnId), { snapshot: 1 }).lean<Saved>();
      if (!doc?.snapshot) return null;
      const state = PaymentStateSchema.parse(doc.snapshot);
      // Saved before events carried their money mode. The schema's default (live) keeps money
      // already posted where it went; money not yet posted follows its message, like any other.
      if (state.payment && doc.snapshot.payment?.sandbox === undefined && state.creditedMinor === 0) {
        const msg = await IpnMessage.findById(state.payment.messageId, { testIpn: 1 }).lean();
        state.payment.sandbox = msg?.testIpn === true;
      }
      return state;
    },

    /**
     * The whole state for resuming, plus flat fields for the admin API's queries; then, when given,
     * the outcome of the message that led to it (state first: whoever reads the message finds both agree).
     */
    async savePaymentState(state: PaymentState, outcome?: OutcomeWrite): Promise<void> {
      await Payment.updateOne(
        { _id: paymentDocId(state.integrationId, state.txnId) },
        {
          $set: {
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
          },
        },
        { upsert: true },
      );
      if (outcome) await recordOutcome(db.models, outcome);
    },

    async matchCustomer(payer: PayerToMatch & { integrationId: string }): Promise<string | null> {
      return matchPayer(db.models, payer.integrationId, payer);
    },

    async customerExists(customerId: string): Promise<boolean> {
      return (await Customer.exists({ _id: customerId })) !== null;
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
