import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { MESSAGE_NOT_FOUND } from './messages';
import { checkPayment } from '../src/payments/checks';
import type { Proof } from '../src/shared/rules-kit';
import { LifecycleEventSchema, type LifecycleEvent } from '../src/payments/state';
import {
  PROFILE_MONEY_TXN_TYPES,
  ProfileEventSchema,
  ProfileStateSchema,
  toProfileEvent,
  type ProfileEvent,
  type ProfileState,
} from '../src/profiles/state';
import { keepUsedFields, needsPerson, NVP_NOT_SENT, type NvpCall, type NvpOutcome } from '../src/profiles/rules';
import { decodeIpn } from '../src/messages/decode';
import { readIpn } from '../src/messages/read';
import { toIntegration } from '../src/integrations/store';
import { canonicalJson } from '../src/shared/canonical-json';
import { profileStartOptions } from '../src/profiles/start';
import { profileDocId, profileTxnDocId } from '../src/shared/ids';
import { callNvp, nvpCredentialNames, nvpCredentialsFromEnv, nvpUrl } from '../src/shared/paypal/nvp-client';
import {
  profileAdjustmentSignal,
  profileIpnSignal,
  RECURRING_PROFILE,
  type RecurringProfileWorkflow,
} from '../src/profiles/contract';

export function createProfileActivities({ db, client, config, logger }: ActivityDeps) {
  const { RecurringProfile, ProfileTxn, IpnMessage, Integration } = db.models;

  const start = (integrationId: string, profileId: string) => profileStartOptions(config, integrationId, profileId);

  return {
    async loadProfileState({
      integrationId,
      profileId,
    }: {
      integrationId: string;
      profileId: string;
    }): Promise<ProfileState | null> {
      const doc = await RecurringProfile.findById(profileDocId(integrationId, profileId), { snapshot: 1 }).lean();
      return doc?.snapshot ? ProfileStateSchema.parse(doc.snapshot) : null;
    },

    async saveProfileState(state: ProfileState): Promise<void> {
      await RecurringProfile.updateOne(
        { _id: profileDocId(state.integrationId, state.profileId) },
        {
          $set: {
            integrationId: state.integrationId,
            profileId: state.profileId,
            status: state.status,
            customerId: state.customerId,
            needsOperator: needsPerson(state),
            attention: [...state.attention, ...state.payments.filter((p) => p.held).map((p) => `${p.txnId}:${p.held}`)],
            holds: state.payments
              .filter((p) => p.holdCause !== null)
              .map((p) => ({ txnId: p.txnId, reason: p.held, cause: p.holdCause })),
            snapshot: state,
          },
        },
        { upsert: true },
      );
    },

    /**
     * Builds the profile event from the stored bytes (verified by processIpn), stores it with the
     * message (what the profile may apply) and delivers it, starting the profile's workflow if needed.
     */
    async routeToProfile({
      messageId,
      profileId,
      flags,
    }: {
      messageId: string;
      profileId: string;
      flags: string[];
    }): Promise<string> {
      const msg = await IpnMessage.findById(messageId).lean();
      if (!msg) throw ApplicationFailure.nonRetryable(`IPN message ${messageId} not found`, MESSAGE_NOT_FOUND);
      const integrationDoc = await Integration.findById(msg.integrationId).lean();
      if (!integrationDoc)
        throw ApplicationFailure.nonRetryable(`integration ${msg.integrationId} is gone`, 'IntegrationNotFound');
      const integration = toIntegration(integrationDoc);
      const raw = Buffer.from(msg.raw.buffer);
      const { summary } = readIpn(raw);
      const money = PROFILE_MONEY_TXN_TYPES.includes(summary.txnType ?? '') && summary.txnId !== null;
      // An outstanding payment is a recurring payment for the integration's type filter.
      const checked = money
        ? { ...summary, txnType: summary.txnType === 'subscr_payment' ? 'subscr_payment' : 'recurring_payment' }
        : summary;
      const checks = checkPayment(checked, integration, money ? 'payment' : 'dispute');
      const allFlags = [...new Set([...flags.filter((f) => f === 'unverified'), ...checks.flags])];
      const event = toProfileEvent(decodeIpn(raw).fields, {
        messageId,
        integrationId: integration.id,
        profileId,
        receivedAt: msg.receivedAt.toISOString(),
        flags: allFlags,
        feePolicy: integration.feePolicy,
      });
      await IpnMessage.updateOne(
        { _id: messageId },
        {
          $set: { state: 'routed', outcome: `profile ${profileId}`, routedEvent: event },
          $addToSet: { flags: { $each: allFlags } },
        },
      );
      const opts = start(integration.id, profileId);
      await client.workflow.signalWithStart<RecurringProfileWorkflow, [ProfileEvent]>(RECURRING_PROFILE, {
        ...opts,
        signal: profileIpnSignal,
        signalArgs: [event],
      });
      return opts.workflowId;
    },

    /** The profile that owns a cycle payment (its refunds go there), by _id. */
    async profileOwningTxn({ integrationId, txnId }: { integrationId: string; txnId: string }): Promise<string | null> {
      return (await ProfileTxn.findById(profileTxnDocId(integrationId, txnId)).lean())?.profileId ?? null;
    },

    async claimProfileTxn({
      integrationId,
      txnId,
      profileId,
    }: {
      integrationId: string;
      txnId: string;
      profileId: string;
    }): Promise<void> {
      await ProfileTxn.updateOne(
        { _id: profileTxnDocId(integrationId, txnId) },
        { $set: { profileId } },
        { upsert: true },
      );
    },

    async routeAdjustmentToProfile({
      event,
      profileId,
    }: {
      event: LifecycleEvent;
      profileId: string;
    }): Promise<string> {
      const opts = start(event.integrationId, profileId);
      await client.workflow.signalWithStart<RecurringProfileWorkflow, [LifecycleEvent]>(RECURRING_PROFILE, {
        ...opts,
        signal: profileAdjustmentSignal,
        signalArgs: [event],
      });
      return opts.workflowId;
    },

    /** Whether the stored, verified message says exactly this (a hand-typed signal proves nothing). */
    async proveProfileEvent(event: ProfileEvent | LifecycleEvent): Promise<Proof> {
      const msg = await IpnMessage.findById(event.messageId, { integrationId: 1, routedEvent: 1 })
        .lean<{ integrationId: string; routedEvent?: unknown }>()
        .catch(() => null);
      if (!msg) return { ok: false, reason: `no stored message ${String(event.messageId).slice(0, 40)}` };
      if (msg.integrationId !== event.integrationId)
        return { ok: false, reason: 'the message belongs to another integration' };
      const schema = 'profileId' in event ? ProfileEventSchema : LifecycleEventSchema;
      const stored = schema.safeParse(msg.routedEvent);
      if (!stored.success || canonicalJson(stored.data) !== canonicalJson(event)) {
        return { ok: false, reason: 'the event differs from what its verified message says' };
      }
      return { ok: true };
    },

    /**
     * One PayPal NVP call with the integration's credentials, read here from the environment so
     * they never enter a workflow's history. PayPal's refusals are answers; transport failures throw
     * (typed NVP_NOT_SENT when the call certainly never left). The answer keeps only the fields the
     * rules read: PayPal's profile details carry the subscriber's name and address.
     */
    async callPayPalNvp({ integrationId, call }: { integrationId: string; call: NvpCall }): Promise<NvpOutcome> {
      const integration = await Integration.findById(integrationId, { mode: 1, nvpCredentialsEnv: 1 })
        .lean()
        .catch((err: unknown) => {
          throw notSent(err);
        });
      if (!integration) return { ack: 'Unreachable', message: `integration ${integrationId} is gone` };
      const prefix = integration.nvpCredentialsEnv;
      if (!prefix) {
        const message = `integration ${integrationId} names no NVP credentials: set its nvpCredentialsEnv`;
        return { ack: 'Unreachable', message };
      }
      const creds = nvpCredentialsFromEnv(prefix, process.env);
      if (!creds) {
        const message = `no NVP credentials in the environment (${nvpCredentialNames(prefix).join(', ')})`;
        return { ack: 'Unreachable', message };
      }
      const url = nvpUrl(integration.mode, config.PAYPAL_SANDBOX_NVP_URL);
      const answer = keepUsedFields(
        await callNvp(url, creds, call).catch((err: unknown) => {
          throw neverLeft(err) ? notSent(err) : err;
        }),
      );
      logger.info(
        { integrationId, method: call.method, profileId: call.params.PROFILEID, ack: answer.ack },
        'PayPal NVP call',
      );
      return answer;
    },
  };
}

/** Connection refused or no such host: the request never reached PayPal. */
function neverLeft(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

function notSent(err: unknown): ApplicationFailure {
  return ApplicationFailure.retryable(err instanceof Error ? err.message : String(err), NVP_NOT_SENT);
}
