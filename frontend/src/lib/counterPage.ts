import { ActivityLine, type ActivityState } from './activityLine';
import { Announcer } from './announcer';
import { changeRetry, createApi, readRetry } from './api';
import { ClickOutbox, type ClicksState } from './clickOutbox';
import { type Config, DEFAULT_COUNTER_MAX, type PageCounter, counterFromPath } from './config';
import { keepLoadingConfig } from './configLoader';
import { CounterReads, type ReadsState } from './counterReads';
import type { SocketLike } from './live';
import { LiveUpdates, type LiveState } from './liveUpdates';
import { advance } from './monotonic';
import type { CounterValue, Operation } from './types';

/** Everything the page shows, in one immutable value. */
export interface PageState extends ClicksState, ReadsState, LiveState, ActivityState {
  counter: PageCounter;
  /** The configuration is loaded: the buttons can work. */
  ready: boolean;
  counterMax: number;
  shown: CounterValue | null;
  /** What a screen reader hears of the value: with context, at a bounded rate. */
  announcement: string;
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

export const formatValue = (value: number): string => new Intl.NumberFormat().format(value);

/**
 * The page as a store React reads with `useSyncExternalStore`: the value shown — the newest of what reads, pushes
 * and clicks bring — and, around it, the clicks, the reads, the live connection, the announcements and the line of
 * changes per minute. It can be started again after a stop (React's strict mode does so).
 */
export class CounterPage {
  private state: PageState;
  private readonly listeners = new Set<() => void>();
  private readonly random: () => number;
  private readonly clicks: ClickOutbox;
  private readonly reads: CounterReads;
  private readonly live: LiveUpdates;
  private readonly announcer: Announcer;
  private readonly activity: ActivityLine;
  /** Aborts what this run still sends when it stops. */
  private running = new AbortController();

  constructor(private readonly env: PageEnv) {
    const update = (patch: Partial<PageState>) => {
      this.update(patch);
    };
    this.random = env.random ?? Math.random;
    this.clicks = new ClickOutbox({
      onCommitted: (value) => {
        if (this.show(value)) this.reads.readSoon();
      },
      onChange: update,
    });
    this.reads = new CounterReads({
      isHidden: () => env.document.visibilityState === 'hidden',
      shownSeq: () => this.state.shown?.seq ?? 0,
      onValue: (value) => {
        this.show(value);
      },
      onRead: () => {
        this.clicks.resendFailed();
      },
      onChange: update,
      random: this.random,
    });
    this.live = new LiveUpdates({
      createSocket: env.createSocket,
      window: env.window,
      document: env.document,
      random: this.random,
      onValue: (value) => {
        this.showPushed(value);
      },
      onLive: () => {
        // The server is back: read what failed to read, send what failed to send.
        if (this.reads.failed) this.reads.readSoon(0);
        this.clicks.resendFailed();
      },
      onCheck: (tabShown) => {
        if (this.reads.failed) void this.reads.readNow();
        // Pushes that came while hidden moved the value, not the history: catch up.
        if (tabShown) this.reads.catchUp();
      },
      onChange: update,
    });
    this.announcer = new Announcer((announcement) => {
      this.update({ announcement });
    });
    this.activity = new ActivityLine(update);
    this.state = {
      counter: counterFromPath(env.location.pathname),
      ready: false,
      counterMax: DEFAULT_COUNTER_MAX,
      shown: null,
      announcement: '',
      ...this.clicks.state,
      ...this.reads.state,
      ...this.live.state,
      ...this.activity.state,
    };
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): PageState => this.state;

  /** Reads the configuration (trying again until it arrives), then reads, and goes live. */
  start(): void {
    const counter = this.state.counter;
    if (!counter.valid) return;
    const running = new AbortController();
    this.running = running;
    this.activity.start();
    keepLoadingConfig({
      page: this.env.location,
      fetch: this.env.fetch,
      signal: running.signal,
      onLoaded: (config) => {
        this.connect(config, counter.name, running.signal);
      },
      onFailed: (reason) => {
        this.reads.settingsFailed(reason);
      },
      random: this.random,
    });
  }

  stop(): void {
    this.running.abort();
    this.live.stop();
    this.reads.stop();
    this.announcer.stop();
    this.clicks.stop();
    this.activity.stop();
  }

  click(operation: Operation): void {
    this.clicks.click(operation);
  }

  retry(key: string): void {
    this.clicks.retry(key);
  }

  private connect(config: Config, counter: string, signal: AbortSignal): void {
    const api = createApi(config.apiUrl, this.env.fetch, {
      change: { ...changeRetry, random: this.random },
      read: { ...readRetry, random: this.random },
    });
    this.update({ ready: true, counterMax: config.counterMax });
    this.clicks.start(api, counter, signal);
    this.live.start(config.wsUrl, counter);
    this.reads.start(api, counter, signal);
  }

  /** A pushed value: shown if newer, counted as activity, and a reason to read the history again. */
  private showPushed(value: CounterValue): void {
    const previous = this.state.shown;
    const moved = this.show(value) && previous !== null;
    if (moved) this.activity.pushed(value.seq - previous.seq);
    // The first state shown comes with the read of the history already under way; after a failed read, any value
    // is a sign the server is back, worth another read.
    if (this.reads.failed || moved) this.reads.readSoon();
  }

  /** Shows a state if it is newer than the one shown; tells whether it was. */
  private show(incoming: CounterValue): boolean {
    const counter = this.state.counter;
    if (!counter.valid) return false;
    const previous = this.state.shown;
    const next = advance(previous, incoming, counter.name);
    if (next === previous || next === null) return false;
    this.update({ shown: next });
    if (previous !== null && previous.value !== next.value) this.clicks.clearRefusal();
    this.announcer.say(`counter ${counter.name} is ${formatValue(next.value)}`);
    return true;
  }

  private update(patch: Partial<PageState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }
}
