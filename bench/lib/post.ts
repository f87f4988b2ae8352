import http from 'node:http';

/**
 * Kept-alive connections through node:http, not fetch: the bench plays PayPal's sender, which does
 * not run on the machine it measures, and fetch takes about twice http's CPU per POST from the two
 * cores the service shares with it (as the Mass Pay bench's simulator found, tools/paypal-sim/rest/webhooks.ts).
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const TIMEOUT_MS = 120_000;

/** One form POST that must answer 200; the answer's first bytes go into the error otherwise. */
export function postOk(url: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        timeout: TIMEOUT_MS,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode === 200) return resolve();
          const text = Buffer.concat(chunks).toString('utf8').slice(0, 120);
          reject(new Error(`POST ${url} answered ${res.statusCode}: ${text}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`POST ${url}: no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Lets the bench's process exit: kept-alive sockets would hold it open. */
export function closePosts(): void {
  agent.destroy();
}
