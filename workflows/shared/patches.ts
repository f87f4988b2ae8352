/**
 * Every patch costs each new execution a marker and an upsert of TemporalChangeVersion (two history
 * events and a visibility write, by the SDK's core): changes released together share one patch id.
 */

/**
 * Fewer steps per message (December 2026): the first postback is tried by loadMessage itself; a
 * payment's state and its message's outcome are written in one step; search attributes are
 * upserted once per wait, not at every step. It implies `verify-messages-beside-the-queue`, which
 * new executions then never ask for (histories from before it still replay through it).
 */
export const FEWER_STEPS = 'fewer-steps-per-message';
