import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ActivityDeps } from './deps';

const USER_AGENT = 'ipnflow-ipn-verifier/0.1 (PayPal IPN listener; +https://developer.paypal.com/api/nvp-soap/ipn/)';
const PREFIX = Buffer.from('cmd=_notify-validate&');

/**
 * PayPal's postback: the exact bytes we received, prefixed. Only an exact VERIFIED or INVALID
 * is an answer; anything else (5xx, HTML error pages, "Fatal Failure", timeouts) is thrown so
 * Temporal retries with backoff until the workflow's time bound.
 */
export function createVerifyActivities({ db, config }: ActivityDeps) {
  return {
    async verifyWithPayPal({ messageId }: { messageId: string }): Promise<'VERIFIED' | 'INVALID'> {
      const msg = await db.models.IpnMessage.findById(messageId, { raw: 1, testIpn: 1 }).lean();
      if (!msg) throw ApplicationFailure.nonRetryable(`IPN message ${messageId} not found`, 'MessageNotFound');
      const raw = Buffer.from(msg.raw.buffer);
      // test_ipn picks the host: a sandbox message is only ever verifiable by the sandbox.
      const url = msg.testIpn ? config.PAYPAL_SANDBOX_VERIFY_URL : config.paypalLiveVerifyUrl;
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': USER_AGENT },
          body: Buffer.concat([PREFIX, raw]),
          // Also given up when the attempt is (a local attempt timing out): no postback outlives its activity.
          signal: AbortSignal.any([AbortSignal.timeout(30_000), Context.current().cancellationSignal]),
        });
      } catch (err) {
        throw ApplicationFailure.retryable(
          `postback to ${url} failed: ${(err as Error).message}`,
          'PostbackUnavailable',
          { messageId },
        );
      }
      const body = (await res.text().catch(() => '')).trim();
      if (res.status === 200 && (body === 'VERIFIED' || body === 'INVALID')) return body;
      throw ApplicationFailure.retryable(
        `postback to ${url} answered ${res.status}: ${JSON.stringify(body.slice(0, 120))}`,
        'PostbackUnclear',
        { messageId },
      );
    },
  };
}
