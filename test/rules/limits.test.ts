import { ID_PART_MAX_CHARS, idFieldsProblem, idPartOrHash, isIdPart } from '../../src/shared/limits';

const none = { txnId: null, parentTxnId: null, paymentStatus: null, txnType: null };

test('PayPal ids and codes are usable ids; long, spaced, control, non-ASCII or ":" values are not', () => {
  const longest = 'x'.repeat(ID_PART_MAX_CHARS);
  const good = ['61E67681CH3238416', 'Canceled_Reversal', 'web_accept', 'I-PRV9G8D4FTMM', longest];
  const bad = ['', `${longest}x`, 'A B', 'A\nB', 'A\u0000B', 'A\tB', 'Ünïcode', 'a:b', 'A\u007fB'];
  for (const v of good) expect([v, isIdPart(v)]).toEqual([v, true]);
  for (const v of bad) expect([v, isIdPart(v)]).toEqual([v, false]);
});

test('a problem names the PayPal field and shows only a short prefix of the value', () => {
  expect(idFieldsProblem({ ...none, txnId: '61E67681CH3238416', paymentStatus: 'Completed' })).toBeNull();
  const problem = idFieldsProblem({ ...none, txnId: 'A'.repeat(1_100) })!;
  expect(problem).toMatch(/^txn_id "A{24}"… \(1100 characters\) is not a PayPal id/);
  expect(problem.length).toBeLessThan(200);
  expect(idFieldsProblem({ ...none, parentTxnId: 'X\nY' })).toMatch(/^parent_txn_id "X\\nY"/);
  expect(idFieldsProblem({ ...none, paymentStatus: 'Completed ' })).toMatch(/^payment_status/);
});

test('a value that is no usable id appears only as a short, stable hash', () => {
  expect(idPartOrHash('Completed')).toBe('Completed');
  const h = idPartOrHash('A'.repeat(1_100));
  expect(h).toMatch(/^invalid-[0-9a-f]{8}$/);
  expect(idPartOrHash('A'.repeat(1_100))).toBe(h);
  expect(idPartOrHash('A'.repeat(1_101))).not.toBe(h);
  expect(isIdPart(idPartOrHash('x\u0000y'))).toBe(true);
});
