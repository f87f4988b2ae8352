import { z } from 'zod';

const LIVE_VERIFY_URL = 'https://ipnpb.paypal.com/cgi-bin/webscr';
const SANDBOX_VERIFY_URL = 'https://ipnpb.sandbox.paypal.com/cgi-bin/webscr';

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();

/** Every environment variable the service reads. Defaults only where a wrong guess cannot lose money. */
export const ConfigSchema = z.object({
  PORT: port.default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** Base URL PayPal reaches us at; shown as each integration's IPN URL. */
  PUBLIC_BASE_URL: z.url().optional(),
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'expected host:port')
    .default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('ipnflow'),
  MONGODB_URI: z.string().regex(/^mongodb(\+srv)?:\/\//, 'expected a mongodb:// or mongodb+srv:// URI'),
  /** Database name when the URI names none. */
  MONGODB_DB: z.string().min(1).default('ipnflow'),
  /**
   * Break-glass only: whoever holds it may manage operators and read, never decide about money. Every
   * other admin request is an operator's own key (see src/operators). Optional; the worker never sees it.
   */
  ADMIN_TOKEN: z
    .string()
    .min(24, 'must be at least 24 characters (generate one with `openssl rand -hex 32`)')
    .optional(),
  /**
   * The key that encrypts every operator's TOTP secret at rest (AES-256-GCM): 32 bytes as 64 hex
   * characters or base64. Required by the API server, the operator CLI and the worker (Web UI decisions carry codes).
   */
  OPERATOR_SECRETS_KEY: z
    .string()
    .refine((v) => secretKeyBytes(v) !== null, 'must be 32 bytes: 64 hex characters or base64 (openssl rand -hex 32)')
    .optional(),
  /**
   * Workflow histories encrypted (AES-256-GCM payload codec): `<id>:<64 hex>[,<id>:<64 hex>…]`, every key
   * that may have written a payload; TEMPORAL_CODEC_KEY_ID is the one new payloads use (default: the first).
   * Rotation: add a key, switch the id, keep the old one while histories written with it are retained.
   * API and worker need the same keys. Unset: payloads are plain (histories before the codec read either way).
   */
  TEMPORAL_CODEC_KEYS: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,40}:[0-9a-fA-F]{64}(,[A-Za-z0-9_.-]{1,40}:[0-9a-fA-F]{64})*$/, 'expected <id>:<64 hex>,…')
    .optional(),
  TEMPORAL_CODEC_KEY_ID: z.string().min(1).max(40).optional(),
  /** Origins (comma-separated) of Temporal Web UIs allowed to call the codec server (/codec) from a browser. */
  TEMPORAL_UI_ORIGINS: z.string().optional(),
  /**
   * The TOTP step in seconds. Leave it at 30: authenticator apps use 30 whatever the URI says. The test
   * stack shortens it so one test operator can decide more than three times in 30 s.
   */
  OPERATOR_TOTP_PERIOD_SECONDS: positiveInt.max(60).default(30),
  /** Failed second-factor codes in a row that lock an operator's decisions, and for how long. */
  OPERATOR_OTP_MAX_FAILURES: positiveInt.default(5),
  OPERATOR_OTP_LOCK_SECONDS: positiveInt.default(15 * 60),
  /** Failed admin API keys per client address per window; over it, 429 until the window ends. */
  ADMIN_KEY_FAILURE_POINTS: positiveInt.default(10),
  ADMIN_KEY_FAILURE_WINDOW_SECONDS: positiveInt.default(60),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** A Mass Pay IPN carries every item of its batch: about 625 KB for PayPal's 5,000-item maximum. */
  IPN_MAX_BODY_BYTES: positiveInt.max(4 * 1024 * 1024).default(1024 * 1024),
  /**
   * Slow clients (a held-open connection costs a socket): the time allowed for a request's headers,
   * and for the whole request, body included (PayPal sends at once; 1 MiB at 1 Mbit/s takes 8 s).
   */
  HTTP_HEADERS_TIMEOUT_MS: positiveInt.default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: positiveInt.default(20_000),
  /**
   * POST /ipn per client address (see ipn/rate-limit.ts): points per window, a request costing 1 plus
   * 1 per 64 KiB it declares. Over it: 429 with Retry-After, nothing read or stored; PayPal resends.
   */
  IPN_RATE_LIMIT_POINTS: positiveInt.default(600),
  IPN_RATE_LIMIT_WINDOW_SECONDS: positiveInt.default(10),
  /**
   * Sandbox postback URL. Only tests and the dev stack point it at our simulator;
   * live postbacks always go to PayPal's own host, which no setting can change.
   */
  PAYPAL_SANDBOX_VERIFY_URL: z.url().default(SANDBOX_VERIFY_URL),
  /** After this long without a VERIFIED/INVALID answer a message is parked for an operator. */
  IPN_VERIFY_GIVE_UP_SECONDS: positiveInt.default(24 * 3600),
  /** The outbox relay starts workflows for stored messages the request path did not get to. */
  OUTBOX_RELAY_INTERVAL_MS: positiveInt.default(2_000),
  OUTBOX_RELAY_GRACE_MS: z.coerce.number().int().min(0).default(5_000),
  /** A payment workflow with nothing to wait for closes after this long idle; a later IPN restarts it. */
  PAYMENT_IDLE_CLOSE_SECONDS: positiveInt.default(3_600),
  /** A refund or reversal of a payment we never saw credited shows in /admin/held after this long. */
  ORPHAN_ADJUSTMENT_GRACE_SECONDS: positiveInt.default(3 * 24 * 3_600),
  /** PayPal's sandbox NVP endpoint; tests point it at the simulator. Live calls always go to PayPal's own host. */
  PAYPAL_SANDBOX_NVP_URL: z.url().default('https://api-3t.sandbox.paypal.com/nvp'),
  /** PayPal's sandbox REST host (Payouts, OAuth2, webhook certificates); live always goes to PayPal's own host. */
  PAYPAL_SANDBOX_REST_URL: z.url().default('https://api-m.sandbox.paypal.com'),
  /**
   * A batch sent through Payouts REST asks PayPal for its items this often until every item is final:
   * the backstop for webhooks that never come.
   */
  PAYOUTS_POLL_SECONDS: positiveInt.default(30 * 60),
  /**
   * The webhook door answers 429 to a client once it made this many POSTs the door refused unstored
   * (unknown integration, too large, not JSON) within the window; webhooks it can store never count
   * (see src/webhooks/door-limit.ts).
   */
  WEBHOOK_REFUSED_POINTS: positiveInt.default(30),
  WEBHOOK_REFUSED_WINDOW_SECONDS: positiveInt.default(60),
  /** How often a recurring profile asks PayPal for its details (GetRecurringPaymentsProfileDetails). */
  RECURRING_REFRESH_SECONDS: positiveInt.default(24 * 3_600),
  /** A profile whose outstanding balance exceeds this many cycles' amount is shown to a person. */
  RECURRING_OUTSTANDING_ALERT_CYCLES: positiveInt.default(3),
  /** A submitted Mass Pay batch with no Processed IPN after this long shows in /admin/held. */
  MASSPAY_PROCESSED_DEADLINE_SECONDS: positiveInt.default(48 * 3_600),
  /** ...and with no Completed IPN after this long (PayPal returns unclaimed items after 30 days). */
  MASSPAY_COMPLETED_DEADLINE_SECONDS: positiveInt.default(35 * 24 * 3_600),
  /**
   * Raw IPN bodies of messages settled longer ago than this are emptied (their parsed fields, length
   * and SHA-256 stay); pending, parked and held messages keep theirs. Swept daily by a Temporal Schedule.
   */
  RAW_BODY_RETENTION_DAYS: positiveInt.default(400),
  /** Before this long after submission, resolving a Mass Pay item to a releasing state needs a second operator. */
  MASSPAY_RELEASE_WAIT_SECONDS: positiveInt.default(7 * 24 * 3_600),
  /**
   * Where a sandbox Express Checkout buyer is sent to approve (`?cmd=_express-checkout&token=EC-…`);
   * tests point it at the simulator. Live always goes to www.paypal.com.
   */
  PAYPAL_SANDBOX_WEBSCR_URL: z.url().default('https://www.sandbox.paypal.com/cgi-bin/webscr'),
  /** A top-up whose buyer never approved is given up after this long (PayPal's EC token lives 3 h). */
  TOPUP_EXPIRY_SECONDS: positiveInt.max(3 * 3_600).default(3_600),
  /** While the buyer is away or a capture is pending, a top-up asks PayPal this often. */
  TOPUP_POLL_SECONDS: positiveInt.default(60),
  /** How long a hosted top-up page link works. */
  TOPUP_LINK_TTL_SECONDS: positiveInt.default(24 * 3_600),
  /**
   * The key signing hosted top-up links and their forms' CSRF tokens (32 bytes, hex or base64).
   * Unset: derived from OPERATOR_SECRETS_KEY (HKDF, its own label), so a deployment needs no new secret.
   */
  TOPUP_LINK_KEY: z
    .string()
    .refine((v) => secretKeyBytes(v) !== null, 'must be 32 bytes: 64 hex characters or base64 (openssl rand -hex 32)')
    .optional(),
  /** Only to choose ALLOW_SANDBOX_INTEGRATIONS' default (the Dockerfile sets production). */
  NODE_ENV: z.string().optional(),
  /**
   * Sandbox integrations take PayPal test payments, which anyone can send with PayPal's IPN
   * Simulator, and may skip verification; their money is kept apart from live money, but a
   * deployment has no use for them. Default: true only when NODE_ENV is development or test (an
   * unset NODE_ENV is a deployment that forgot to say, not a developer); `npm start` and the test
   * stack turn it on explicitly.
   */
  ALLOW_SANDBOX_INTEGRATIONS: z.stringbool().optional(),
});

export type Config = Omit<z.infer<typeof ConfigSchema>, 'ALLOW_SANDBOX_INTEGRATIONS'> & {
  ALLOW_SANDBOX_INTEGRATIONS: boolean;
  paypalLiveVerifyUrl: string;
};

/** Never echoed back in a configuration error, even malformed. */
const SECRET_VARIABLES = [
  'ADMIN_TOKEN',
  'MONGODB_URI',
  'OPERATOR_SECRETS_KEY',
  'TEMPORAL_CODEC_KEYS',
  'TOPUP_LINK_KEY',
];

/** A 32-byte key written as 64 hex characters or as base64, or null. */
export function secretKeyBytes(text: string): Buffer | null {
  const bytes = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  return bytes.length === 32 ? bytes : null;
}

export class ConfigError extends Error {
  constructor(readonly problems: Array<{ variable: string; message: string }>) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof z.input<typeof ConfigSchema>, string>> = {},
): Config {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(ConfigSchema.shape)) input[key] = env[key] === '' ? undefined : env[key];
  for (const [key, value] of Object.entries(overrides)) input[key] = value === '' ? undefined : value;
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? '?');
        const given = input[variable];
        // Never echo a secret back, even a malformed one.
        const shown =
          SECRET_VARIABLES.includes(variable) || given === undefined ? '' : ` (got ${JSON.stringify(given)})`;
        return { variable, message: `${given === undefined ? 'is required' : issue.message}${shown}` };
      }),
    );
  }
  const allowSandbox =
    parsed.data.ALLOW_SANDBOX_INTEGRATIONS ?? ['development', 'test'].includes(parsed.data.NODE_ENV ?? '');
  return { ...parsed.data, ALLOW_SANDBOX_INTEGRATIONS: allowSandbox, paypalLiveVerifyUrl: LIVE_VERIFY_URL };
}

/** The key for operators' TOTP secrets, for processes that serve the admin API or manage operators. */
export function requireOperatorSecretsKey(config: Config): Buffer {
  const key = config.OPERATOR_SECRETS_KEY ? secretKeyBytes(config.OPERATOR_SECRETS_KEY) : null;
  if (!key)
    throw new ConfigError([
      {
        variable: 'OPERATOR_SECRETS_KEY',
        message: 'is required to serve the admin API (32 bytes, e.g. `openssl rand -hex 32`)',
      },
    ]);
  return key;
}

export function publicBaseUrl(config: Config): string {
  return config.PUBLIC_BASE_URL ?? `http://localhost:${config.PORT}`;
}
