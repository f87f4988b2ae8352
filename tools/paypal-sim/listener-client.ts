import http from 'node:http';
import https from 'node:https';

/** The User-Agent PayPal's IPN sender identifies itself with. */
export const PAYPAL_IPN_USER_AGENT = 'PayPal IPN ( https://www.paypal.com/ipn )';

/** Keep only a little of the listener's answer: it is diagnostics, PayPal ignores it. */
const RESPONSE_KEEP_BYTES = 4096;

export interface ListenerAnswer {
  status: number;
  /** First bytes of the answer body, for diagnostics. */
  responseBody: Buffer;
  responseBytes: number;
}

/**
 * POSTs one IPN exactly as PayPal does. The timeout covers the whole exchange: PayPal counts a
 * listener that sends headers but never finishes as a failed delivery too.
 */
export function postIpn(url: URL, body: Buffer, timeoutMs: number, signal: AbortSignal): Promise<ListenerAnswer> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const req = transport.request(url, {
      method: 'POST',
      // A fresh connection per notification, like PayPal; also keeps close() from waiting on idle sockets.
      agent: false,
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        'Content-Length': body.length,
        'User-Agent': PAYPAL_IPN_USER_AGENT,
        Connection: 'close',
      },
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`listener did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onAbort = (): void => {
      req.destroy(new Error('delivery cancelled'));
    };
    signal.addEventListener('abort', onAbort);
    if (signal.aborted) onAbort();

    req.on('error', (err) => settle(() => reject(err)));
    req.on('response', (res) => {
      const kept: Buffer[] = [];
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        if (total < RESPONSE_KEEP_BYTES) kept.push(chunk.subarray(0, RESPONSE_KEEP_BYTES - total));
        total += chunk.length;
      });
      res.on('end', () =>
        settle(() => resolve({ status: res.statusCode ?? 0, responseBody: Buffer.concat(kept), responseBytes: total })),
      );
      res.on('error', (err) => settle(() => reject(err)));
    });
    req.end(body);
  });
}
