import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createControlApi } from './control';
import { IpnDelivery } from './delivery';
import { FaultQueue } from './faults';
import { HttpError, sendJson, sendText } from './http-util';
import { handlePostback, VERIFY_PATH } from './postback';
import { MessageRegistry } from './registry';
import { NVP_PATH, NvpSimulator } from './nvp';
import { RestSimulator } from './rest';
import { APPROVE_PATH, checkoutPage } from './checkout-page';
import {
  DEFAULT_RESEND_SCHEDULE_MS,
  resolveAttemptTimeouts,
  validateResendSchedule,
  validateTimeScale,
} from './schedule';
import type { Delivery, Fault, PayPalSimulator, PayPalSimulatorOptions, PostbackRecord, SimLogger } from './types';

const DEFAULT_HOST = '127.0.0.1';

export async function startPayPalSimulator(opts: PayPalSimulatorOptions = {}): Promise<PayPalSimulator> {
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer in 0..65535, got ${String(port)}`);
  }
  const host = opts.host ?? DEFAULT_HOST;
  const timeScale = validateTimeScale(opts.timeScale ?? 1);
  // Validate eagerly: a bad schedule should fail at startup, not on the first failed delivery.
  const schedule = validateResendSchedule(opts.resendScheduleMs ?? DEFAULT_RESEND_SCHEDULE_MS);
  const resendDelaysMs = schedule.map((ms) => ms * timeScale);
  const timeouts = resolveAttemptTimeouts(timeScale, opts.attemptTimeoutMs);
  const log = safeLogger(opts.logger);

  const registry = new MessageRegistry();
  const faults = new FaultQueue();
  const postbacks: PostbackRecord[] = [];
  const deliveries: IpnDelivery[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let baseUrl = '';

  const sim: PayPalSimulator = {
    get url() {
      return baseUrl;
    },
    get verifyUrl() {
      return `${baseUrl}${VERIFY_PATH}`;
    },
    get postbacks() {
      return postbacks;
    },
    get deliveries(): readonly Delivery[] {
      return deliveries;
    },
    get pendingFaults() {
      return faults.pending;
    },
    registerMessage(raw: Buffer): void {
      registry.register(raw);
    },
    injectFaults(list: Fault[]): void {
      faults.push(list);
    },
    clearFaults(): void {
      faults.clear();
    },
    sendIpn({ listenerUrl, body }): Delivery {
      const target = parseListenerUrl(listenerUrl);
      const delivery = new IpnDelivery(target, Buffer.from(body), { registry, log, resendDelaysMs, timeouts });
      deliveries.push(delivery);
      log({ msg: 'paypal-sim.delivery.start', id: delivery.id, listenerUrl: target.href, bytes: body.length });
      delivery.start();
      return delivery;
    },
    close: () => close(),
    nvp: undefined as unknown as NvpSimulator,
    rest: new RestSimulator(() => baseUrl),
    get nvpUrl() {
      return `${baseUrl}${NVP_PATH}`;
    },
  };

  const nvp = new NvpSimulator((args) => sim.sendIpn(args));
  sim.nvp = nvp;
  sim.rest.sendIpn = (args) => sim.sendIpn(args);
  const checkout = checkoutPage(sim.rest.orders, nvp.express);
  const control = createControlApi(sim);
  const postbackCtx = { registry, faults, timers, log, record: (p: PostbackRecord) => postbacks.push(p) };

  const server = http.createServer((req, res) => {
    void route(req, res).catch((err: unknown) => answerError(req, res, err, log));
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const path = url.pathname;
    // The buyer's pages: Orders v2 approval, and Express Checkout's redirect (a GET on webscr).
    if (path === APPROVE_PATH || (path === VERIFY_PATH && req.method === 'GET' && url.searchParams.has('token'))) {
      await checkout(req, res, url);
      return;
    }
    if (path === VERIFY_PATH) {
      if (req.method !== 'POST')
        throw new HttpError(405, `${req.method} not allowed on ${VERIFY_PATH}: PayPal expects a POST`, {
          allow: 'POST',
        });
      await handlePostback(req, res, postbackCtx);
      return;
    }
    if (path === NVP_PATH && req.method === 'POST') {
      await nvp.handle(req, res);
      return;
    }
    if ((path.startsWith('/v1/') || path.startsWith('/v2/')) && (await sim.rest.handle(req, res, path))) return;
    if (path.startsWith('/sim/')) {
      await control(req, res);
      return;
    }
    throw new HttpError(404, `no route for ${req.method} ${path}`);
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void =>
      reject(new Error(`PayPal simulator could not listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  baseUrl = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log({ msg: 'paypal-sim.listening', url: baseUrl, verifyUrl: sim.verifyUrl, timeScale, resendDelaysMs, timeouts });

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= new Promise<void>((resolve, reject) => {
      for (const d of deliveries) d.cancel();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.close((err) =>
        err
          ? reject(new Error(`closing PayPal simulator at ${baseUrl} failed: ${err.message}`, { cause: err }))
          : resolve(),
      );
      // Listeners keep connections alive; without this close() would wait for their idle timeout.
      server.closeAllConnections();
    });
    return closing;
  }

  return sim;
}

function parseListenerUrl(listenerUrl: string): URL {
  let url: URL;
  try {
    url = new URL(listenerUrl);
  } catch {
    throw new TypeError(`listenerUrl ${JSON.stringify(listenerUrl)} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`listenerUrl ${JSON.stringify(listenerUrl)} must use http or https`);
  }
  return url;
}

function answerError(req: IncomingMessage, res: ServerResponse, err: unknown, log: SimLogger): void {
  if (err instanceof HttpError) {
    const headers: Record<string, string> = {};
    const allow = (err.details as { allow?: unknown } | undefined)?.allow;
    if (err.status === 405 && typeof allow === 'string') headers.Allow = allow;
    const issues = Array.isArray(err.details) ? err.details : undefined;
    sendJson(res, err.status, { error: err.message, ...(issues ? { issues } : {}) }, headers);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  log({ msg: 'paypal-sim.error', method: req.method, url: req.url, error: message });
  // A simulator bug must be visible to the caller, not masked as a PayPal answer.
  sendText(res, 500, `paypal-sim internal error: ${message}`);
}

/** A throwing logger must never change how the simulator answers. */
function safeLogger(logger: SimLogger | undefined): SimLogger {
  if (!logger) return () => undefined;
  return (line) => {
    try {
      logger({ time: new Date().toISOString(), ...line });
    } catch {
      // ignored on purpose: see above
    }
  };
}
