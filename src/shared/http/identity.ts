import type { Context } from 'koa';
import type { AdminIdentity } from '../../operators/contract';

/** The identity of the admin request being handled, set by AdminAuth.authenticate. */
export function identityOf(ctx: Context): AdminIdentity | undefined {
  return (ctx.state as { identity?: AdminIdentity }).identity;
}

export function setIdentity(ctx: Context, identity: AdminIdentity): void {
  (ctx.state as { identity?: AdminIdentity }).identity = identity;
}
