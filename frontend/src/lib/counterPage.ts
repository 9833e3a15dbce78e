import { type Api, ApiError, createApi, changeRetry, readRetry } from './api';
import { backoffDelay } from './backoff';
import { type Config, DEFAULT_COUNTER_MAX, type PageCounter, counterFromPath, loadConfig } from './config';
import { newIdempotencyKey } from './keys';
import { LiveConnection, type SocketLike, websocketUrl } from './live';
import { advance } from './monotonic';
import { type Activity, changesPerMinute, recordChanges } from './activity';
import type { ConnectionState, CounterValue, HistoryItem, Operation } from './types';

/** A click the server has not counted yet: on its way, or failed (then retried with the same key). */
export interface PendingClick {
  key: string;
  operation: Operation;
  state: 'sending' | 'failed';
  /** Why a failed click failed. */
  reason: string | null;
  /** When the click was first sent: past the server's memory of keys (48 h) it is not sent again by itself. */
  firstSentAt: number;
  /** A failed click is not sent again by itself before this time (the server's Retry-After, or a pause). */
  notBefore: number;
}

/** A click older than this is not sent again by itself: the server may have forgotten its key. */
const RESEND_FOR_MS = 24 * 60 * 60 * 1000;

/** Everything the page shows, in one immutable value. */
export interface PageState {
  counter: PageCounter;
  /** The configuration is loaded: the buttons can work. */
  ready: boolean;
  counterMax: number;
  shown: CounterValue | null;
  history: readonly HistoryItem[];
  connection: ConnectionState;
  /** Why the connection is not live (and when it tries again). */
  connectionReason: string | null;
  /** The last read failed; cleared by the next read that succeeds. */
  readError: string | null;
  /** The server refused the last click (a bound); cleared by the next click or a new value. */
  refusal: string | null;
  clicks: readonly PendingClick[];
  /** The keys of this page's clicks: which history entries are the user's own. */
  ownKeys: ReadonlySet<string>;
  /** What a screen reader hears of the value: with context, at a bounded rate. */
  announcement: string;
  /** Changes per minute over the last minutes, oldest first, from the values seen. */
  perMinute: readonly number[];
}

/** What the page runs on: the browser's, or a test's stand-ins. */
export interface PageEnv {
  location: URL;
  fetch: typeof fetch;
  createSocket: (url: string) => SocketLike;
  /** Where `online`, `offline` and `visibilitychange` are heard. */
  window: Pick<Window, 'addEventListener' | 'removeEventListener'>;
  document: Pick<Document, 'addEventListener' | 'removeEventListener' | 'visibilityState'>;
  /** Where the backoff's jitter comes from. */
  random?: () => number;
}

export function browserEnv(): PageEnv {
  return {
    location: new URL(window.location.href),
    fetch: (input, init) => fetch(input, init),
    createSocket: (url) => new WebSocket(url),
    window,
    document,
  };
}

/** How long after a pushed value the history is read again (one read for a burst of values). */
const HISTORY_REFRESH_MS = 1_000;
/** How long a click that could not get through waits before it is sent again by itself (at least). */
const RESEND_AFTER_MS = 15_000;
/** A screen reader hears the value at most this often: the latest value, once a burst has passed. */
export const ANNOUNCE_EVERY_MS = 3_000;
/** How often the changes-per-minute line moves on when nothing changes. */
const ACTIVITY_TICK_MS = 60_000;

export const formatValue = (value: number): string => new Intl.NumberFormat().format(value);

/**
 * The page's logic in one place — configuration, reads, the live connection, clicks — as a store React reads with
 * `useSyncExternalStore`. It can be started again after a stop (React's strict mode does so).
 */
export class CounterPage {
  private state: PageState;
  private readonly listeners = new Set<() => void>();
  private api: Api | null = null;
  private live: LiveConnection | null = null;
  /** Bumped by every start and stop: answers of an earlier run are ignored. */
  private run = 0;
  private reading = false;
  private readFailures = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private resendTimer: ReturnType<typeof setTimeout> | null = null;
  private configTimer: ReturnType<typeof setTimeout> | null = null;
  /** Aborts what this run still sends when it stops. */
  private sending = new AbortController();
  /** When the last pushed value arrived: changes are counted per minute from pushes that follow each other. */
  private lastPushAt = -Infinity;
  private announceTimer: ReturnType<typeof setTimeout> | null = null;
  private activityTimer: ReturnType<typeof setInterval> | null = null;
  private lastAnnounced = -Infinity;
  private activity: Activity = [];

  constructor(private readonly env: PageEnv) {
    this.state = {
      counter: counterFromPath(env.location.pathname),
      ready: false,
      counterMax: DEFAULT_COUNTER_MAX,
      shown: null,
      history: [],
      connection: 'connecting…',
      connectionReason: null,
      readError: null,
      refusal: null,
      clicks: [],
      ownKeys: new Set(),
      announcement: '',
      perMinute: changesPerMinute([], Date.now()),
    };
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): PageState => this.state;

  start(): void {
    const run = ++this.run;
    const counter = this.state.counter;
    if (!counter.valid) return;
    this.env.window.addEventListener('online', this.onNetworkChange);
    this.env.window.addEventListener('offline', this.onNetworkChange);
    this.env.document.addEventListener('visibilitychange', this.onVisibilityChange);
    this.sending = new AbortController();
    this.activityTimer = setInterval(() => {
      this.update({ perMinute: changesPerMinute(this.activity, Date.now()) });
    }, ACTIVITY_TICK_MS);
    this.configure(run, counter.name, 0);
  }

  /** Reads the configuration, trying again with backoff until it arrives; then reads, and goes live. */
  private configure(run: number, counter: string, failures: number): void {
    loadConfig(this.env.location, this.env.fetch, this.signal).then(
      (config) => {
        if (run !== this.run) return;
        this.connect(config, counter);
      },
      (error: unknown) => {
        if (run !== this.run) return;
        const reason = error instanceof Error && error.name !== 'AbortError' ? error.message : 'it did not arrive in time';
        this.update({ readError: `The page’s settings could not be read (${reason}); trying again.` });
        const delay = 1_000 + backoffDelay(failures, 1_000, 15_000, this.env.random);
        this.configTimer = setTimeout(() => {
          this.configTimer = null;
          this.configure(run, counter, failures + 1);
        }, delay);
      },
    );
  }

  private connect(config: Config, counter: string): void {
    const random = this.env.random ?? Math.random;
    this.api = createApi(config.apiUrl, this.env.fetch, {
      change: { ...changeRetry, random },
      read: { ...readRetry, random },
    });
    this.live = new LiveConnection({
      random,
      url: websocketUrl(config.wsUrl, counter),
      createSocket: this.env.createSocket,
      onValue: (value) => {
        const hadState = this.state.shown !== null;
        const previous = this.state.shown;
        const shown = this.show(value);
        if (shown && previous !== null) this.countPushed(value.seq - previous.seq);
        // The first state shown comes with the read of the history already under way; after a failed read,
        // any value is a sign the server is back, worth another read.
        if (this.state.readError !== null || (shown && hadState)) this.refreshSoon();
      },
      onState: (connection, connectionReason) => {
        this.update({ connection, connectionReason });
        if (connection === 'live') this.recover();
      },
    });
    this.update({ ready: true, counterMax: config.counterMax });
    this.live.start();
    void this.refresh();
  }

  stop(): void {
    this.run += 1;
    this.sending.abort();
    this.live?.stop();
    this.live = null;
    this.api = null;
    this.reading = false;
    for (const timer of [this.refreshTimer, this.announceTimer, this.resendTimer, this.configTimer]) {
      if (timer !== null) clearTimeout(timer);
    }
    this.refreshTimer = null;
    this.announceTimer = null;
    this.resendTimer = null;
    this.configTimer = null;
    // What was on its way is sent again, with its key, once the page runs again.
    const interrupted = this.state.clicks.map((click) =>
      click.state === 'sending'
        ? { ...click, state: 'failed' as const, reason: 'the page stopped sending it', notBefore: 0 }
        : click,
    );
    if (interrupted.some((click, i) => click !== this.state.clicks[i])) this.update({ clicks: interrupted });
    if (this.activityTimer !== null) clearInterval(this.activityTimer);
    this.activityTimer = null;
    this.env.window.removeEventListener('online', this.onNetworkChange);
    this.env.window.removeEventListener('offline', this.onNetworkChange);
    this.env.document.removeEventListener('visibilitychange', this.onVisibilityChange);
  }

  /** One click: a change with a key of its own, sent until the server answers. */
  click(operation: Operation): void {
    this.send(newIdempotencyKey(), operation);
  }

  /** Sends a failed click again, with its own key: it is counted at most once, however often it is sent. */
  retry(key: string): void {
    const click = this.state.clicks.find((c) => c.key === key && c.state === 'failed');
    if (click !== undefined) this.send(click.key, click.operation);
  }

  /** Every request of this run stops when it does. */
  private get signal(): AbortSignal {
    return this.sending.signal;
  }

  private readonly onNetworkChange = () => {
    this.live?.checkNow();
    if (this.state.readError !== null) void this.refresh();
  };

  private readonly onVisibilityChange = () => {
    if (this.env.document.visibilityState !== 'visible') return;
    this.onNetworkChange();
    // Pushes that came while hidden moved the value, not the history: catch up.
    if ((this.state.shown?.seq ?? 0) > (this.state.history[0]?.seq ?? 0)) this.refreshSoon(0);
  };

  private send(key: string, operation: Operation): void {
    const api = this.api;
    const counter = this.state.counter;
    if (api === null || !counter.valid) return;
    const run = this.run;
    const ownKeys = new Set(this.state.ownKeys).add(key);
    const earlier = this.state.clicks.find((c) => c.key === key);
    const others = this.state.clicks.filter((c) => c.key !== key);
    const firstSentAt = earlier?.firstSentAt ?? Date.now();
    const click: PendingClick = { key, operation, state: 'sending', reason: null, firstSentAt, notBefore: 0 };
    this.update({ refusal: null, ownKeys, clicks: [...others, click] });
    api
      .change(counter.name, operation, key, this.signal)
      .then((answer) => {
        if (run !== this.run) return;
        this.update({ clicks: this.state.clicks.filter((c) => c.key !== key) });
        const { value, seq, updatedAt } = answer;
        if (this.show({ counter: answer.counter, value, seq, updatedAt })) this.refreshSoon();
        this.resendFailed();
      })
      .catch((error: unknown) => {
        if (run !== this.run) return;
        const refused = error instanceof ApiError && error.kind === 'refused';
        const reason = error instanceof ApiError ? error.message : 'the click could not be sent';
        const rest = this.state.clicks.filter((c) => c.key !== key);
        if (refused) {
          this.update({ clicks: rest, refusal: reason });
          return;
        }
        const retryAfter = error instanceof ApiError ? (error.retryAfterMs ?? 0) : 0;
        const notBefore = Date.now() + Math.max(RESEND_AFTER_MS, retryAfter);
        this.update({ clicks: [...rest, { key, operation, state: 'failed', reason, firstSentAt, notBefore }] });
        this.resendFailed();
      });
  }

  /**
   * Sends the failed clicks again — each with its own key, each once its pause (or the server's Retry-After) is
   * over — and waits for the next one's. A click older than the server's memory of keys stays for the user to
   * retry or not.
   */
  private resendFailed(): void {
    if (this.resendTimer !== null) clearTimeout(this.resendTimer);
    this.resendTimer = null;
    const now = Date.now();
    const waiting = this.state.clicks.filter((c) => c.state === 'failed' && now - c.firstSentAt < RESEND_FOR_MS);
    for (const click of waiting) if (click.notBefore <= now) this.send(click.key, click.operation);
    const next = Math.min(...waiting.filter((c) => c.notBefore > now).map((c) => c.notBefore));
    if (Number.isFinite(next)) {
      this.resendTimer = setTimeout(() => {
        this.resendTimer = null;
        this.resendFailed();
      }, next - now);
    }
  }

  /** Counts pushed changes per minute; a jump after a silence (missed pushes) counts as one, not as all at once. */
  private countPushed(changes: number): void {
    const now = Date.now();
    const recent = now - this.lastPushAt < 60_000;
    this.lastPushAt = now;
    this.activity = recordChanges(this.activity, recent ? changes : Math.min(changes, 1), now);
    this.update({ perMinute: changesPerMinute(this.activity, now) });
  }

  /** The server is back: read what failed to read, send what failed to send. */
  private recover(): void {
    if (this.state.readError !== null) this.refreshSoon(0);
    this.resendFailed();
  }

  /** Shows a state if it is newer than the one shown; tells whether it was. */
  private show(incoming: CounterValue): boolean {
    const counter = this.state.counter;
    if (!counter.valid) return false;
    const previous = this.state.shown;
    const next = advance(previous, incoming, counter.name);
    if (next === previous || next === null) return false;
    const valueMoved = previous === null || previous.value !== next.value;
    this.update({
      shown: next,
      ...(valueMoved && this.state.refusal !== null && previous !== null ? { refusal: null } : {}),
    });
    this.announceSoon();
    return true;
  }

  /** Announces the value shown now, or — within the rate bound — once the bound allows, whatever it is then. */
  private announceSoon(): void {
    if (this.announceTimer !== null) return;
    const wait = this.lastAnnounced + ANNOUNCE_EVERY_MS - Date.now();
    const announce = () => {
      this.announceTimer = null;
      this.lastAnnounced = Date.now();
      const { shown, counter } = this.state;
      if (shown === null || !counter.valid) return;
      this.update({ announcement: `counter ${counter.name} is ${formatValue(shown.value)}` });
    };
    if (wait <= 0) announce();
    else this.announceTimer = setTimeout(announce, wait);
  }

  /**
   * Reads again a second after a burst of pushed values began — not once per value, not during a read, not while
   * the tab is hidden (it checks again when it shows).
   */
  private refreshSoon(delay = HISTORY_REFRESH_MS): void {
    if (this.refreshTimer !== null || this.reading) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      if (this.env.document.visibilityState === 'hidden') return;
      void this.refresh();
    }, delay);
  }

  /** Reads the value and the history (one read at a time); a failed read is tried again with backoff. */
  private async refresh(): Promise<void> {
    const api = this.api;
    const counter = this.state.counter;
    if (api === null || !counter.valid || this.reading) return;
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const run = this.run;
    this.reading = true;
    try {
      const [value, page] = await Promise.all([
        api.read(counter.name, this.signal),
        api.history(counter.name, 10, this.signal),
      ]);
      if (run !== this.run) return;
      this.reading = false;
      this.readFailures = 0;
      this.show(value);
      const newest = page.items[0]?.seq ?? 0;
      const history = newest >= (this.state.history[0]?.seq ?? 0) ? page.items : this.state.history;
      this.update({ history, readError: null });
      if ((this.state.shown?.seq ?? -1) > newest) this.refreshSoon();
      this.resendFailed();
    } catch (error) {
      if (run !== this.run) return;
      this.reading = false;
      const reason = error instanceof ApiError ? error.message : 'the server cannot be reached';
      this.update({ readError: `The counter could not be read: ${reason}.` });
      this.readFailures += 1;
      this.refreshSoon(1_000 + backoffDelay(this.readFailures, 1_000, 30_000, this.env.random));
    }
  }

  private update(patch: Partial<PageState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }
}
