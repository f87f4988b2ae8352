import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, readBody, sendJson, sendText } from '../http-util';
import { SimOAuth, type SimRestApp } from './oauth';
import { batchPage, createdAnswer, itemResource, RestError, SimPayouts, type SimPayoutBatch } from './payouts';
import { deliverWebhooks, SIM_CERT_PATH, SIM_CERT_PEM, type WebhookDelivery, type WebhookFaults } from './webhooks';
import type { WebhookEvent } from './webhooks';
import { SimOrders, type SimOrder } from './orders';

/** 15,000 items of a few hundred bytes each, with room to spare. */
const REST_BODY_LIMIT = 16 * 1024 * 1024;

/** One-shot misbehaviour of a REST call, consumed FIFO by the first call of its operation. */
export type RestFault =
  /** PayPal does the work, but the answer never arrives (the socket is destroyed). */
  | { kind: 'lost_answer'; on: RestOperation }
  /** PayPal answers an error status without doing anything. */
  | { kind: 'status'; status: 500 | 503 | 429; on: RestOperation }
  /** A capture's IPN and webhook are delivered before its answer leaves (the IPN before the return). */
  | { kind: 'notify_first'; on: 'capture_order' };
export type RestOperation =
  | 'token'
  | 'create_payout'
  | 'get_payout'
  | 'cancel_item'
  | 'create_order'
  | 'get_order'
  | 'capture_order'
  | 'get_capture';

export interface RestCallRecord {
  at: Date;
  operation: RestOperation | 'get_item' | 'cert';
  status: number;
  requestId?: string;
  fault?: RestFault['kind'];
}

/** PayPal's REST side: OAuth2, Payouts, signed webhooks with their certificate. */
export class RestSimulator {
  readonly oauth = new SimOAuth();
  readonly payouts = new SimPayouts();
  readonly orders: SimOrders;
  /** Which notifications a capture sends (tests switch one off to see the other path alone). */
  checkoutNotify = { ipn: true, webhook: true };
  /** How the simulator posts an IPN (set by the server: registered for postback verification). */
  sendIpn: ((args: { listenerUrl: string; body: Buffer }) => { done: Promise<unknown> }) | undefined;
  readonly calls: RestCallRecord[] = [];
  readonly webhookDeliveries: WebhookDelivery[] = [];
  /** Faults for the next webhook deliveries (until changed). */
  webhookFaults: WebhookFaults = {};
  /** When set, a created batch is processed this many ms later, as PayPal would (the dev stack sets it). */
  autoProcessMs: number | undefined;
  private readonly faults: RestFault[] = [];
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly baseUrl: () => string) {
    this.orders = new SimOrders(baseUrl);
  }

  /** A capture's IPN and webhook, as PayPal sends them after it (awaited: a test sees them arrive). */
  async notifyCapture(order: SimOrder): Promise<void> {
    const app = this.oauth.app(order.clientId);
    if (!app || !order.capture) return;
    const sends: Promise<unknown>[] = [];
    if (this.checkoutNotify.ipn && app.ipnUrl && this.sendIpn)
      sends.push(this.sendIpn({ listenerUrl: app.ipnUrl, body: this.orders.captureIpn(order, app) }).done);
    if (this.checkoutNotify.webhook)
      sends.push(
        deliverWebhooks(app, [this.orders.captureEvent(order)], this.certUrl, this.webhookFaults, (d) =>
          this.webhookDeliveries.push(d),
        ),
      );
    await Promise.all(sends);
  }

  /** A pending capture completes (or is denied) at PayPal: its IPN and webhook follow. */
  async settleCapture(captureId: string, status: 'COMPLETED' | 'DECLINED' = 'COMPLETED'): Promise<void> {
    await this.notifyCapture(this.orders.settle(captureId, status));
  }

  get certUrl(): string {
    return `${this.baseUrl()}${SIM_CERT_PATH}`;
  }

  addApp(app: SimRestApp): void {
    this.oauth.addApp(app);
  }

  injectFaults(list: RestFault[]): void {
    this.faults.push(...list);
  }

  /** PayPal processes a batch now and posts its events (awaited, so a test sees them applied after). */
  async process(payoutBatchId: string): Promise<WebhookEvent[]> {
    const events = this.payouts.process(payoutBatchId);
    await this.send(this.payouts.batches.get(payoutBatchId)!, events);
    return events;
  }

  /** An item changes later at PayPal (returned after 30 days unclaimed, refunded, reversed). */
  async change(payoutItemId: string, status: Parameters<SimPayouts['change']>[1]): Promise<WebhookEvent> {
    const event = this.payouts.change(payoutItemId, status);
    const batch = [...this.payouts.batches.values()].find((b) => b.items.some((i) => i.payoutItemId === payoutItemId));
    await this.send(batch!, [event]);
    return event;
  }

  /** Posts these events again, as PayPal's resend does (or a replay attacker). */
  async resend(clientId: string, events: WebhookEvent[]): Promise<void> {
    const app = this.oauth.app(clientId);
    if (!app) throw new Error(`no simulated REST app ${clientId}`);
    await deliverWebhooks(app, events, this.certUrl, this.webhookFaults, (d) => this.webhookDeliveries.push(d));
  }

  /** Waits for deliveries started by auto-processing. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private async send(batch: SimPayoutBatch, events: WebhookEvent[]): Promise<void> {
    const app = this.oauth.app(batch.clientId);
    if (!app) return;
    await deliverWebhooks(app, events, this.certUrl, this.webhookFaults, (d) => this.webhookDeliveries.push(d));
  }

  /** Handles a REST path; false when the path is not PayPal REST (the caller routes it elsewhere). */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (req.method === 'GET' && path === SIM_CERT_PATH) {
      this.calls.push({ at: new Date(), operation: 'cert', status: 200 });
      sendText(res, 200, SIM_CERT_PEM, 'application/x-pem-file');
      return true;
    }
    const route = this.route(req.method ?? 'GET', path);
    if (!route) return false;
    const requestId = headerOf(req, 'paypal-request-id');
    const fault = route.operation === 'get_item' ? undefined : this.takeFault(route.operation);
    const notifyFirst = fault?.kind === 'notify_first';
    const record = (status: number): void => {
      this.calls.push({ at: new Date(), operation: route.operation, status, requestId, fault: fault?.kind });
    };
    if (fault?.kind === 'status') {
      record(fault.status);
      sendJson(res, fault.status, { name: 'INTERNAL_SERVICE_ERROR', message: 'An internal service error occurred.' });
      return true;
    }
    let status: number;
    let answer: unknown;
    try {
      const body = await readBody(req, REST_BODY_LIMIT);
      ({ status, answer } = await route.run(req, body, notifyFirst));
    } catch (err) {
      if (err instanceof RestError) ({ status, answer } = { status: err.status, answer: err.body });
      else if (err instanceof HttpError) ({ status, answer } = { status: err.status, answer: restBody(err) });
      else throw err;
    }
    record(status);
    if (fault?.kind === 'lost_answer') {
      res.destroy();
      return true;
    }
    sendJson(res, status, answer);
    return true;
  }

  private takeFault(operation: RestOperation): RestFault | undefined {
    const i = this.faults.findIndex((f) => f.on === operation);
    return i < 0 ? undefined : this.faults.splice(i, 1)[0];
  }

  private route(
    method: string,
    path: string,
  ):
    | {
        operation: RestOperation | 'get_item';
        run: (
          req: IncomingMessage,
          body: Buffer,
          notifyFirst: boolean,
        ) => { status: number; answer: unknown } | Promise<{ status: number; answer: unknown }>;
      }
    | undefined {
    if (method === 'POST' && path === '/v1/oauth2/token') {
      return {
        operation: 'token',
        run: (req, body) => ({ status: 200, answer: this.oauth.issue(req, new URLSearchParams(body.toString())) }),
      };
    }
    if (method === 'POST' && path === '/v1/payments/payouts') {
      return {
        operation: 'create_payout',
        run: (req, body) => {
          const app = this.oauth.authenticate(req);
          const batch = this.payouts.create(app, parseJson(body), headerOf(req, 'paypal-request-id'));
          if (this.autoProcessMs !== undefined) this.scheduleProcess(batch.payoutBatchId, this.autoProcessMs);
          return { status: 201, answer: createdAnswer(batch) };
        },
      };
    }
    const checkout = this.checkoutRoute(method, path);
    if (checkout) return checkout;
    const batchMatch = /^\/v1\/payments\/payouts\/([A-Za-z0-9]+)$/.exec(path);
    if (method === 'GET' && batchMatch) {
      return {
        operation: 'get_payout',
        run: (req) => {
          const app = this.oauth.authenticate(req);
          const url = new URL(req.url ?? '/', 'http://sim.invalid');
          const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
          const pageSize = Math.min(1000, Math.max(1, Number(url.searchParams.get('page_size') ?? 1000) || 1000));
          return { status: 200, answer: batchPage(this.payouts.batch(app, batchMatch[1]!), page, pageSize) };
        },
      };
    }
    const itemMatch = /^\/v1\/payments\/payouts-item\/([A-Za-z0-9]+)(\/cancel)?$/.exec(path);
    if (itemMatch && method === 'GET' && !itemMatch[2]) {
      return {
        operation: 'get_item',
        run: (req) => {
          const { batch, item } = this.payouts.item(this.oauth.authenticate(req), itemMatch[1]!);
          return { status: 200, answer: itemResource(batch, item) };
        },
      };
    }
    if (itemMatch && method === 'POST' && itemMatch[2]) {
      return {
        operation: 'cancel_item',
        run: (req) => {
          const app = this.oauth.authenticate(req);
          const { batch, item, event } = this.payouts.cancel(app, itemMatch[1]!);
          this.track(this.send(batch, [event]));
          return { status: 200, answer: itemResource(batch, item) };
        },
      };
    }
    return undefined;
  }

  /** Orders v2: create, get, capture, and GET capture. */
  private checkoutRoute(method: string, path: string) {
    if (method === 'POST' && path === '/v2/checkout/orders') {
      return {
        operation: 'create_order' as const,
        run: (req: IncomingMessage, body: Buffer) => {
          const app = this.oauth.authenticate(req);
          const order = this.orders.create(app, parseJson(body), headerOf(req, 'paypal-request-id'));
          return { status: 201, answer: this.orders.orderResource(order, app) };
        },
      };
    }
    const orderMatch = /^\/v2\/checkout\/orders\/([A-Z0-9]+)(\/capture)?$/.exec(path);
    if (orderMatch && method === 'GET' && !orderMatch[2]) {
      return {
        operation: 'get_order' as const,
        run: (req: IncomingMessage) => {
          const app = this.oauth.authenticate(req);
          return { status: 200, answer: this.orders.orderResource(this.orders.order(app, orderMatch[1]!), app) };
        },
      };
    }
    if (orderMatch && method === 'POST' && orderMatch[2]) {
      return {
        operation: 'capture_order' as const,
        run: async (req: IncomingMessage, _body: Buffer, notifyFirst: boolean) => {
          const app = this.oauth.authenticate(req);
          const { answer, captured } = this.orders.capture(app, orderMatch[1]!, headerOf(req, 'paypal-request-id'));
          if (captured) {
            const order = this.orders.orders.get(orderMatch[1]!)!;
            const notified = this.notifyCapture(order);
            if (notifyFirst) await notified;
            else this.track(notified);
          }
          return { status: 201, answer };
        },
      };
    }
    const captureMatch = /^\/v2\/payments\/captures\/([A-Z0-9]+)$/.exec(path);
    if (captureMatch && method === 'GET') {
      return {
        operation: 'get_capture' as const,
        run: (req: IncomingMessage) => {
          const app = this.oauth.authenticate(req);
          const order = this.orders.orderByCapture(app, captureMatch[1]!);
          return { status: 200, answer: this.orders.captureResource(order) };
        },
      };
    }
    return undefined;
  }

  private scheduleProcess(payoutBatchId: string, ms: number): void {
    const timer = setTimeout(() => this.track(this.process(payoutBatchId).then(() => undefined)), ms);
    timer.unref();
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch(() => undefined).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below as PayPal does
  }
  throw new RestError(400, { name: 'MALFORMED_REQUEST', message: 'The request JSON is not well formed.' });
}

function restBody(err: HttpError): Record<string, unknown> {
  const details = err.details && typeof err.details === 'object' ? (err.details as Record<string, unknown>) : {};
  return 'error' in details ? { ...details, error_description: err.message } : { message: err.message, ...details };
}
