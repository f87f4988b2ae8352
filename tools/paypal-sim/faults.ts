import { z } from 'zod';
import type { Fault } from './types';

/** Longest delay fault accepted: longer only ties up test runs; a listener's timeout is far shorter. */
const MAX_FAULT_DELAY_MS = 10 * 60 * 1000;

export const faultSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('delay'), ms: z.number().int().min(0).max(MAX_FAULT_DELAY_MS) }),
    z.strictObject({
      kind: z.literal('status'),
      status: z.literal([500, 502, 503], { error: 'status must be 500, 502 or 503' }),
    }),
    z.strictObject({ kind: z.literal('html') }),
    z.strictObject({ kind: z.literal('fatal') }),
    z.strictObject({ kind: z.literal('drop') }),
  ],
  { error: 'fault kind must be one of delay, status, html, fatal, drop' },
);

export const faultListSchema = z.array(faultSchema);

/** FIFO of faults; each postback request consumes at most one. */
export class FaultQueue {
  private readonly queue: Fault[] = [];

  /** Validates too, because JS callers (and the CLI via JSON) bypass the static types. */
  push(faults: readonly Fault[]): void {
    const parsed = faultListSchema.safeParse(faults);
    if (!parsed.success) {
      throw new TypeError(`invalid faults: ${z.prettifyError(parsed.error)}`);
    }
    this.queue.push(...parsed.data);
  }

  next(): Fault | undefined {
    return this.queue.shift();
  }

  clear(): number {
    const n = this.queue.length;
    this.queue.length = 0;
    return n;
  }

  get pending(): readonly Fault[] {
    return [...this.queue];
  }
}

/** Shaped like PayPal's maintenance pages: a real HTML document, never a bare keyword. */
export function errorPageHtml(status: number): string {
  const title = status === 200 ? 'PayPal' : `PayPal - ${status}`;
  return [
    '<!DOCTYPE html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>`,
    '<body><div id="main"><h1>Sorry, we can\u2019t complete your request right now.</h1>',
    '<p>Please try again later.</p></div></body></html>',
    '',
  ].join('\n');
}

export const FATAL_FAILURE_BODY = 'Fatal Failure<br>';
