import { z } from 'zod';

/**
 * A schema built the first time something parses with it. A workflow's modules are evaluated once
 * per execution (the SDK keeps module state apart per workflow), and building a zod schema costs
 * 5-50 µs per call in its chain: a payment evaluated every operator-action schema and its saved-state
 * schema, which a plain payment never parses (bench/trace-payment.ts's profile of the workflow thread).
 * Parses, errors and inferred types are the inner schema's; only object methods (`extend`, `shape`)
 * are not there, so a schema that others extend stays a plain one.
 */
export function lazySchema<T extends z.ZodType>(build: () => T): z.ZodLazy<T> {
  return z.lazy(build);
}
