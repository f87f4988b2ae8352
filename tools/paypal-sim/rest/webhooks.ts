import { randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { SimRestApp } from './oauth';

/**
 * The simulator's own signing key and self-signed certificate (dev-only: generated with openssl for this
 * simulator, trusted by nothing; production accepts certificates from PayPal's hosts only).
 */
const KEY_PEM = readFileSync(path.join(__dirname, 'sim-webhook-key.pem'), 'utf8');
export const SIM_CERT_PEM = readFileSync(path.join(__dirname, 'sim-webhook-cert.pem'), 'utf8');
export const SIM_CERT_PATH = '/v1/notifications/certs/CERT-360caa42-fca2a594-ipnflowsim';

export interface WebhookEvent {
  id: string;
  event_version: '1.0';
  create_time: string;
  resource_type: string;
  event_type: string;
  summary: string;
  resource: Record<string, unknown>;
  links: { href: string; rel: string; method: string }[];
}

/** One POST of a webhook to the service, as recorded for tests. */
export interface WebhookDelivery {
  event: WebhookEvent;
  body: string;
  headers: Record<string, string>;
  status?: number;
  error?: string;
  /** When its first POST started (ms since the epoch). */
  sentAt?: number;
  /** POSTs made: more than one when an answer was not 2xx (PayPal posts again). */
  attempts?: number;
}

/** How the next deliveries misbehave: PayPal repeats, reorders, loses, and (in an attack) a forger signs badly. */
export interface WebhookFaults {
  /** Every event is posted twice. */
  duplicate?: boolean;
  /** Events of one batch are posted in reverse order. */
  reverse?: boolean;
  /** Nothing is posted: only polling can tell the service. */
  none?: boolean;
  /** The signature is made over other bytes. */
  badSignature?: boolean;
  /** The certificate URL points outside PayPal's hosts. */
  foreignCertUrl?: string;
  /**
   * POSTs in flight at once (PayPal delivers a large batch's events side by side; default 1, in
   * order). Above 1 the order is no longer the given one, as with PayPal.
   */
  concurrency?: number;
}

export function webhookEvent(eventType: string, resourceType: string, resource: Record<string, unknown>): WebhookEvent {
  return {
    id: `WH-${randomUUID().replace(/-/g, '').slice(0, 17).toUpperCase()}-${randomUUID().slice(0, 8).toUpperCase()}`,
    event_version: '1.0',
    create_time: new Date().toISOString(),
    resource_type: resourceType,
    event_type: eventType,
    summary: `${eventType} (simulated)`,
    resource,
    links: [],
  };
}

/** PayPal's transmission headers for one body: SHA256withRSA over id|time|webhook id|crc32(body). */
export function signWebhook(
  body: string,
  webhookId: string,
  certUrl: string,
  faults: WebhookFaults = {},
): Record<string, string> {
  const transmissionId = randomUUID();
  const time = new Date().toISOString();
  const signedBody = faults.badSignature ? `${body} ` : body;
  const message = `${transmissionId}|${time}|${webhookId}|${crc32(Buffer.from(signedBody, 'utf8')) >>> 0}`;
  return {
    'paypal-transmission-id': transmissionId,
    'paypal-transmission-time': time,
    'paypal-transmission-sig': sign('sha256', Buffer.from(message, 'utf8'), KEY_PEM).toString('base64'),
    'paypal-cert-url': faults.foreignCertUrl ?? certUrl,
    'paypal-auth-algo': 'SHA256withRSA',
  };
}

/** POSTs of one event before the simulator gives up on it (PayPal keeps trying for three days). */
const DELIVERY_ATTEMPTS = 4;

/** Posts events to an app's webhook URL, one at a time, in the order given (after faults reshape it). */
export async function deliverWebhooks(
  app: SimRestApp,
  events: WebhookEvent[],
  certUrl: string,
  faults: WebhookFaults,
  record: (d: WebhookDelivery) => void,
): Promise<void> {
  const { webhookUrl, webhookId } = app;
  if (!webhookUrl || !webhookId || faults.none) return;
  const ordered = faults.reverse ? [...events].reverse() : events;
  const posts = faults.duplicate ? ordered.flatMap((e) => [e, e]) : ordered;
  // Signed before the first POST (PayPal signs on its own machines): a bench times our door, not
  // the simulator's RSA signatures.
  const signed = posts.map((event) => {
    const body = JSON.stringify(event);
    const headers = { 'content-type': 'application/json', ...signWebhook(body, webhookId, certUrl, faults) };
    return { event, body, headers };
  });
  let next = 0;
  const lane = async () => {
    while (next < signed.length) await post(signed[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(faults.concurrency ?? 1, signed.length)) }, lane));

  async function post(this: void, delivery: WebhookDelivery): Promise<void> {
    delivery.sentAt = Date.now();
    // PayPal posts again whatever was not answered 2xx (for days); here a few times, soon after.
    for (let attempt = 1; attempt <= DELIVERY_ATTEMPTS; attempt++) {
      delivery.attempts = attempt;
      delete delivery.error;
      try {
        delivery.status = await postOnce(webhookUrl!, delivery.headers, delivery.body);
      } catch (err) {
        delivery.error = err instanceof Error ? err.message : String(err);
      }
      if (delivery.status !== undefined && delivery.status >= 200 && delivery.status < 300) break;
      if (attempt < DELIVERY_ATTEMPTS) await new Promise((r) => setTimeout(r, 200 * attempt));
    }
    record(delivery);
  }
}

/**
 * Kept-alive connections, as PayPal's sender keeps them: node:http rather than fetch, whose per-request
 * CPU (about twice http's) the sender would otherwise take from the two cores the 15,000-webhook bench
 * shares with the service it measures.
 */
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

/** One POST; resolves with the status once the answer is read whole. */
function postOnce(url: string, headers: Record<string, string>, body: string): Promise<number> {
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        agent: agents[target.protocol as keyof typeof agents],
        timeout: 20_000,
      },
      (res) => {
        res.on('error', reject);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.resume();
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${target.host} within 20 s`)));
    req.on('error', reject);
    req.end(body);
  });
}
