import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_SERVICE_URL,
  DEFAULT_SIM_URL,
  generateTxnId,
  listSamples,
  main,
  parseArgs,
  readField,
  replaceTxnId,
  resolveSample,
  samplesDir,
  UsageError,
  type CliIo,
} from '../../tools/cli/ipn';
import { startPayPalSimulator } from '../../tools/paypal-sim';
import { SAMPLES_DIR, sample } from '../support/samples';

const REPO_ROOT = path.resolve(__dirname, '../..');
const loc = { cwd: REPO_ROOT, env: { IPNFLOW_SAMPLES_DIR: SAMPLES_DIR }, repoRoot: REPO_ROOT };

describe('parseArgs', () => {
  it('applies defaults for send', () => {
    expect(parseArgs(['send', 'web_accept_completed_01'])).toEqual({
      kind: 'send',
      sample: 'web_accept_completed_01',
      integration: 'demo',
      service: DEFAULT_SERVICE_URL,
      sim: DEFAULT_SIM_URL,
      freshTxn: false,
    });
  });

  it('reads every option, in both --opt value and --opt=value forms', () => {
    expect(
      parseArgs([
        'send',
        'x.ipn',
        '--integration',
        'acme',
        '--service=http://localhost:4000/',
        '--sim',
        'http://127.0.0.1:9999',
        '--fresh-txn',
      ]),
    ).toEqual({
      kind: 'send',
      sample: 'x.ipn',
      integration: 'acme',
      service: 'http://localhost:4000',
      sim: 'http://127.0.0.1:9999',
      freshTxn: true,
    });
    expect(parseArgs(['samples'])).toEqual({ kind: 'samples' });
    expect(parseArgs([])).toEqual({ kind: 'help' });
  });

  it("finds npm start's service and simulator from the variables npm start reads; flags still win", () => {
    const env = { PORT: '4123', PAYPAL_SIM_PORT: '9123' };
    expect(parseArgs(['send', 'x'], env)).toMatchObject({
      service: 'http://127.0.0.1:4123',
      sim: 'http://127.0.0.1:9123',
    });
    expect(parseArgs(['send', 'x'], { ...env, HOST: '0.0.0.0' })).toMatchObject({ service: 'http://127.0.0.1:4123' });
    expect(parseArgs(['send', 'x'], { ...env, HOST: '::1' })).toMatchObject({ service: 'http://[::1]:4123' });
    expect(parseArgs(['send', 'x', '--service', 'http://h:1', '--sim', 'http://s:2'], env)).toMatchObject({
      service: 'http://h:1',
      sim: 'http://s:2',
    });
    expect(() => parseArgs(['send', 'x'], { PORT: 'http' })).toThrow('PORT="http" is not a port');
    expect(() => parseArgs(['send', 'x'], { PAYPAL_SIM_PORT: '70000' })).toThrow(UsageError);
  });

  it.each([
    [['send'], /needs a sample/],
    [['send', 'a', 'b'], /extra arguments/],
    [['send', 'a', '--bogus'], /bogus/],
    [['send', 'a', '--service', 'localhost:3000'], /--service/],
    [['send', 'a', '--sim', 'ftp://x'], /--sim/],
    [['send', 'a', '--integration', ''], /--integration/],
    [['launch'], /unknown command/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(UsageError);
    expect(() => parseArgs(argv)).toThrow(message);
  });
});

describe('--fresh-txn', () => {
  it('replaces only the txn_id value bytes; everything else, parent_txn_id included, stays byte-exact', () => {
    const raw = sample('reversal_chargeback_ipn_simulator_01');
    const newId = generateTxnId();
    const { body, oldTxnId } = replaceTxnId(raw, newId);
    expect(oldTxnId).toBe(readField(raw, 'txn_id'));
    expect(readField(body, 'txn_id')).toBe(newId);
    expect(readField(body, 'parent_txn_id')).toBe(readField(raw, 'parent_txn_id'));

    const fieldAt = raw.indexOf('&txn_id=', 0, 'latin1');
    expect(fieldAt).toBeGreaterThan(0);
    const valueStart = fieldAt + '&txn_id='.length;
    expect(body.length).toBe(raw.length - oldTxnId.length + newId.length);
    expect(body.subarray(0, valueStart).equals(raw.subarray(0, valueStart))).toBe(true);
    expect(body.subarray(valueStart + newId.length).equals(raw.subarray(valueStart + oldTxnId.length))).toBe(true);
  });

  it('keeps non-ASCII percent-encoded bytes of a windows-1252 message intact', () => {
    const raw = sample('express_checkout_completed_windows1252_01');
    const { body, oldTxnId } = replaceTxnId(raw, 'ABCDEFGHJKLMNPQRS');
    const back = replaceTxnId(body, oldTxnId).body;
    expect(back.equals(raw)).toBe(true);
    expect(body.toString('latin1')).toContain('first_name=J%F6rg');
    expect(body.equals(raw)).toBe(false);
  });

  it('does not touch a field that merely ends in txn_id, and refuses messages without txn_id', () => {
    const raw = Buffer.from('parent_txn_id=AAA&masspay_txn_id_1=BBB&txn_id=CCC&x=txn_id=DDD');
    expect(replaceTxnId(raw, 'NEW').body.toString()).toBe(
      'parent_txn_id=AAA&masspay_txn_id_1=BBB&txn_id=NEW&x=txn_id=DDD',
    );
    expect(replaceTxnId(Buffer.from('txn_id=OLD&a=b'), 'NEW').body.toString()).toBe('txn_id=NEW&a=b');
    expect(() => replaceTxnId(sample('masspay_completed_01'), 'NEW')).toThrow(/no txn_id field/);
  });

  it('generates 17-char uppercase alphanumeric ids', () => {
    const ids = Array.from({ length: 50 }, generateTxnId);
    for (const id of ids) expect(id).toMatch(/^[A-Z0-9]{17}$/);
    expect(new Set(ids).size).toBe(50);
  });
});

describe('sample resolution', () => {
  it('finds bare names with or without .ipn, paths, and honours IPNFLOW_SAMPLES_DIR', () => {
    const expected = path.join(SAMPLES_DIR, 'subscr_signup_01.ipn');
    expect(resolveSample('subscr_signup_01', loc)).toBe(expected);
    expect(resolveSample('subscr_signup_01.ipn', loc)).toBe(expected);
    expect(resolveSample(expected, loc)).toBe(expected);
    // Default location: the fixtures committed in the repository.
    const fixtures = path.join(REPO_ROOT, 'test', 'fixtures', 'ipn');
    expect(resolveSample('subscr_signup_01', { ...loc, env: {} })).toBe(path.join(fixtures, 'subscr_signup_01.ipn'));
    expect(samplesDir({ env: {}, repoRoot: REPO_ROOT })).toBe(fixtures);
    expect(samplesDir({ env: { IPNFLOW_SAMPLES_DIR: '' }, repoRoot: REPO_ROOT })).toBe(fixtures);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'ipn-samples-'));
    writeFileSync(path.join(dir, 'mine.ipn'), 'txn_id=X');
    expect(resolveSample('mine', { ...loc, env: { IPNFLOW_SAMPLES_DIR: dir } })).toBe(path.join(dir, 'mine.ipn'));
    expect(resolveSample('./mine.ipn', { ...loc, cwd: dir })).toBe(path.join(dir, 'mine.ipn'));
    expect(listSamples(dir)).toEqual(['mine']);
  });

  it('explains a miss and suggests close names', () => {
    expect(() => resolveSample('web_accept', loc)).toThrow(/did you mean: web_accept_completed_01/);
    expect(() => resolveSample('./nope.ipn', loc)).toThrow(/does not exist/);
    expect(listSamples(SAMPLES_DIR)).toContain('mp_notification_billing_agreement_shift_jis_01');
  });
});

describe('main', () => {
  function io(): CliIo & { lines: string[]; errors: string[] } {
    const lines: string[] = [];
    const errors: string[] = [];
    return {
      lines,
      errors,
      out: (l) => lines.push(l),
      err: (l) => errors.push(l),
      env: loc.env,
      cwd: REPO_ROOT,
      repoRoot: REPO_ROOT,
      pollMs: 5,
    };
  }

  it('sends a sample through the simulator with a fresh txn_id, waits for the outcome and prints it', async () => {
    const sim = await startPayPalSimulator({ timeScale: 1e-6 });
    const received: Array<{ url: string; body: Buffer }> = [];
    let calls = 0;
    const service = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ url: req.url ?? '', body: Buffer.concat(chunks) });
        res.writeHead(++calls === 1 ? 503 : 200).end();
      });
    });
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    const serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
    try {
      const out = io();
      const code = await main(
        [
          'send',
          'web_accept_completed_01',
          '--fresh-txn',
          '--integration',
          'acme',
          '--service',
          serviceUrl,
          '--sim',
          sim.url,
        ],
        out,
      );
      expect(out.errors).toEqual([]);
      expect(code).toBe(0);
      expect(received.map((r) => r.url)).toEqual(['/ipn/acme', '/ipn/acme']);

      const raw = sample('web_accept_completed_01');
      const sent = received[0]?.body ?? Buffer.alloc(0);
      const newId = readField(sent, 'txn_id') ?? '';
      expect(newId).toMatch(/^[A-Z0-9]{17}$/);
      expect(newId).not.toBe(readField(raw, 'txn_id'));
      expect(replaceTxnId(sent, readField(raw, 'txn_id') ?? '').body.equals(raw)).toBe(true);
      expect(out.lines.join('\n')).toContain(newId);
      expect(out.lines.some((l) => /attempt 2 \(resend=true\).*HTTP 200/.test(l))).toBe(true);
      expect(out.lines.at(-1)).toMatch(/^delivered after 2 attempt\(s\); txn_id [A-Z0-9]{17}$/);
    } finally {
      service.closeAllConnections();
      await new Promise((r) => service.close(r));
      await sim.close();
    }
  });

  it('tells the user to run npm start when the simulator is not running', async () => {
    const sim = await startPayPalSimulator();
    const deadUrl = sim.url;
    await sim.close();
    const out = io();
    const code = await main(['send', 'web_accept_completed_01', '--sim', deadUrl], out);
    expect(code).toBe(1);
    expect(out.errors.join('\n')).toMatch(/not reachable.*run `npm start` first/);
  });

  it('lists samples and reports usage errors with exit code 2', async () => {
    const out = io();
    expect(await main(['samples'], out)).toBe(0);
    expect(out.lines).toEqual(listSamples(SAMPLES_DIR));
    expect(out.lines.length).toBeGreaterThan(20);
    const bad = io();
    expect(await main(['send'], bad)).toBe(2);
    expect(bad.errors.join('\n')).toMatch(/Usage:/);
  });
});
