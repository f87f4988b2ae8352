/**
 * Demo CLI: replays a sample IPN through the PayPal simulator into the running service.
 *
 *   npm run ipn -- send <file|name> [--integration <id>] [--service <url>] [--sim <url>] [--fresh-txn]
 *   npm run ipn -- samples
 *
 * The service and the simulator are found where `npm start` put them: PORT, HOST and PAYPAL_SIM_PORT
 * (the same variables it reads), unless --service / --sim say otherwise.
 *
 * The simulator (not this CLI) posts to the service, so the service sees exactly what PayPal would
 * send, resends included, and its postback verifies.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs as parseNodeArgs } from 'node:util';
import { z } from 'zod';

export const DEFAULT_SERVICE_URL = 'http://127.0.0.1:3000';
export const DEFAULT_SIM_URL = 'http://127.0.0.1:8787';

const Port = z.coerce.number().int().min(1).max(65535);

/** Where `npm start` serves the API and runs the simulator, from the environment it reads (tools/dev/start.ts). */
export function defaultUrls(env: NodeJS.ProcessEnv): { service: string; sim: string } {
  const port = (name: string, fallback: number) => {
    const given = env[name];
    if (!given) return fallback;
    const parsed = Port.safeParse(given);
    if (!parsed.success) throw new UsageError(`${name}=${JSON.stringify(given)} is not a port (1-65535)`);
    return parsed.data;
  };
  // The API listens on HOST (all interfaces by default: then this machine's loopback reaches it).
  const host = env.HOST && !['0.0.0.0', '::'].includes(env.HOST) ? env.HOST : '127.0.0.1';
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  return {
    service: `http://${hostInUrl}:${port('PORT', 3000)}`,
    sim: `http://127.0.0.1:${port('PAYPAL_SIM_PORT', 8787)}`,
  };
}
export const DEFAULT_INTEGRATION = 'demo';
const SAMPLE_EXT = '.ipn';
/** PayPal's sample IPNs, committed with the repository (see its PROVENANCE.md). */
const SAMPLES_IN_REPO = path.join('test', 'fixtures', 'ipn');
const TXN_ID_LENGTH = 17;
const TXN_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export const USAGE = `Usage:
  npm run ipn -- send <file|sample-name> [--integration <id>] [--service <baseUrl>] [--sim <baseUrl>] [--fresh-txn]
  npm run ipn -- samples

  --integration  integration id in ${'`'}/ipn/:integrationId${'`'} (default ${DEFAULT_INTEGRATION})
  --service      ipnflow base URL (default: npm start's, http://127.0.0.1:\${PORT:-3000})
  --sim          PayPal simulator base URL (default: npm start's, http://127.0.0.1:\${PAYPAL_SIM_PORT:-8787})
  --fresh-txn    replace txn_id with a new random id, so the same sample counts as a new payment
Samples are looked up in $IPNFLOW_SAMPLES_DIR, else in the repository's test/fixtures/ipn.`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export type Command =
  | { kind: 'send'; sample: string; integration: string; service: string; sim: string; freshTxn: boolean }
  | { kind: 'samples' }
  | { kind: 'help' };

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Command {
  let parsed: ReturnType<typeof parseCliArgs>;
  try {
    parsed = parseCliArgs(argv);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  const [command, ...rest] = positionals;
  switch (command) {
    case undefined:
    case 'help':
      return { kind: 'help' };
    case 'samples':
      if (rest.length > 0) throw new UsageError(`samples takes no arguments, got: ${rest.join(' ')}`);
      return { kind: 'samples' };
    case 'send': {
      const [sample, ...extra] = rest;
      if (sample === undefined)
        throw new UsageError('send needs a sample file or name, e.g. send web_accept_completed_01');
      if (extra.length > 0) throw new UsageError(`send takes one sample, got extra arguments: ${extra.join(' ')}`);
      const integration = values.integration ?? DEFAULT_INTEGRATION;
      if (integration === '') throw new UsageError('--integration must not be empty');
      return {
        kind: 'send',
        sample,
        integration,
        service: baseUrl('--service', values.service ?? defaultUrls(env).service),
        sim: baseUrl('--sim', values.sim ?? defaultUrls(env).sim),
        freshTxn: values['fresh-txn'] ?? false,
      };
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)} (expected send or samples)`);
  }
}

function parseCliArgs(argv: readonly string[]) {
  return parseNodeArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      integration: { type: 'string' },
      service: { type: 'string' },
      sim: { type: 'string' },
      'fresh-txn': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function baseUrl(flag: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not an absolute URL (e.g. http://127.0.0.1:3000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${flag} ${JSON.stringify(value)} must be an http(s) URL`);
  }
  return url.href.replace(/\/+$/, '');
}

/** A PayPal-shaped transaction id: 17 uppercase alphanumerics, uniformly random. */
export function generateTxnId(): string {
  let id = '';
  for (let i = 0; i < TXN_ID_LENGTH; i++) id += TXN_ID_ALPHABET[randomInt(TXN_ID_ALPHABET.length)];
  return id;
}

interface FieldSpan {
  valueStart: number;
  valueEnd: number;
}

/**
 * Byte offsets of the values of every `name=` field. Works on latin1 text, where one char is one
 * byte, so offsets are byte offsets whatever the message's charset.
 */
function fieldSpans(raw: Buffer, name: string): FieldSpan[] {
  const text = raw.toString('latin1');
  const spans: FieldSpan[] = [];
  let start = 0;
  while (start <= text.length) {
    const amp = text.indexOf('&', start);
    const end = amp === -1 ? text.length : amp;
    if (text.startsWith(`${name}=`, start) && start + name.length < end) {
      spans.push({ valueStart: start + name.length + 1, valueEnd: end });
    }
    if (amp === -1) break;
    start = amp + 1;
  }
  return spans;
}

/** Raw (still percent-encoded) value of the first `name` field. */
export function readField(raw: Buffer, name: string): string | undefined {
  const span = fieldSpans(raw, name)[0];
  return span ? raw.subarray(span.valueStart, span.valueEnd).toString('latin1') : undefined;
}

/**
 * The body with every `name` field's value replaced by `value` (raw, already percent-encoded) and
 * every other byte kept, so it is still a body PayPal could have sent; undefined when no such field.
 */
export function replaceField(raw: Buffer, name: string, value: string): Buffer | undefined {
  const spans = fieldSpans(raw, name);
  if (spans.length === 0) return undefined;
  const parts: Buffer[] = [];
  let cursor = 0;
  for (const span of spans) {
    parts.push(raw.subarray(cursor, span.valueStart), Buffer.from(value, 'latin1'));
    cursor = span.valueEnd;
  }
  parts.push(raw.subarray(cursor));
  return Buffer.concat(parts);
}

/** Swaps the value of `txn_id` (only that field: not parent_txn_id, not masspay_txn_id_N). */
export function replaceTxnId(raw: Buffer, newTxnId: string): { body: Buffer; oldTxnId: string } {
  if (!/^[A-Z0-9]+$/.test(newTxnId))
    throw new RangeError(`new txn_id ${JSON.stringify(newTxnId)} must be uppercase alphanumeric`);
  const oldTxnId = readField(raw, 'txn_id');
  const body = replaceField(raw, 'txn_id', newTxnId);
  if (oldTxnId === undefined || !body) {
    throw new Error(
      'the sample has no txn_id field (lifecycle and masspay messages carry none): --fresh-txn does not apply',
    );
  }
  return { body, oldTxnId };
}

export interface SampleLocation {
  /** Where relative paths are resolved (npm run changes cwd; INIT_CWD keeps the user's). */
  cwd: string;
  env: NodeJS.ProcessEnv;
  repoRoot: string;
}

export function samplesDir(loc: Pick<SampleLocation, 'env' | 'repoRoot'>): string {
  const fromEnv = loc.env.IPNFLOW_SAMPLES_DIR;
  return fromEnv !== undefined && fromEnv !== '' ? path.resolve(fromEnv) : path.resolve(loc.repoRoot, SAMPLES_IN_REPO);
}

export function listSamples(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new Error(`cannot list samples in ${dir} (set IPNFLOW_SAMPLES_DIR?): ${(err as Error).message}`, {
      cause: err,
    });
  }
  return entries
    .filter((f) => f.endsWith(SAMPLE_EXT))
    .map((f) => f.slice(0, -SAMPLE_EXT.length))
    .sort();
}

/** A path (anything with a separator) is taken as is; a bare name is a sample, with or without `.ipn`. */
export function resolveSample(arg: string, loc: SampleLocation): string {
  const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile();
  if (arg.includes('/') || arg.includes('\\')) {
    const p = path.resolve(loc.cwd, arg);
    if (!isFile(p)) throw new Error(`sample file ${p} does not exist`);
    return p;
  }
  const dir = samplesDir(loc);
  for (const candidate of [arg, `${arg}${SAMPLE_EXT}`]) {
    const p = path.join(dir, candidate);
    if (isFile(p)) return p;
  }
  const local = path.resolve(loc.cwd, arg);
  if (isFile(local)) return local;
  let hint = 'run `npm run ipn -- samples` to list them';
  if (existsSync(dir)) {
    const stem = arg.replace(/\.ipn$/, '');
    const close = listSamples(dir).filter((n) => n.includes(stem));
    if (close.length > 0) hint = `did you mean: ${close.slice(0, 5).join(', ')}?`;
  }
  throw new Error(`no sample named ${JSON.stringify(arg)} in ${dir} nor file ${local}; ${hint}`);
}

const deliveryStateSchema = z.object({
  id: z.string(),
  state: z.enum(['pending', 'delivered', 'failed', 'cancelled']),
  nextAttemptAt: z.string().optional(),
  attempts: z.array(
    z.object({
      n: z.number(),
      at: z.string(),
      resend: z.boolean(),
      status: z.number().optional(),
      error: z.string().optional(),
      durationMs: z.number(),
    }),
  ),
});
type DeliveryStateJson = z.infer<typeof deliveryStateSchema>;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  repoRoot: string;
  /** How often to poll the simulator for the delivery outcome. */
  pollMs: number;
}

class SimulatorClient {
  constructor(private readonly base: string) {}

  async request(method: string, urlPath: string, json?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${urlPath}`, {
        method,
        ...(json === undefined ? {} : { body: JSON.stringify(json), headers: { 'Content-Type': 'application/json' } }),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(
        `PayPal simulator not reachable at ${this.base} ` +
          `(${cause?.code ?? cause?.message ?? (err as Error).message}): ` +
          'run `npm start` first (it starts the simulator, on PAYPAL_SIM_PORT), or point --sim at a running one',
        { cause: err },
      );
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(
        `${method} ${this.base}${urlPath} answered ${res.status} with ` +
          `non-JSON (is --sim really the simulator?): ${text.slice(0, 200)}`,
      );
    }
    if (!res.ok) {
      const message = (body as { error?: unknown }).error;
      throw new Error(
        `${method} ${this.base}${urlPath} failed with ${res.status}: ` +
          `${typeof message === 'string' ? message : text.slice(0, 500)}`,
      );
    }
    return body;
  }
}

function describeAttempt(a: DeliveryStateJson['attempts'][number]): string {
  const outcome = a.status !== undefined ? `HTTP ${a.status}` : `error: ${a.error ?? 'unknown'}`;
  return `  attempt ${a.n}${a.resend ? ' (resend=true)' : ''}  ${a.at}  ${outcome}  ${a.durationMs} ms`;
}

async function send(cmd: Extract<Command, { kind: 'send' }>, io: CliIo): Promise<number> {
  const file = resolveSample(cmd.sample, io);
  let body: Buffer = readFileSync(file);
  let txnId = readField(body, 'txn_id');
  if (cmd.freshTxn) {
    const fresh = replaceTxnId(body, generateTxnId());
    body = fresh.body;
    io.out(`txn_id ${fresh.oldTxnId} replaced by ${readField(body, 'txn_id') ?? '?'}`);
    txnId = readField(body, 'txn_id');
  }
  const listenerUrl = `${cmd.service}/ipn/${encodeURIComponent(cmd.integration)}`;
  const sim = new SimulatorClient(cmd.sim);
  const started = z
    .object({ id: z.string() })
    .parse(await sim.request('POST', '/sim/ipn', { listenerUrl, bodyBase64: body.toString('base64') }));
  io.out(
    `sending ${path.basename(file)} (${body.length} bytes, txn_id ` +
      `${txnId ?? '(none)'}) to ${listenerUrl} via ${cmd.sim} [delivery ${started.id}]`,
  );

  let shown = 0;
  let announcedNext: string | undefined;
  for (;;) {
    const state = deliveryStateSchema.parse(
      await sim.request('GET', `/sim/deliveries/${encodeURIComponent(started.id)}`),
    );
    for (const a of state.attempts.slice(shown)) io.out(describeAttempt(a));
    shown = state.attempts.length;
    if (state.state !== 'pending') {
      const verdict =
        state.state === 'delivered'
          ? 'delivered'
          : state.state === 'failed'
            ? 'NOT delivered (PayPal gave up)'
            : 'cancelled';
      io.out(`${verdict} after ${state.attempts.length} attempt(s); txn_id ${txnId ?? '(none)'}`);
      return state.state === 'delivered' ? 0 : 1;
    }
    if (state.nextAttemptAt !== undefined && state.nextAttemptAt !== announcedNext) {
      announcedNext = state.nextAttemptAt;
      io.out(`  next resend at ${state.nextAttemptAt} (Ctrl-C stops watching; the simulator keeps resending)`);
    }
    await new Promise((r) => setTimeout(r, io.pollMs));
  }
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const cmd = parseArgs(argv, io.env);
    switch (cmd.kind) {
      case 'help':
        io.out(USAGE);
        return 0;
      case 'samples':
        for (const name of listSamples(samplesDir(io))) io.out(name);
        return 0;
      case 'send':
        return await send(cmd, io);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    io.err(`ipn: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    cwd: process.env.INIT_CWD ?? process.cwd(),
    repoRoot: path.resolve(__dirname, '..', '..'),
    pollMs: 250,
  }).then((code) => {
    process.exitCode = code;
  });
}
