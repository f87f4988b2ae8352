import crypto from 'node:crypto';
import { Types } from 'mongoose';
import { dropSettledRawBodies } from '../../src/retention/raw-bodies';
import { ensureRawRetentionSchedule, rawRetentionScheduleId } from '../../src/retention/schedule';
import { rawBodyRetention } from '../../workflows/retention';
import { createTestStack, deliverIpn, sample, withFields, type TestStack } from '../support/stack';

/**
 * Finding 7: every configuration change is audited (who, before and after, only what changed and
 * never a person's name), and raw IPN bodies of settled messages are not kept forever.
 */
let stack: TestStack;
const INT = 'cfg';
const SHOP = {
  name: 'Config shop',
  mode: 'sandbox',
  allowedCurrencies: ['USD'],
  receiverEmails: ['seller@paypalsandbox.com'],
};

const auditOf = async (filter: Record<string, unknown>) =>
  (await stack.db.models.AuditEvent.find(filter).sort({ _id: 1 }).lean()).map(({ _id: _a, at: _b, ...e }) => e);

beforeAll(async () => {
  stack = await createTestStack('audit-retention');
});
afterAll(() => stack?.close());

describe('configuration changes are audited', () => {
  test('an integration edit: who, and before/after of only the fields that changed', async () => {
    expect(await stack.admin('PUT', `/admin/integrations/${INT}`, { ...SHOP, operator: 'alice' })).toMatchObject({
      status: 200,
    });
    const edit = {
      ...SHOP,
      receiverEmails: ['thief@example.com'],
      verifyTransaction: false,
      nvpCredentialsEnv: 'OTHER_ACCOUNT',
      operator: 'mallory',
    };
    expect(await stack.admin('PUT', `/admin/integrations/${INT}`, edit)).toMatchObject({ status: 200 });
    // The same body again changes nothing: nothing to audit.
    expect(await stack.admin('PUT', `/admin/integrations/${INT}`, edit)).toMatchObject({ status: 200 });
    // Without an operator field the entry names the operator whose key made the change (the helper's admin).
    expect(
      await stack.admin('PUT', `/admin/integrations/${INT}`, { ...edit, operator: undefined, name: 'Renamed' }),
    ).toMatchObject({ status: 200 });

    const entries = await auditOf({ integrationId: INT });
    expect(entries).toHaveLength(3);
    expect(entries[0]).toMatchObject({
      actor: 'alice',
      action: 'integration_created',
      details: { after: { name: 'Config shop', mode: 'sandbox', receiverEmails: ['seller@paypalsandbox.com'] } },
    });
    expect(entries[0]!.details).not.toHaveProperty('before');
    expect(entries[1]).toEqual({
      actor: 'mallory',
      action: 'integration_updated',
      integrationId: INT,
      details: {
        changed: ['verifyTransaction', 'receiverEmails', 'nvpCredentialsEnv'],
        before: { verifyTransaction: true, receiverEmails: ['seller@paypalsandbox.com'], nvpCredentialsEnv: null },
        after: { verifyTransaction: false, receiverEmails: ['thief@example.com'], nvpCredentialsEnv: 'OTHER_ACCOUNT' },
      },
    });
    expect(entries[2]).toMatchObject({
      actor: 'testadmin',
      details: { changed: ['name'], before: { name: 'Config shop' }, after: { name: 'Renamed' } },
    });
    // Readable through the admin API too.
    const listed = (await stack.admin('GET', `/admin/audit?integrationId=${INT}`)).body as Array<{ action: string }>;
    expect(listed.map((e) => e.action)).toEqual(['integration_created', 'integration_updated', 'integration_updated']);
  });

  test('a mode change is audited; a refused edit writes nothing', async () => {
    await stack.admin('PUT', `/admin/integrations/${INT}`, { ...SHOP, mode: 'live', operator: 'bob' });
    expect((await auditOf({ integrationId: INT })).at(-1)).toMatchObject({
      actor: 'bob',
      details: { before: { mode: 'sandbox' }, after: { mode: 'live' } },
    });
    const count = await stack.db.models.AuditEvent.countDocuments({});
    const refused = await stack.admin('PUT', `/admin/integrations/${INT}`, {
      ...SHOP,
      mode: 'live',
      verifyTransaction: false,
      operator: 'bob',
    });
    expect(refused.status).toBe(400);
    expect(await stack.db.models.AuditEvent.countDocuments({})).toBe(count);
  });

  test('a customer edit: paypalEmails before/after, the name only as changed', async () => {
    const path = '/admin/customers/c-cfg';
    await stack.admin('PUT', path, { name: 'Jane Payer', paypalEmails: ['jane@example.com'], operator: 'alice' });
    await stack.admin('PUT', path, { name: 'Jane Q. Payer', paypalEmails: ['mallory@example.com'], operator: 'eve' });
    const entries = await auditOf({ customerId: 'c-cfg' });
    expect(entries).toEqual([
      {
        actor: 'alice',
        action: 'customer_created',
        customerId: 'c-cfg',
        details: { changed: ['name', 'paypalEmails'], after: { paypalEmails: ['jane@example.com'] } },
      },
      {
        actor: 'eve',
        action: 'customer_updated',
        customerId: 'c-cfg',
        details: {
          changed: ['name', 'paypalEmails'],
          before: { paypalEmails: ['jane@example.com'] },
          after: { paypalEmails: ['mallory@example.com'] },
        },
      },
    ]);
    expect(JSON.stringify(entries)).not.toMatch(/Payer/);
  });
});

describe('raw bodies of settled messages are not kept forever', () => {
  const CUSTOMER = 'c-ret';
  const BASE = sample('web_accept_completed_ipn_simulator_01');
  const DAY = 86_400_000;
  /** One full pass as the scheduled workflow runs it, as of `now`. */
  async function sweep(now: Date, retentionDays = 400) {
    let after: string | null = null;
    const total = { dropped: 0, stamped: 0 };
    do {
      const r = await dropSettledRawBodies(stack.db.models, { after, now, retentionDays, maxDocs: 2 });
      total.dropped += r.dropped;
      total.stamped += r.stamped;
      after = r.next;
    } while (after);
    return total;
  }

  test('a settled body is emptied after the retention, a held one is kept, pending ones too', async () => {
    await stack.admin('PUT', '/admin/integrations/ret', { ...SHOP, operator: 'alice' });
    await stack.admin('PUT', `/admin/customers/${CUSTOMER}`, { name: 'R', paypalEmails: ['buyer@paypalsandbox.com'] });
    const creditedRaw = withFields(BASE, { txn_id: 'RET-CREDITED' });
    const credited = await deliverIpn(stack, 'ret', creditedRaw);
    expect(credited).toMatchObject({ state: 'applied:credited', outcomeAt: expect.any(Date) });
    const heldRaw = withFields(BASE, { txn_id: 'RET-HELD', payer_email: 'stranger%40example.com' });
    const held = await deliverIpn(stack, 'ret', heldRaw);
    expect(held.state).toBe('applied:held');
    // A settled message from before outcomeAt existed, and one still waiting for dispatch.
    const legacy = await stack.db.models.IpnMessage.create({
      _id: Types.ObjectId.createFromTime(Math.floor((Date.now() - 900 * DAY) / 1000)),
      integrationId: 'ret',
      receivedAt: new Date(Date.now() - 900 * DAY),
      raw: Buffer.from('txn_id=RET-LEGACY'),
      state: 'duplicate',
    });
    const pending = await stack.db.models.IpnMessage.create({
      _id: Types.ObjectId.createFromTime(Math.floor((Date.now() - 899 * DAY) / 1000)),
      integrationId: 'ret',
      receivedAt: new Date(Date.now() - 899 * DAY),
      raw: Buffer.from('txn_id=RET-PENDING'),
      state: 'received',
    });

    // Within the retention nothing goes.
    expect(await sweep(new Date(Date.now() + 399 * DAY))).toEqual({ dropped: 0, stamped: 1 });
    // 401 days on: the credited body goes; the held payment's, the unsettled one's and the one
    // whose retention only started at the last sweep stay.
    expect(await sweep(new Date(Date.now() + 401 * DAY))).toEqual({ dropped: 1, stamped: 0 });

    const raw = async (id: unknown) => Buffer.from((await stack.db.models.IpnMessage.findById(id).lean())!.raw.buffer);
    expect(await stack.db.models.IpnMessage.findById(credited._id).lean()).toMatchObject({
      state: 'applied:credited',
      txnId: 'RET-CREDITED',
      routedEvent: expect.objectContaining({ txnId: 'RET-CREDITED' }),
      rawBytes: creditedRaw.length,
      rawSha256: crypto.createHash('sha256').update(creditedRaw).digest('hex'),
      rawDroppedAt: expect.any(Date),
    });
    expect((await raw(credited._id)).length).toBe(0);
    expect((await raw(held._id)).equals(heldRaw)).toBe(true);
    expect((await raw(pending._id)).toString()).toBe('txn_id=RET-PENDING');
    expect((await raw(legacy._id)).toString()).toBe('txn_id=RET-LEGACY');
    // The dedup claim of the emptied message stays: PayPal's resend is still a duplicate.
    expect(await stack.db.models.IpnClaim.findById('ret:RET-CREDITED:Completed').lean()).toMatchObject({
      messageId: String(credited._id),
    });
    const shown = await stack.admin('GET', `/admin/messages/${String(credited._id)}`);
    expect(shown.body).toMatchObject({ raw: '', rawDroppedAt: expect.any(String) });
  });

  test('the daily schedule exists and its workflow sweeps on the real worker', async () => {
    await ensureRawRetentionSchedule(stack.client, stack.config);
    await ensureRawRetentionSchedule(stack.client, stack.config); // again: already there, no error
    const schedule = stack.client.schedule.getHandle(rawRetentionScheduleId(stack.config));
    try {
      const described = await schedule.describe();
      expect(described.spec.intervals).toEqual([expect.objectContaining({ every: 86_400_000 })]);
      expect(described.action).toMatchObject({ workflowType: 'rawBodyRetention' });
      const result = await stack.client.workflow.execute(rawBodyRetention, {
        workflowId: `retention-now-${Date.now()}`,
        taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
        args: [{}],
      });
      // As of now (400 days), nothing settled is that old; the pass saw only the backdated messages.
      expect(result).toEqual({ dropped: 0, stamped: 0, scanned: 2 });
    } finally {
      await schedule.delete();
    }
  });
});
