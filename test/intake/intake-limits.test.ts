import { TxnIdKey, IntegrationIdKey } from '../../src/shared/contract';
import { createTestStack, sample, waitFor, withField, type TestStack } from '../support/stack';

/** What an unverified body may put into workflow ids, search attributes and summaries (src/shared/limits.ts). */
let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack('limits');
  const shop = { name: 'Shop', mode: 'sandbox', allowedCurrencies: ['USD'], receiverEmails: [SELLER] };
  expect((await stack.admin('PUT', '/admin/integrations/shop', shop)).status).toBe(200);
});
afterAll(() => stack?.close());

const SELLER = 'seller@paypalsandbox.com';
const base = () => sample('web_accept_completed_ipn_simulator_01');
const withTxn = (txnId: string, field: string, value: string) =>
  withField(withField(base(), 'txn_id', txnId), field, value);
const LONG_TXN = `L${'A'.repeat(1_099)}`;

async function settled(id: unknown) {
  return waitFor('message outcome', async () => {
    const m = await stack.db.models.IpnMessage.findById(id).lean();
    // The dispatcher notes the workflow id after the start returns: the workflow may finish first.
    return m && !['received', 'dispatched'].includes(m.state) && m.workflowId ? m : undefined;
  });
}

test(
  'a 1,100-character txn_id is stored and answered 200, ' + 'its workflow runs without it and flags the message',
  async () => {
    const raw = withField(base(), 'txn_id', LONG_TXN);
    const res = await stack.postIpn('shop', raw);
    expect(res.status).toBe(200);
    const stored = await stack.db.models.IpnMessage.findOne({ integrationId: 'shop' }).sort({ _id: -1 }).lean();
    expect(Buffer.from(stored!.raw.buffer).equals(raw)).toBe(true);
    expect(stored!.txnId).toBeUndefined();

    const msg = await settled(stored!._id);
    expect(msg).toMatchObject({ state: 'malformed', flags: ['malformed'] });
    expect(msg.outcome).toMatch(/^txn_id "LA{23}"… \(1100 characters\) is not a PayPal id/);
    expect(Buffer.byteLength(msg.workflowId!)).toBeLessThan(200);
    const described = await stack.client.workflow.getHandle(msg.workflowId!).describe();
    expect(described.typedSearchAttributes.get(IntegrationIdKey)).toBe('shop');
    expect(described.typedSearchAttributes.get(TxnIdKey)).toBeUndefined();
  },
);

test(
  'control characters and over-long codes in any id ' + 'field flag the message malformed before any postback',
  async () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['newline in txn_id', withField(base(), 'txn_id', 'CTRL1%0AX'), /^txn_id "CTRL1\\nX"/],
      ['long parent_txn_id', withTxn('CTRL2', 'parent_txn_id', 'P'.repeat(65)), /^parent_txn_id/],
      ['long payment_status', withTxn('CTRL3', 'payment_status', 'Completed'.repeat(8)), /^payment_status/],
      // NUL becomes U+FFFD when decoded (no store can keep it); still no PayPal id.
      ['NUL in txn_type', withTxn('CTRL4', 'txn_type', 'web%00accept'), /^txn_type "web\uFFFDaccept"/],
    ];
    const postbacks = stack.sim.postbacks.length;
    for (const [what, raw, outcome] of cases) {
      expect((await stack.postIpn('shop', raw)).status).toBe(200);
      const id = (await stack.db.models.IpnMessage.findOne({ integrationId: 'shop' }).sort({ _id: -1 }).lean())!._id;
      const msg = await settled(id);
      expect([what, msg.state, msg.flags]).toEqual([what, 'malformed', ['malformed']]);
      expect(msg.outcome).toMatch(outcome);
      // eslint-disable-next-line no-control-regex -- control characters are what this test looks for
      expect(msg.workflowId).not.toMatch(/[\u0000-\u001f]/);
    }
    expect(stack.sim.postbacks.length).toBe(postbacks);
  },
);

test(
  'a message stored with raw id fields (before these ' + 'checks) still starts, its ids hashed, and is flagged',
  async () => {
    // A control character (not NUL: PostgreSQL under FerretDB cannot store NUL in any string at all).
    const raw = withField(base(), 'txn_id', LONG_TXN);
    const doc = await stack.db.models.IpnMessage.create({
      integrationId: 'shop',
      receivedAt: new Date(),
      raw,
      state: 'received',
      flags: [],
      txnId: LONG_TXN,
      txnType: 'web_accept\u0007',
      paymentStatus: 'Completed'.repeat(200),
    });
    const messageId = String(doc._id);
    const { txnId, txnType, paymentStatus } = doc as { txnId: string; txnType: string; paymentStatus: string };
    const stored = { _id: messageId, integrationId: 'shop', txnId, txnType, paymentStatus };
    const workflowId = await stack.dispatcher.dispatch(stored);
    expect(workflowId).toMatch(new RegExp(`^ipn:shop:invalid-[0-9a-f]{8}:invalid-[0-9a-f]{8}:${messageId}$`));
    const described = await stack.client.workflow.getHandle(workflowId).describe();
    expect(described.typedSearchAttributes.get(TxnIdKey)).toBeUndefined();
    const h = 'invalid-[0-9a-f]{8}';
    expect(await described.staticSummary()).toMatch(new RegExp(`^IPN ${h} ${h} txn ${h}$`));
    expect(await settled(doc._id)).toMatchObject({ state: 'malformed', flags: ['malformed'] });
  },
);
