import { createActivities } from '../../activities';
import { createLogger } from '../../src/shared/logger';
import { codeAtStep, currentStep } from '../../src/operators/totp';
import { createTestStack, type TestStack } from '../support/stack';

/**
 * The activity a workflow asks before acting on a Web UI money decision (issue 15 item 5's check; the
 * workflows do not call it yet): the proof is the operator's id and a current code, taken once.
 */
let stack: TestStack;
let check: ReturnType<typeof createActivities>['checkOperatorProof'];
beforeAll(async () => {
  stack = await createTestStack('operator-proof', { OPERATOR_TOTP_PERIOD_SECONDS: '30' });
  check = createActivities({ ...stack, logger: createLogger('silent') }).checkOperatorProof;
});
afterAll(() => stack?.close());

const proof = (operator: string, otp: string | undefined, needs = 'approver') => ({
  operator,
  otp,
  needs,
  workflowId: 'masspay:PBTEST',
  decision: 'sendPayout',
});

test('a current code proves an approver once; no code, a replay, a weaker role or a stranger are refused', async () => {
  const bob = await stack.operators.get('bob');
  await stack.operators.get('oscar', 'operator');
  const code = codeAtStep(bob.secret, currentStep());
  expect(await check(proof('bob', undefined))).toEqual({ ok: false, why: 'missing' });
  expect(await check(proof('bob', code))).toEqual({ ok: true, operator: 'bob' });
  expect(await check(proof('bob', code))).toEqual({ ok: false, why: 'replayed' });
  expect(await check(proof('oscar', '123456'))).toEqual({ ok: false, why: 'role', needs: 'approver' });
  expect(await check(proof('mallory', '123456'))).toEqual({ ok: false, why: 'unknown_operator' });
  expect(await check({ operator: 42 })).toEqual({ ok: false, why: 'malformed' });
  const audit = await stack.db.models.AuditEvent.find({ 'details.via': 'temporal_ui' }).sort({ _id: 1 }).lean();
  expect(audit.map((e) => [e.actor, e.action, (e.details as { refused?: string }).refused ?? null])).toEqual([
    ['bob', 'operator_otp_refused', 'missing'],
    ['bob', 'operator_otp_refused', 'replayed'],
    ['oscar', 'operator_role_refused', null],
  ]);
});
