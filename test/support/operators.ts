import { codeAtStep, currentStep, TOTP_PERIOD_SECONDS } from '../../src/operators/totp';
import { operatorIdOf, type OperatorRole } from '../../src/operators/contract';
import { operatorIdentity } from '../../src/shared/operator-actions';
import { ADMIN_ROUTE_POLICY } from '../../src/shared/http/route-policy';

/** One operator a test acts as: its key, its TOTP secret (read from the totpUri it was created with). */
export interface TestOperator {
  id: string;
  role: OperatorRole;
  apiKey: string;
  secret: string;
  /** The last time step this helper took a code for (the server refuses any step not after it). */
  lastStep: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The id an operator name typed in a test stands for (`Alice`, `alice.` and `ALICE` are one person). */
export const testOperatorId = (name: string) => operatorIdOf(operatorIdentity(name)) || 'nameless';

/**
 * Operators for tests, created through the real API with the break-glass token, as a fresh install
 * would. `code(op)` gives a code for a step this operator has not used yet: the server takes each
 * step once, so an operator decides about once per step; the helper waits when it must. The test stack
 * shortens the step to 2 s (OPERATOR_TOTP_PERIOD_SECONDS) so a test of many decisions does not wait 30 s.
 */
export class TestOperators {
  private readonly known = new Map<string, Promise<TestOperator>>();

  constructor(
    private readonly baseUrl: string,
    private readonly breakGlassToken: string,
    /** The stack's OPERATOR_TOTP_PERIOD_SECONDS. */
    private readonly period = TOTP_PERIOD_SECONDS,
  ) {}

  /** The operator with this id, created (with `role`) on first use. */
  get(name: string, role: OperatorRole = 'approver'): Promise<TestOperator> {
    const id = testOperatorId(name);
    let op = this.known.get(id);
    if (!op) {
      op = this.create(id, role);
      this.known.set(id, op);
      op.catch(() => this.known.delete(id));
    }
    return op;
  }

  private async create(name: string, role: OperatorRole): Promise<TestOperator> {
    const res = await fetch(`${this.baseUrl}/admin/operators`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.breakGlassToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, role }),
    });
    const body = (await res.json()) as { id: string; apiKey: string; totpUri: string };
    if (res.status !== 201) throw new Error(`creating operator ${name}: ${res.status} ${JSON.stringify(body)}`);
    return { id: body.id, role, apiKey: body.apiKey, secret: secretOf(body.totpUri), lastStep: 0 };
  }

  /** What a Web UI signal deciding money carries: the operator's id and a current code (created on first use). */
  async proof(name: string, role: OperatorRole = 'approver'): Promise<{ operator: string; otp: string }> {
    const op = await this.get(name, role);
    return { operator: op.id, otp: await this.code(op) };
  }

  /** A code for a step after the last one used, waiting for the clock when the window is spent. */
  async code(op: TestOperator): Promise<string> {
    const period = this.period;
    for (;;) {
      const now = Date.now();
      const cur = currentStep(now, period);
      const intoStep = (now / 1000) % period;
      // The previous step only while it cannot slip out of the ±1 window before the server checks it.
      const earliest = period >= 10 && intoStep < period - 5 ? cur - 1 : cur;
      const step = Math.max(op.lastStep + 1, earliest);
      if (step <= cur + 1) {
        op.lastStep = step;
        return codeAtStep(op.secret, step, period);
      }
      await sleep((period - intoStep) * 1000 + 50);
    }
  }
}

export function secretOf(totpUri: string): string {
  const secret = new URL(totpUri).searchParams.get('secret');
  if (!secret) throw new Error('totpUri without a secret');
  return secret;
}

/** The role a route needs and whether it takes a code, as the API's own policy table says. */
export function routeNeeds(method: string, urlPath: string): { role: OperatorRole; otp: boolean } {
  const path = urlPath.split('?')[0]!;
  const wanted = method === 'HEAD' ? 'GET' : method;
  for (const [key, policy] of Object.entries(ADMIN_ROUTE_POLICY)) {
    const [m, pattern] = key.split(' ') as [string, string];
    const re = new RegExp(`^${pattern.replace(/\/$/, '').replace(/:\w+/g, '[^/]+')}/?$`);
    if (m === wanted && re.test(path)) return { role: policy.role, otp: policy.otp === true };
  }
  return { role: 'viewer', otp: false };
}
