import { randomBytes } from 'node:crypto';
import { postIpn } from './listener-client';
import type { MessageRegistry } from './registry';
import { withResendFlag } from './resend';
import type { AttemptTimeouts } from './schedule';
import type { Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryState, SimLogger } from './types';

export interface DeliveryDeps {
  registry: MessageRegistry;
  log: SimLogger;
  /** Real (already scaled) delays before each resend; its length is the number of resends. */
  resendDelaysMs: readonly number[];
  timeouts: AttemptTimeouts;
}

export function newDeliveryId(): string {
  return `dlv_${randomBytes(8).toString('hex')}`;
}

/** One IPN on its way to a listener, resent on failure the way PayPal does. */
export class IpnDelivery implements Delivery {
  readonly id = newDeliveryId();
  readonly done: Promise<DeliveryOutcome>;
  private readonly attemptList: DeliveryAttempt[] = [];
  private readonly resendBody: Buffer;
  private currentState: DeliveryState = 'pending';
  private nextAt: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight: AbortController | undefined;
  private resolveDone!: (outcome: DeliveryOutcome) => void;

  constructor(
    private readonly target: URL,
    private readonly original: Buffer,
    private readonly deps: DeliveryDeps,
  ) {
    this.resendBody = withResendFlag(original);
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    deps.registry.register(original);
  }

  get listenerUrl(): string {
    return this.target.href;
  }

  get attempts(): readonly DeliveryAttempt[] {
    return this.attemptList;
  }

  get state(): DeliveryState {
    return this.currentState;
  }

  get nextAttemptAt(): Date | undefined {
    return this.nextAt;
  }

  get originalBody(): Buffer {
    return this.original;
  }

  start(): void {
    void this.attempt(0);
  }

  cancel(): void {
    if (this.currentState !== 'pending') return;
    this.currentState = 'cancelled';
    clearTimeout(this.timer);
    this.nextAt = undefined;
    this.inflight?.abort();
    this.deps.log({ msg: 'paypal-sim.delivery.cancelled', id: this.id, attempts: this.attemptList.length });
    this.finish(false);
  }

  private async attempt(index: number): Promise<void> {
    if (this.currentState !== 'pending') return;
    this.nextAt = undefined;
    const isResend = index > 0;
    const body = isResend ? this.resendBody : this.original;
    // Registered only once actually sent: PayPal cannot vouch for bytes it never posted.
    if (isResend) this.deps.registry.register(body);
    const timeoutMs = isResend ? this.deps.timeouts.resend : this.deps.timeouts.original;

    const at = new Date();
    const started = performance.now();
    const abort = new AbortController();
    this.inflight = abort;
    const attempt: DeliveryAttempt = { at, body, durationMs: 0 };
    try {
      const answer = await postIpn(this.target, body, timeoutMs, abort.signal);
      attempt.status = answer.status;
      if (answer.status === 200 && answer.responseBytes > 0) {
        // PayPal accepts it, but the documented contract is an empty 200; worth flagging.
        this.deps.log({ msg: 'paypal-sim.delivery.non-empty-200', id: this.id, bytes: answer.responseBytes });
      }
    } catch (err) {
      attempt.error =
        `POST ${this.target.href} (attempt ${index + 1}): ` + `${err instanceof Error ? err.message : String(err)}`;
    } finally {
      this.inflight = undefined;
      attempt.durationMs = Math.round(performance.now() - started);
    }
    this.attemptList.push(attempt);
    this.deps.log({
      msg: 'paypal-sim.delivery.attempt',
      id: this.id,
      attempt: index + 1,
      resend: isResend,
      status: attempt.status,
      error: attempt.error,
      durationMs: attempt.durationMs,
    });
    if (this.currentState !== 'pending') return;

    if (attempt.status === 200) {
      this.currentState = 'delivered';
      this.finish(true);
      return;
    }
    const delay = this.deps.resendDelaysMs[index];
    if (delay === undefined) {
      this.currentState = 'failed';
      this.deps.log({ msg: 'paypal-sim.delivery.gave-up', id: this.id, attempts: this.attemptList.length });
      this.finish(false);
      return;
    }
    this.nextAt = new Date(Date.now() + delay);
    this.timer = setTimeout(() => void this.attempt(index + 1), delay);
  }

  private finish(delivered: boolean): void {
    this.resolveDone({ delivered, attempts: this.attemptList.length });
  }
}
