import { Schema, type Connection } from 'mongoose';

/**
 * One person who may use the admin API. `_id` is the operator id. The API key is kept as the
 * SHA-256 of its secret part (a 32-byte random value: no salt or slow hash needed to resist
 * guessing); the TOTP secret is AES-256-GCM sealed with OPERATOR_SECRETS_KEY. `lastOtpStep` is the
 * last accepted TOTP time step: a code is accepted only for a later step, set in one conditional
 * update (FerretDB has no transactions; a single-document update is atomic).
 */
const operatorSchema = new Schema(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    role: { type: String, required: true },
    status: { type: String, required: true },
    createdBy: { type: String, required: true },
    createdAt: { type: Date, required: true },
    apiKeyHash: { type: String, required: true },
    totpSealed: { type: String, required: true },
    lastOtpStep: { type: Number, default: 0 },
    otpFailures: { type: Number, default: 0 },
    lockedUntil: { type: Date, default: null },
  },
  { versionKey: false },
);

export function bindOperatorModels(conn: Connection) {
  return { Operator: conn.model('Operator', operatorSchema, 'operators') };
}
