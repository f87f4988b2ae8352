/** One-shot misbehaviour of the verification endpoint, consumed FIFO, one per postback request. */
export type Fault =
  /** Answer correctly, but only after `ms` real milliseconds (not scaled): exercises the listener's postback
   *  timeout. */
  | { kind: 'delay'; ms: number }
  /** An error status with an HTML body, as PayPal's front ends return during incidents. */
  | { kind: 'status'; status: 500 | 502 | 503 }
  /** 200 with an HTML error page: a listener that only checks the status would be fooled. */
  | { kind: 'html' }
  /** 200 with PayPal's historical "Fatal Failure<br>" body. */
  | { kind: 'fatal' }
  /** Destroy the socket without answering. */
  | { kind: 'drop' };

export type FaultKind = Fault['kind'];

/** One request received on the verification endpoint. */
export interface PostbackRecord {
  at: Date;
  /** Exact bytes the listener posted (prefix included). */
  body: Buffer;
  /** Body we answered with; '' when the socket was dropped. */
  answer: string;
  userAgent?: string;
  contentType?: string;
  /** HTTP status sent; 0 when the socket was dropped without an answer. */
  status: number;
  /** The fault that shaped this answer, if any. */
  fault?: FaultKind;
}

/** One POST of an IPN to the listener. */
export interface DeliveryAttempt {
  at: Date;
  /** Listener's HTTP status; absent when the request failed before a status arrived. */
  status?: number;
  /** Connection error or timeout, with context. */
  error?: string;
  /** Exact bytes posted on this attempt (resends carry resend=true). */
  body: Buffer;
  durationMs: number;
}

export interface DeliveryOutcome {
  delivered: boolean;
  attempts: number;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'cancelled';

export interface Delivery {
  readonly id: string;
  readonly listenerUrl: string;
  readonly attempts: readonly DeliveryAttempt[];
  readonly state: DeliveryState;
  /** When the next resend is planned, while one is waiting. */
  readonly nextAttemptAt: Date | undefined;
  readonly done: Promise<DeliveryOutcome>;
  /** Stop resending (and abort an attempt in flight); `done` resolves with delivered=false. */
  cancel(): void;
}

export type SimLogger = (line: object) => void;

export interface PayPalSimulatorOptions {
  /** 0 picks a free port. Default 0. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Delays before each resend, in unscaled ms; at most 15 entries summing to at most 4 days. */
  resendScheduleMs?: number[];
  /** Multiplies resend delays and default attempt timeouts (e.g. 0.001 in tests). Default 1. */
  timeScale?: number;
  /**
   * Per-attempt timeout for IPN deliveries, in real (unscaled) ms, for every attempt.
   * Default: PayPal's 20 s for the original and 30 s for resends, times timeScale, never below 1 s.
   */
  attemptTimeoutMs?: number;
  logger?: SimLogger;
}

export interface PayPalSimulator {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** `${url}/cgi-bin/webscr`, the postback endpoint. */
  readonly verifyUrl: string;
  readonly postbacks: readonly PostbackRecord[];
  readonly deliveries: readonly Delivery[];
  readonly pendingFaults: readonly Fault[];
  registerMessage(raw: Buffer): void;
  injectFaults(faults: Fault[]): void;
  clearFaults(): void;
  sendIpn(args: { listenerUrl: string; body: Buffer }): Delivery;
  close(): Promise<void>;
  /** PayPal's NVP API for recurring profiles (tools/paypal-sim/nvp.ts), at `nvpUrl`. */
  nvp: import('./nvp').NvpSimulator;
  readonly nvpUrl: string;
  /** PayPal's REST APIs (OAuth2, Payouts, signed webhooks), under `url` (tools/paypal-sim/rest). */
  readonly rest: import('./rest').RestSimulator;
}
