import type { OperatorRole } from '../../operators/contract';

/**
 * Who may use each admin route: the role it needs, whether it decides money (a current TOTP code in
 * X-Operator-OTP, see src/operators), and whether the break-glass ADMIN_TOKEN may use it (reads and
 * operator management only). One table for every admin router: a route missing from it is refused
 * (test/api/operator-roles.test.ts walks every route × role).
 */
export interface RoutePolicy {
  role: OperatorRole;
  otp?: true;
  breakGlass?: true;
}

const read: RoutePolicy = { role: 'viewer', breakGlass: true };
const operate: RoutePolicy = { role: 'operator' };
const operateMoney: RoutePolicy = { role: 'operator', otp: true };
const decide: RoutePolicy = { role: 'approver', otp: true };
const manageOperators: RoutePolicy = { role: 'admin', breakGlass: true };
const configure: RoutePolicy = { role: 'admin' };
/** A portal's service account (or an operator): creating a top-up moves no money until the buyer pays. */
const portal: RoutePolicy = { role: 'portal' };
/** ...and reading one, which the break-glass token may too (it reads everything). */
const portalRead: RoutePolicy = { role: 'portal', breakGlass: true };

export const ADMIN_ROUTE_POLICY: Record<string, RoutePolicy> = {
  'GET /admin/operators': manageOperators,
  'POST /admin/operators': manageOperators,
  'POST /admin/operators/:id/disable': manageOperators,
  'POST /admin/operators/:id/rotate-key': manageOperators,
  'POST /admin/operators/:id/reset-totp': manageOperators,

  'PUT /admin/integrations/:id': configure,
  'GET /admin/integrations/:id': read,
  'GET /admin/integrations': read,
  'PUT /admin/customers/:id': configure,
  'GET /admin/customers/:id': read,
  'GET /admin/customers/:id/ledger': read,
  'GET /admin/ledger/check': read,
  'GET /admin/held': read,
  'GET /admin/audit': read,

  'GET /admin/payments/:txnId': read,
  'POST /admin/payments/:txnId/assign': operateMoney,
  'POST /admin/payments/:txnId/approve': decide,
  'POST /admin/payments/:txnId/reject': decide,
  'POST /admin/payments/:txnId/acknowledge': operate,

  'GET /admin/messages': read,
  'GET /admin/messages/:id': read,
  'POST /admin/messages/:id/retry': decide,
  'POST /admin/messages/:id/reject': decide,

  'GET /admin/profiles/:id': read,
  'GET /admin/profiles': read,
  'POST /admin/profiles/:id/bill-outstanding': decide,
  'POST /admin/profiles/:id/suspend': decide,
  'POST /admin/profiles/:id/reactivate': decide,
  'POST /admin/profiles/:id/cancel': decide,
  'POST /admin/profiles/:id/refresh': operate,
  'POST /admin/profiles/:id/assign': operateMoney,
  'POST /admin/profiles/:id/approve': decide,
  'POST /admin/profiles/:id/acknowledge': operate,

  'POST /admin/payouts': operate,
  'GET /admin/payouts': read,
  'GET /admin/payouts/:id': read,
  'GET /admin/payouts/:id/masspay-file': read,
  'POST /admin/payouts/:id/approve': decide,
  'POST /admin/payouts/:id/submitted': decide,
  'POST /admin/payouts/:id/cancel': decide,
  'POST /admin/payouts/:id/stop-waiting': decide,
  'POST /admin/payouts/:id/reconcile': operate,
  'POST /admin/payouts/:id/clear-contradiction': decide,
  'POST /admin/payouts/:id/send': decide,
  'POST /admin/payouts/:id/items/:uniqueId/resolve': decide,
  'POST /admin/payouts/:id/items/:uniqueId/cancel-unclaimed': decide,

  'POST /admin/topups': portal,
  'POST /admin/topups/links': portal,
  'GET /admin/topups/:id': portalRead,
};

/** The policy of a route, by method (HEAD reads as GET) and the router's path pattern. */
export function policyOf(method: string, pattern: string): RoutePolicy | undefined {
  return ADMIN_ROUTE_POLICY[`${method === 'HEAD' ? 'GET' : method} ${pattern}`];
}
