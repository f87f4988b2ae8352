import crypto from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { AppDeps } from './deps';
import { requireOperatorSecretsKey } from '../config';
import { clientKey } from '../../messages/rate-limit';
import { OperatorStore } from '../../operators/store';
import { BREAK_GLASS_ID, OPERATOR_AUDIT, OTP_HEADER, roleAllows, type AdminIdentity } from '../../operators/contract';
import { policyOf } from './route-policy';
import { identityOf, setIdentity } from './identity';

const sha256 = (text: string) => crypto.createHash('sha256').update(text, 'utf8').digest();

/**
 * Every admin request is someone: an operator by their own API key (`Authorization: Bearer ipk.…`),
 * or whoever holds the break-glass ADMIN_TOKEN. Failed keys count per client address
 * (rate-limiter-flexible's memory limiter, per API process); over the limit every key is refused with
 * 429 until the window ends, so guessing costs a window per few tries.
 */
export class AdminAuth {
  readonly operators: OperatorStore;
  private readonly failures: RateLimiterMemory;
  private readonly breakGlass: Buffer | null;
  private readonly maxFailures: number;

  constructor(private readonly deps: Pick<AppDeps, 'config' | 'db' | 'logger'>) {
    const { config } = deps;
    this.operators = new OperatorStore(deps.db.models, {
      secretsKey: requireOperatorSecretsKey(config),
      maxFailures: config.OPERATOR_OTP_MAX_FAILURES,
      lockSeconds: config.OPERATOR_OTP_LOCK_SECONDS,
      period: config.OPERATOR_TOTP_PERIOD_SECONDS,
    });
    this.maxFailures = config.ADMIN_KEY_FAILURE_POINTS;
    this.failures = new RateLimiterMemory({
      points: config.ADMIN_KEY_FAILURE_POINTS,
      duration: config.ADMIN_KEY_FAILURE_WINDOW_SECONDS,
      keyPrefix: 'admin-key',
    });
    this.breakGlass = config.ADMIN_TOKEN ? sha256(config.ADMIN_TOKEN) : null;
  }

  /** Sets ctx.state.identity, or answers 401 (no or a wrong key) / 429 (too many wrong keys). */
  authenticate(): Middleware {
    return async (ctx, next) => {
      if (identityOf(ctx)) return next();
      const header = ctx.get('authorization');
      const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
      const client = clientKey(ctx.request.ips, ctx.request.socket.remoteAddress);
      if (given) {
        const tried = await this.failures.get(client);
        if (tried && tried.consumedPoints >= this.maxFailures) {
          ctx.status = 429;
          ctx.set('Retry-After', String(Math.max(1, Math.ceil(tried.msBeforeNext / 1000))));
          ctx.body = { error: 'too many failed API keys from this address; try again later' };
          return;
        }
      }
      const identity = given ? await this.identify(given) : null;
      if (!identity) {
        if (given) await this.failures.penalty(client, 1);
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Bearer realm="ipnflow-admin"');
        ctx.body = { error: 'admin routes need Authorization: Bearer <operator API key>' };
        return;
      }
      setIdentity(ctx, identity);
      await next();
    };
  }

  private async identify(given: string): Promise<AdminIdentity | null> {
    if (this.breakGlass && crypto.timingSafeEqual(sha256(given), this.breakGlass))
      return { kind: 'break_glass', id: BREAK_GLASS_ID };
    return this.operators.authenticate(given);
  }

  /**
   * The route's policy for this identity: its role (403 naming the role needed), then, for a money
   * decision, a current TOTP code taken once (401 missing, wrong, expired or replayed; 423 locked).
   * Requests no handler takes (405s, OPTIONS) need no more than a key.
   */
  authorize() {
    return async (ctx: Context, pattern: string | null, next: Next): Promise<void> => {
      const identity = identityOf(ctx)!;
      if (pattern === null) return next();
      const policy = policyOf(ctx.method, pattern);
      const refuse = async (status: number, error: string, details: Record<string, unknown> = {}) => {
        ctx.status = status;
        ctx.body = { error, ...details };
        await this.deps.db.models.AuditEvent.create({
          at: new Date(),
          actor: identity.id,
          action: OPERATOR_AUDIT.roleRefused,
          details: { method: ctx.method, route: pattern, status, ...details },
        });
      };
      if (!policy) return refuse(403, `no policy for ${ctx.method} ${pattern}: refused`);
      if (identity.kind === 'break_glass') {
        if (!policy.breakGlass)
          return refuse(403, `needs the ${policy.role} role: the ADMIN_TOKEN may only read and manage operators`, {
            needs: policy.role,
          });
        return next();
      }
      if (!roleAllows(identity.role, policy.role))
        return refuse(403, `needs the ${policy.role} role (${identity.id} is ${identity.role})`, {
          needs: policy.role,
        });
      if (policy.otp) {
        const code = ctx.get(OTP_HEADER).trim() || undefined;
        const outcome = await this.operators.takeCode(identity.id, code, { method: ctx.method, route: pattern });
        if (!outcome.ok) {
          ctx.status = outcome.why === 'locked' ? 423 : 401;
          ctx.body = {
            error:
              outcome.why === 'locked'
                ? `${identity.id}'s decisions are locked after failed codes`
                : `a money decision needs a current code in X-Operator-OTP (${outcome.why.replace(/_/g, ' ')})`,
            refused: outcome.why,
            ...(outcome.lockedUntil ? { lockedUntil: outcome.lockedUntil.toISOString() } : {}),
          };
          return;
        }
      }
      await next();
    };
  }
}
