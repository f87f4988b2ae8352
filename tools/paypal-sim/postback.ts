import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorPageHtml, FATAL_FAILURE_BODY, type FaultQueue } from './faults';
import { headerValue, readBody, sendText } from './http-util';
import type { MessageRegistry } from './registry';
import type { Fault, PostbackRecord, SimLogger } from './types';

export const NOTIFY_VALIDATE_PREFIX = Buffer.from('cmd=_notify-validate&', 'latin1');
export const VERIFY_PATH = '/cgi-bin/webscr';

/** IPN bodies are a few KB; anything near this is not a postback. */
// Above our own IPN limit: a 5,000-item Mass Pay IPN (about 625 KB) must verify like any other.
const POSTBACK_BODY_LIMIT = 4 * 1024 * 1024;

export type PostbackAnswer = 'VERIFIED' | 'INVALID';

/** PayPal's rule: the prefix, then the exact bytes it sent. Nothing is parsed, so re-encoding fails. */
export function answerFor(body: Buffer, registry: MessageRegistry): PostbackAnswer {
  if (body.length <= NOTIFY_VALIDATE_PREFIX.length) return 'INVALID';
  if (!body.subarray(0, NOTIFY_VALIDATE_PREFIX.length).equals(NOTIFY_VALIDATE_PREFIX)) return 'INVALID';
  return registry.has(body.subarray(NOTIFY_VALIDATE_PREFIX.length)) ? 'VERIFIED' : 'INVALID';
}

export interface PostbackContext {
  registry: MessageRegistry;
  faults: FaultQueue;
  record: (entry: PostbackRecord) => void;
  /** Delay faults register their timers here so close() does not wait on them. */
  timers: Set<NodeJS.Timeout>;
  log: SimLogger;
}

export async function handlePostback(req: IncomingMessage, res: ServerResponse, ctx: PostbackContext): Promise<void> {
  const at = new Date();
  const body = await readBody(req, POSTBACK_BODY_LIMIT);
  // The fault is taken only once the request is complete, so a half-sent request does not eat one.
  const fault = ctx.faults.next();
  const base = {
    at,
    body,
    userAgent: headerValue(req, 'user-agent'),
    contentType: headerValue(req, 'content-type'),
    ...(fault ? { fault: fault.kind } : {}),
  };
  const answerWith = (status: number, answer: string, contentType?: string): void => {
    sendText(res, status, answer, contentType);
    ctx.record({ ...base, answer, status });
    ctx.log({
      msg: 'paypal-sim.postback',
      status,
      answer: answer.slice(0, 40),
      fault: fault?.kind,
      bytes: body.length,
    });
  };

  if (!fault) {
    answerWith(200, answerFor(body, ctx.registry));
    return;
  }
  applyFault(fault, { req, res, body, ctx, answerWith, base });
}

interface FaultTarget {
  req: IncomingMessage;
  res: ServerResponse;
  body: Buffer;
  ctx: PostbackContext;
  answerWith: (status: number, answer: string, contentType?: string) => void;
  base: Omit<PostbackRecord, 'answer' | 'status'>;
}

function applyFault(fault: Fault, t: FaultTarget): void {
  switch (fault.kind) {
    case 'delay': {
      const timer = setTimeout(() => {
        t.ctx.timers.delete(timer);
        t.answerWith(200, answerFor(t.body, t.ctx.registry));
      }, fault.ms);
      t.ctx.timers.add(timer);
      return;
    }
    case 'status':
      t.answerWith(fault.status, errorPageHtml(fault.status), 'text/html; charset=utf-8');
      return;
    case 'html':
      t.answerWith(200, errorPageHtml(200), 'text/html; charset=utf-8');
      return;
    case 'fatal':
      t.answerWith(200, FATAL_FAILURE_BODY, 'text/html; charset=utf-8');
      return;
    case 'drop':
      t.req.socket.destroy();
      t.ctx.record({ ...t.base, answer: '', status: 0 });
      t.ctx.log({ msg: 'paypal-sim.postback', status: 0, fault: 'drop', bytes: t.body.length });
      return;
  }
}
