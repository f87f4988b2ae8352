import crypto from 'node:crypto';
import type { Models } from '../shared/db/models';
import { isDuplicateKey } from '../shared/db/duplicate-keys';
import {
  OPERATOR_AUDIT,
  OperatorIdSchema,
  operatorIdOf,
  type AdminIdentity,
  type CreateOperator,
  type OperatorRole,
  type OperatorView,
} from './contract';
import { open, seal } from './secret-box';
import { currentStep, newTotpSecret, totpUri, verifiedStep } from './totp';

/** An API key: `ipk.<operator id>.<43 base64url characters>`; the id lets us find the record by _id. */
const KEY_PREFIX = 'ipk';

export class OperatorExistsError extends Error {}

/** What creating an operator (or rotating its key / resetting its code) shows once, and only then. */
export interface OperatorCredentials {
  id: string;
  name: string;
  role: OperatorRole;
  apiKey?: string;
  totpUri?: string;
}

/** Why a code was not accepted: the audit's and the answer's words. */
export type OtpRefusal = 'missing' | 'malformed' | 'wrong_or_expired' | 'replayed' | 'locked' | 'unknown_operator';

export type OtpOutcome = { ok: true; step: number } | { ok: false; why: OtpRefusal; lockedUntil?: Date };

export interface OperatorStoreOptions {
  secretsKey: Buffer;
  maxFailures: number;
  lockSeconds: number;
  /** TOTP step, seconds: 30 (what authenticator apps use) except in tests (OPERATOR_TOTP_PERIOD_SECONDS). */
  period?: number;
}

const hashSecret = (secret: string) => crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
const newKey = (id: string, given?: string) => {
  const secret = given ?? crypto.randomBytes(32).toString('base64url');
  return { apiKey: `${KEY_PREFIX}.${id}.${secret}`, apiKeyHash: hashSecret(secret) };
};

type OperatorDoc = {
  _id: string;
  name: string;
  role: string;
  status: string;
  createdBy: string;
  createdAt: Date;
  lockedUntil?: Date | null;
  otpFailures?: number | null;
};

export function operatorView(d: OperatorDoc, now = new Date()): OperatorView {
  const locked = d.lockedUntil && d.lockedUntil > now ? d.lockedUntil : null;
  return {
    id: d._id,
    name: d.name,
    role: d.role as OperatorRole,
    status: d.status as OperatorView['status'],
    createdBy: d.createdBy,
    createdAt: d.createdAt.toISOString(),
    lockedUntil: locked ? locked.toISOString() : null,
    otpFailures: d.otpFailures ?? 0,
  };
}

/**
 * Operators' records: creation, keys, second factor. Every change is audited under the identity
 * that made it; a secret is returned once and never stored or logged in clear.
 */
export class OperatorStore {
  constructor(
    private readonly models: Models,
    private readonly opts: OperatorStoreOptions,
  ) {}

  /** `keySecret`: the dev stack's own choice of a key's random part (npm start needs one before the API runs). */
  async create(input: CreateOperator, by: string, keySecret?: string): Promise<OperatorCredentials> {
    const id = operatorIdOf(input.name);
    OperatorIdSchema.parse(id);
    const secret = newTotpSecret();
    const { apiKey, apiKeyHash } = newKey(id, keySecret);
    try {
      await this.models.Operator.create({
        _id: id,
        name: input.name,
        role: input.role,
        status: 'active',
        createdBy: by,
        createdAt: new Date(),
        apiKeyHash,
        totpSealed: seal(this.opts.secretsKey, secret, id),
      });
    } catch (err) {
      if (isDuplicateKey(err)) throw new OperatorExistsError(`an operator ${id} exists already`);
      throw err;
    }
    await this.audit(by, OPERATOR_AUDIT.created, id, { role: input.role, name: input.name });
    return { id, name: input.name, role: input.role, apiKey, totpUri: totpUri(secret, id, this.opts.period) };
  }

  async list(after?: string, limit = 200): Promise<OperatorDoc[]> {
    return this.models.Operator.find(after ? { _id: { $gt: after } } : {}, { apiKeyHash: 0, totpSealed: 0 })
      .sort({ _id: 1 })
      .limit(limit)
      .lean();
  }

  async get(id: string): Promise<OperatorDoc | null> {
    return this.models.Operator.findById(id, { apiKeyHash: 0, totpSealed: 0 }).lean();
  }

  async disable(id: string, by: string): Promise<OperatorDoc | null> {
    // No projection: FerretDB's findAndModify has none (the view below shows no secret anyway).
    const doc = await this.models.Operator.findOneAndUpdate(
      { _id: id },
      { $set: { status: 'disabled' } },
      { new: true },
    ).lean();
    if (doc) await this.audit(by, OPERATOR_AUDIT.disabled, id, {});
    return doc;
  }

  async rotateKey(id: string, by: string): Promise<OperatorCredentials | null> {
    const { apiKey, apiKeyHash } = newKey(id);
    const doc = await this.models.Operator.findOneAndUpdate(
      { _id: id },
      { $set: { apiKeyHash } },
      { new: true },
    ).lean();
    if (!doc) return null;
    await this.audit(by, OPERATOR_AUDIT.keyRotated, id, {});
    return { id, name: doc.name, role: doc.role as OperatorRole, apiKey };
  }

  /** A new secret; the replay guard and lockout start afresh (a lost phone is not a reason to wait). */
  async resetTotp(id: string, by: string): Promise<OperatorCredentials | null> {
    const secret = newTotpSecret();
    const doc = await this.models.Operator.findOneAndUpdate(
      { _id: id },
      {
        $set: {
          totpSealed: seal(this.opts.secretsKey, secret, id),
          lastOtpStep: currentStep(Date.now(), this.opts.period) + 1,
          otpFailures: 0,
          lockedUntil: null,
        },
      },
      { new: true },
    ).lean();
    if (!doc) return null;
    await this.audit(by, OPERATOR_AUDIT.totpReset, id, {});
    return { id, name: doc.name, role: doc.role as OperatorRole, totpUri: totpUri(secret, id, this.opts.period) };
  }

  /** The operator an API key belongs to, if the key is current and the operator active. */
  async authenticate(apiKey: string): Promise<AdminIdentity | null> {
    const [prefix, id, secret, ...rest] = apiKey.split('.');
    if (prefix !== KEY_PREFIX || !id || !secret || rest.length > 0 || !OperatorIdSchema.safeParse(id).success)
      return null;
    const doc = await this.models.Operator.findById(id, { name: 1, role: 1, status: 1, apiKeyHash: 1 }).lean();
    if (!doc) return null;
    const given = Buffer.from(hashSecret(secret), 'hex');
    const stored = Buffer.from(doc.apiKeyHash, 'hex');
    if (given.length !== stored.length || !crypto.timingSafeEqual(given, stored)) return null;
    if (doc.status !== 'active') return null;
    return { kind: 'operator', id: doc._id, name: doc.name, role: doc.role as OperatorRole };
  }

  /**
   * Checks a second-factor code and takes it: accepted once (the step is stored by a conditional
   * update, so two requests racing with one code cannot both pass), refused while locked; each
   * failure counts, and the one that reaches the limit locks the operator's decisions (audited).
   */
  async takeCode(id: string, code: string | undefined, context: Record<string, unknown>): Promise<OtpOutcome> {
    const outcome = await this.check(id, code);
    if (!outcome.ok) await this.audit(id, OPERATOR_AUDIT.otpRefused, id, { refused: outcome.why, ...context });
    return outcome;
  }

  private async check(id: string, code: string | undefined): Promise<OtpOutcome> {
    const now = new Date();
    const doc = await this.models.Operator.findById(id, {
      totpSealed: 1,
      lastOtpStep: 1,
      lockedUntil: 1,
      status: 1,
    }).lean();
    if (!doc || doc.status !== 'active') return { ok: false, why: 'unknown_operator' };
    if (doc.lockedUntil && doc.lockedUntil > now) return { ok: false, why: 'locked', lockedUntil: doc.lockedUntil };
    if (code === undefined || code === '') return this.failed(id, 'missing');
    if (!/^\d{6}$/.test(code)) return this.failed(id, 'malformed');
    const secret = open(this.opts.secretsKey, doc.totpSealed, id);
    const last = doc.lastOtpStep ?? 0;
    const step = verifiedStep(secret, code, last, now.getTime(), this.opts.period);
    if (step === null) {
      // Valid but for a step already used: a replay, told apart for the audit only.
      const replay = last > 0 && verifiedStep(secret, code, 0, now.getTime(), this.opts.period) !== null;
      return this.failed(id, replay ? 'replayed' : 'wrong_or_expired');
    }
    const taken = await this.models.Operator.updateOne(
      {
        _id: id,
        status: 'active',
        lastOtpStep: { $lt: step },
        $or: [{ lockedUntil: null }, { lockedUntil: { $lte: now } }],
      },
      { $set: { lastOtpStep: step, otpFailures: 0 } },
    );
    return taken.modifiedCount === 1 ? { ok: true, step } : this.failed(id, 'replayed');
  }

  private async failed(id: string, why: OtpRefusal): Promise<OtpOutcome> {
    const doc = await this.models.Operator.findOneAndUpdate(
      { _id: id },
      { $inc: { otpFailures: 1 } },
      { new: true },
    ).lean();
    if (!doc || (doc.otpFailures ?? 0) < this.opts.maxFailures) return { ok: false, why };
    const lockedUntil = new Date(Date.now() + this.opts.lockSeconds * 1000);
    const locked = await this.models.Operator.updateOne(
      { _id: id, otpFailures: { $gte: this.opts.maxFailures } },
      { $set: { lockedUntil, otpFailures: 0 } },
    );
    if (locked.modifiedCount === 1)
      await this.audit(id, OPERATOR_AUDIT.locked, id, {
        failures: this.opts.maxFailures,
        lockedUntil: lockedUntil.toISOString(),
      });
    return { ok: false, why, lockedUntil };
  }

  async audit(actor: string, action: string, operatorId: string, details: Record<string, unknown>): Promise<void> {
    await this.models.AuditEvent.create({ at: new Date(), actor, action, txnId: `operator:${operatorId}`, details });
  }
}
