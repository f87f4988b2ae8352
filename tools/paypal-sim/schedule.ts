/**
 * PayPal's IPN resend policy, as documented in its help article "How long is the IPN timeout
 * length?" (ts1063) and the IPN guide:
 * - the delay between re-posts doubles: 10 s, 20 s, 40 s, 80 s, ... capped at 24 h;
 * - at most 16 deliveries (the original + 15 retries), within approximately four days;
 * - the listener gets 20 s to answer the original post and 30 s for each retry.
 * With 15 doubling delays capped at 24 h, the 16th delivery happens ~69.5 h (2.9 days) after the
 * original, so the 16-delivery cap binds before the 4-day window does.
 */

export const MAX_DELIVERIES = 16;
export const MAX_RESENDS = MAX_DELIVERIES - 1;
export const RESEND_WINDOW_MS = 4 * 24 * 60 * 60 * 1000;

const FIRST_RESEND_DELAY_MS = 10_000;
const MAX_RESEND_DELAY_MS = 24 * 60 * 60 * 1000;

export const ORIGINAL_ATTEMPT_TIMEOUT_MS = 20_000;
export const RESEND_ATTEMPT_TIMEOUT_MS = 30_000;
/** Scaled timeouts below this would fail any real listener (the service starts a workflow before answering). */
export const MIN_SCALED_TIMEOUT_MS = 1_000;

export const DEFAULT_RESEND_SCHEDULE_MS: readonly number[] = Object.freeze(
  Array.from({ length: MAX_RESENDS }, (_, i) => Math.min(FIRST_RESEND_DELAY_MS * 2 ** i, MAX_RESEND_DELAY_MS)),
);

/** Rejects schedules PayPal would never follow, so tests cannot pass against an impossible sender. */
export function validateResendSchedule(scheduleMs: readonly number[]): number[] {
  if (scheduleMs.length > MAX_RESENDS) {
    throw new RangeError(
      `resendScheduleMs has ${scheduleMs.length} entries; PayPal makes ` +
        `at most ${MAX_DELIVERIES} deliveries (${MAX_RESENDS} resends)`,
    );
  }
  let total = 0;
  scheduleMs.forEach((ms, i) => {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`resendScheduleMs[${i}] = ${String(ms)} is not a finite, non-negative number of ms`);
    }
    total += ms;
  });
  if (total > RESEND_WINDOW_MS) {
    throw new RangeError(
      `resendScheduleMs spans ${total} ms; PayPal stops resending after 4 days (${RESEND_WINDOW_MS} ms)`,
    );
  }
  return [...scheduleMs];
}

export function validateTimeScale(timeScale: number): number {
  if (!Number.isFinite(timeScale) || timeScale <= 0) {
    throw new RangeError(`timeScale must be a finite number > 0, got ${String(timeScale)}`);
  }
  return timeScale;
}

export interface AttemptTimeouts {
  original: number;
  resend: number;
}

export function resolveAttemptTimeouts(timeScale: number, overrideMs?: number): AttemptTimeouts {
  if (overrideMs !== undefined) {
    if (!Number.isFinite(overrideMs) || overrideMs <= 0) {
      throw new RangeError(`attemptTimeoutMs must be a finite number > 0, got ${String(overrideMs)}`);
    }
    return { original: overrideMs, resend: overrideMs };
  }
  const scale = (ms: number): number => Math.max(ms * timeScale, MIN_SCALED_TIMEOUT_MS);
  return { original: scale(ORIGINAL_ATTEMPT_TIMEOUT_MS), resend: scale(RESEND_ATTEMPT_TIMEOUT_MS) };
}
