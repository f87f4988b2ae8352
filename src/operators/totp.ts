import { generateSecret, generateSync, generateURI, verifySync } from 'otplib';
import type { VerifyResult } from '@otplib/totp';

/** RFC 6238 as authenticator apps use it: SHA-1, 6 digits, 30 s steps; otplib's defaults, spelt out. */
export const TOTP_PERIOD_SECONDS = 30;
const ISSUER = 'ipnflow';

export const newTotpSecret = (): string => generateSecret({ length: 20 });

/** `otpauth://totp/ipnflow:<id>?secret=<base32>&issuer=ipnflow`, for an authenticator app's QR code. */
export const totpUri = (secret: string, operatorId: string, period = TOTP_PERIOD_SECONDS): string =>
  generateURI({ issuer: ISSUER, label: operatorId, secret, algorithm: 'sha1', digits: 6, period });

export const currentStep = (nowMs = Date.now(), period = TOTP_PERIOD_SECONDS): number =>
  Math.floor(nowMs / 1000 / period);

/**
 * The time step a code belongs to, if it is valid now (±1 step for clock drift) and for a step after
 * `afterStep` (otplib's replay guard), else null.
 */
export function verifiedStep(
  secret: string,
  code: string,
  afterStep: number,
  nowMs = Date.now(),
  period = TOTP_PERIOD_SECONDS,
): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const result = verifySync({
    strategy: 'totp',
    secret,
    token: code,
    epoch: Math.floor(nowMs / 1000),
    period,
    epochTolerance: period,
    ...(afterStep > 0 ? { afterTimeStep: afterStep } : {}),
  }) as VerifyResult;
  return result.valid ? result.timeStep : null;
}

/** The code of one time step (the dev CLI and tests; never the API). */
export const codeAtStep = (secret: string, step: number, period = TOTP_PERIOD_SECONDS): string =>
  generateSync({ secret, epoch: step * period, period });
