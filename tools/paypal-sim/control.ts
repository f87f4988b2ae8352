import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { faultListSchema } from './faults';
import { HttpError, readBody, sendJson } from './http-util';
import type { Delivery, PayPalSimulator, PostbackRecord } from './types';

/** Base64 of a few KB IPN, with lots of headroom. */
const CONTROL_BODY_LIMIT = 8 * 1024 * 1024;
const RECENT_POSTBACKS = 50;

const bodyBase64 = z
  .base64('bodyBase64 must be standard base64 of the exact raw IPN bytes')
  .min(1, 'bodyBase64 must not be empty');

/** A plain `body` string is refused on purpose: JSON text cannot carry the original bytes of a windows-1252 message. */
const noUtf8Body = { body: z.never({ error: 'send the exact raw bytes as bodyBase64, not a text `body`' }).optional() };

const sendIpnSchema = z.strictObject({
  listenerUrl: z.url({ protocol: /^https?$/, error: 'listenerUrl must be an absolute http(s) URL' }),
  bodyBase64,
  ...noUtf8Body,
});
const registerSchema = z.strictObject({ bodyBase64, ...noUtf8Body });
const faultsSchema = z.strictObject({ faults: faultListSchema.min(1, 'faults must list at least one fault') });

interface Route {
  method: string;
  pattern: RegExp;
  handle: (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void> | void;
}

export function createControlApi(sim: PayPalSimulator): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const findDelivery = (id: string): Delivery => {
    const d = sim.deliveries.find((x) => x.id === id);
    if (!d) throw new HttpError(404, `no delivery with id ${JSON.stringify(id)}`);
    return d;
  };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/sim\/health$/,
      handle: (_req, res) => sendJson(res, 200, { ok: true, url: sim.url, verifyUrl: sim.verifyUrl }),
    },
    {
      method: 'POST',
      pattern: /^\/sim\/ipn$/,
      handle: async (req, res) => {
        const input = await parseJson(req, sendIpnSchema);
        const delivery = sim.sendIpn({ listenerUrl: input.listenerUrl, body: Buffer.from(input.bodyBase64, 'base64') });
        sendJson(res, 202, { id: delivery.id, statusUrl: `${sim.url}/sim/deliveries/${delivery.id}` });
      },
    },
    {
      method: 'GET',
      pattern: /^\/sim\/deliveries$/,
      handle: (_req, res) => sendJson(res, 200, { deliveries: sim.deliveries.map((d) => deliveryJson(d, false)) }),
    },
    {
      method: 'GET',
      pattern: /^\/sim\/deliveries\/([^/]+)$/,
      handle: (_req, res, [id]) => sendJson(res, 200, deliveryJson(findDelivery(id ?? ''), true)),
    },
    {
      method: 'POST',
      pattern: /^\/sim\/deliveries\/([^/]+)\/cancel$/,
      handle: (_req, res, [id]) => {
        const d = findDelivery(id ?? '');
        d.cancel();
        sendJson(res, 200, deliveryJson(d, false));
      },
    },
    {
      method: 'POST',
      pattern: /^\/sim\/messages$/,
      handle: async (req, res) => {
        const input = await parseJson(req, registerSchema);
        const raw = Buffer.from(input.bodyBase64, 'base64');
        sim.registerMessage(raw);
        sendJson(res, 201, { registered: true, bytes: raw.length });
      },
    },
    {
      method: 'POST',
      pattern: /^\/sim\/faults$/,
      handle: async (req, res) => {
        const input = await parseJson(req, faultsSchema);
        sim.injectFaults(input.faults);
        sendJson(res, 200, { pending: sim.pendingFaults });
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/sim\/faults$/,
      handle: (_req, res) => {
        const cleared = sim.pendingFaults.length;
        sim.clearFaults();
        sendJson(res, 200, { cleared });
      },
    },
    {
      method: 'GET',
      pattern: /^\/sim\/postbacks$/,
      handle: (_req, res) => sendJson(res, 200, postbackSummary(sim.postbacks, sim.pendingFaults.length)),
    },
  ];

  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://sim.invalid').pathname;
    const matching = routes.filter((r) => r.pattern.test(path));
    if (matching.length === 0) throw new HttpError(404, `no simulator route for ${path}`);
    const route = matching.find((r) => r.method === req.method);
    if (!route) {
      const allow = matching.map((r) => r.method).join(', ');
      throw new HttpError(405, `${req.method} not allowed on ${path} (allowed: ${allow})`, { allow });
    }
    const params = (route.pattern.exec(path) ?? []).slice(1).map((p) => decodeURIComponent(p));
    await route.handle(req, res, params);
  };
}

async function parseJson<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const raw = await readBody(req, CONTROL_BODY_LIMIT);
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `request body of ${req.method} ${req.url} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new HttpError(
      400,
      `invalid ${req.method} ${req.url} body:\n${z.prettifyError(parsed.error)}`,
      parsed.error.issues,
    );
  }
  return parsed.data;
}

export function deliveryJson(d: Delivery, withBodies: boolean): object {
  return {
    id: d.id,
    listenerUrl: d.listenerUrl,
    state: d.state,
    delivered: d.state === 'delivered',
    nextAttemptAt: d.nextAttemptAt?.toISOString(),
    attempts: d.attempts.map((a, i) => ({
      n: i + 1,
      at: a.at.toISOString(),
      resend: i > 0,
      status: a.status,
      error: a.error,
      durationMs: a.durationMs,
      bytes: a.body.length,
      ...(withBodies ? { bodyBase64: a.body.toString('base64') } : {}),
    })),
  };
}

function postbackSummary(postbacks: readonly PostbackRecord[], pendingFaults: number): object {
  const byAnswer: Record<string, number> = {};
  for (const p of postbacks) {
    const key =
      p.status === 0
        ? '(dropped)'
        : p.answer === 'VERIFIED' || p.answer === 'INVALID'
          ? p.answer
          : `(fault:${p.fault ?? 'unknown'})`;
    byAnswer[key] = (byAnswer[key] ?? 0) + 1;
  }
  return {
    total: postbacks.length,
    byAnswer,
    pendingFaults,
    recent: postbacks.slice(-RECENT_POSTBACKS).map((p) => ({
      at: p.at.toISOString(),
      status: p.status,
      answer: p.answer.length > 60 ? `${p.answer.slice(0, 60)}…` : p.answer,
      fault: p.fault,
      userAgent: p.userAgent,
      bytes: p.body.length,
    })),
  };
}
