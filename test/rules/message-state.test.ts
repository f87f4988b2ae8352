import { MessageOutcomeSchema, MessageStateSchema } from '../../src/messages/state';
import { notApplied } from '../../src/shared/rules-kit';
import { SETTLED_STATES } from '../../src/retention/raw-bodies';

/** One declaration of where a stored message stands: what the code writes parses, nothing else does. */
describe('MessageState', () => {
  test.each([
    'received',
    'dispatched',
    'undispatchable',
    'parked',
    'masspay_unmatched',
    'applied:credited',
    'applied:held',
    'applied:Active',
    notApplied.duplicate('m1', 'k').outcome,
    notApplied.unproven('m1', 'why').outcome,
    notApplied.foreign('m1', 'why').outcome,
    'internal_error',
    ...SETTLED_STATES,
  ])('%s is a message state', (state) => {
    expect(MessageStateSchema.safeParse(state).success).toBe(true);
  });

  test.each(['applied', 'credited', 'held', 'Received', ''])('%j is not', (state) => {
    expect(MessageStateSchema.safeParse(state).success).toBe(false);
  });

  test('processIpn ends only in outcomes, never in an entity’s applied state', () => {
    expect(MessageOutcomeSchema.safeParse('applied:credited').success).toBe(false);
    expect(MessageOutcomeSchema.safeParse('masspay_received').success).toBe(true);
  });
});
