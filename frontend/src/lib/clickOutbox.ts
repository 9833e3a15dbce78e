import { type Api, ApiError } from './api';
import { newIdempotencyKey } from './keys';
import type { CounterValue, Operation } from './types';

/** A click the server has not counted yet: on its way, or failed (then retried with the same key). */
export interface PendingClick {
  key: string;
  operation: Operation;
  state: 'sending' | 'failed';
  /** Why a failed click failed. */
  reason: string | null;
  /** When the click was first sent: past the 24 h for which keys are surely remembered, it is not sent again by itself. */
  firstSentAt: number;
  /** A failed click is not sent again by itself before this time (the server's Retry-After, or a pause). */
  notBefore: number;
}

/** The page's clicks, as it shows them. */
export interface ClicksState {
  clicks: readonly PendingClick[];
  /** The keys of this page's clicks: which history entries are the user's own. */
  ownKeys: ReadonlySet<string>;
  /** The server refused the last click (a bound); cleared by the next click or a new value. */
  refusal: string | null;
}

export interface ClickOutboxOptions {
  /** A click the server counted: the counter's state after it. */
  onCommitted: (value: CounterValue) => void;
  onChange: (state: ClicksState) => void;
}

/** A click older than this is not sent again by itself: the server may have forgotten its key. */
const RESEND_FOR_MS = 24 * 60 * 60 * 1000;
/** How long a click that could not get through waits before it is sent again by itself (at least). */
export const RESEND_AFTER_MS = 15_000;

/** Where clicks are sent while the page runs; the signal aborts what is on its way when it stops. */
interface Sending {
  api: Pick<Api, 'change'>;
  counter: string;
  signal: AbortSignal;
}

/**
 * The page's clicks: each sent with a key of its own until the server counts or refuses it; one that could not get
 * through is kept, shown as failed, and sent again — by itself or on `retry` — with the same key, so it is counted
 * at most once. It keeps its clicks across a stop: what was on its way is sent again once it runs again.
 */
export class ClickOutbox {
  private current: ClicksState = { clicks: [], ownKeys: new Set(), refusal: null };
  private sending: Sending | null = null;
  private resendTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: ClickOutboxOptions) {}

  get state(): ClicksState {
    return this.current;
  }

  start(api: Pick<Api, 'change'>, counter: string, signal: AbortSignal): void {
    this.sending = { api, counter, signal };
  }

  /** Stops sending; a click on its way is kept as failed, to be sent again as soon as the outbox runs again. */
  stop(): void {
    this.sending = null;
    if (this.resendTimer !== null) clearTimeout(this.resendTimer);
    this.resendTimer = null;
    const { clicks } = this.current;
    const interrupted = clicks.map((click) =>
      click.state === 'sending'
        ? { ...click, state: 'failed' as const, reason: 'the page stopped sending it', notBefore: 0 }
        : click,
    );
    if (interrupted.some((click, i) => click !== clicks[i])) this.update({ clicks: interrupted });
  }

  /** One click: a change with a key of its own, sent until the server answers. */
  click(operation: Operation): void {
    this.send(newIdempotencyKey(), operation);
  }

  /** Sends a failed click again, with its own key: it is counted at most once, however often it is sent. */
  retry(key: string): void {
    const click = this.current.clicks.find((c) => c.key === key && c.state === 'failed');
    if (click !== undefined) this.send(click.key, click.operation);
  }

  /** A new value is shown: a refusal about the old one no longer holds. */
  clearRefusal(): void {
    if (this.current.refusal !== null) this.update({ refusal: null });
  }

  /**
   * Sends the failed clicks again — each with its own key, each once its pause (or the server's Retry-After) is
   * over — and waits for the next one's. A click older than the server's memory of keys stays for the user to
   * retry or not.
   */
  resendFailed(): void {
    if (this.resendTimer !== null) clearTimeout(this.resendTimer);
    this.resendTimer = null;
    const now = Date.now();
    const waiting = this.current.clicks.filter((c) => c.state === 'failed' && now - c.firstSentAt < RESEND_FOR_MS);
    for (const click of waiting) if (click.notBefore <= now) this.send(click.key, click.operation);
    const next = Math.min(...waiting.filter((c) => c.notBefore > now).map((c) => c.notBefore));
    if (Number.isFinite(next)) {
      this.resendTimer = setTimeout(() => {
        this.resendTimer = null;
        this.resendFailed();
      }, next - now);
    }
  }

  private send(key: string, operation: Operation): void {
    const sending = this.sending;
    if (sending === null) return;
    const { clicks, ownKeys } = this.current;
    const firstSentAt = clicks.find((c) => c.key === key)?.firstSentAt ?? Date.now();
    const click: PendingClick = { key, operation, state: 'sending', reason: null, firstSentAt, notBefore: 0 };
    this.update({ refusal: null, ownKeys: new Set(ownKeys).add(key), clicks: [...this.without(key), click] });
    sending.api
      .change(sending.counter, operation, key, sending.signal)
      .then((answer) => {
        if (sending !== this.sending) return;
        this.update({ clicks: this.without(key) });
        const { value, seq, updatedAt } = answer;
        this.options.onCommitted({ counter: answer.counter, value, seq, updatedAt });
        this.resendFailed();
      })
      .catch((error: unknown) => {
        if (sending !== this.sending) return;
        const reason = error instanceof ApiError ? error.message : 'the click could not be sent';
        if (error instanceof ApiError && error.kind === 'refused') {
          this.update({ clicks: this.without(key), refusal: reason });
          return;
        }
        const retryAfter = error instanceof ApiError ? (error.retryAfterMs ?? 0) : 0;
        const notBefore = Date.now() + Math.max(RESEND_AFTER_MS, retryAfter);
        const failed: PendingClick = { key, operation, state: 'failed', reason, firstSentAt, notBefore };
        this.update({ clicks: [...this.without(key), failed] });
        this.resendFailed();
      });
  }

  private without(key: string): PendingClick[] {
    return this.current.clicks.filter((c) => c.key !== key);
  }

  private update(patch: Partial<ClicksState>): void {
    this.current = { ...this.current, ...patch };
    this.options.onChange(this.current);
  }
}
