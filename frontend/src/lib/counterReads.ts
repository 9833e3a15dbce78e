import { type Api, ApiError } from './api';
import { backoffDelay } from './backoff';
import type { CounterValue, HistoryItem } from './types';

/** What the page read last, as it shows it. */
export interface ReadsState {
  /** The last changes, newest first. */
  history: readonly HistoryItem[];
  /** The last read failed; cleared by the next read that succeeds. */
  readError: string | null;
}

export interface CounterReadsOptions {
  /** While the tab is hidden nothing is read (the page checks again when it shows). */
  isHidden: () => boolean;
  /** The `seq` of the value shown, 0 when none: a history older than that is read again. */
  shownSeq: () => number;
  /** The value read, to show if it is newer than the one shown. */
  onValue: (value: CounterValue) => void;
  /** A read succeeded: the server answers again. */
  onRead: () => void;
  onChange: (state: ReadsState) => void;
  /** Where the backoff's jitter comes from. */
  random: () => number;
}

/** How long after a pushed value the history is read again (one read for a burst of values). */
export const READ_AGAIN_AFTER_MS = 1_000;
/** How many changes the page lists. */
const HISTORY_LENGTH = 10;

/** Where reads go while the page runs; the signal aborts what is on its way when it stops. */
interface Reading {
  api: Pick<Api, 'read' | 'history'>;
  counter: string;
  signal: AbortSignal;
}

/**
 * The counter's value and last changes, read over HTTP: one read at a time, again a second after a burst of pushed
 * values began, and — after a failure, which it shows until a read succeeds — again with backoff.
 */
export class CounterReads {
  private current: ReadsState = { history: [], readError: null };
  private reading: Reading | null = null;
  private inFlight = false;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: CounterReadsOptions) {}

  get state(): ReadsState {
    return this.current;
  }

  /** The last read failed (or the page's settings could not be read). */
  get failed(): boolean {
    return this.current.readError !== null;
  }

  /** Reads now, and from then on when asked. */
  start(api: Pick<Api, 'read' | 'history'>, counter: string, signal: AbortSignal): void {
    this.reading = { api, counter, signal };
    void this.readNow();
  }

  stop(): void {
    this.reading = null;
    this.inFlight = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The page's settings could not be read: shown as a read error until a read succeeds. */
  settingsFailed(reason: string): void {
    this.update({ readError: `The page’s settings could not be read (${reason}); trying again.` });
  }

  /** Reads after `delay` — unless a read is already due or under way; not while the tab is hidden. */
  readSoon(delay = READ_AGAIN_AFTER_MS): void {
    if (this.timer !== null || this.inFlight) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.options.isHidden()) return;
      void this.readNow();
    }, delay);
  }

  /** Reads at once if the value shown is newer than the history (pushes that came while the tab was hidden). */
  catchUp(): void {
    if (this.options.shownSeq() > (this.current.history[0]?.seq ?? 0)) this.readSoon(0);
  }

  /** Reads the value and the history (one read at a time); a failed read is tried again with backoff. */
  async readNow(): Promise<void> {
    const reading = this.reading;
    if (reading === null || this.inFlight) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.inFlight = true;
    const { api, counter, signal } = reading;
    try {
      const [value, page] = await Promise.all([
        api.read(counter, signal),
        api.history(counter, HISTORY_LENGTH, signal),
      ]);
      if (reading !== this.reading) return;
      this.inFlight = false;
      this.failures = 0;
      this.options.onValue(value);
      const newest = page.items[0]?.seq ?? 0;
      const history = newest >= (this.current.history[0]?.seq ?? 0) ? page.items : this.current.history;
      this.update({ history, readError: null });
      if (this.options.shownSeq() > newest) this.readSoon();
      this.options.onRead();
    } catch (error) {
      if (reading !== this.reading) return;
      this.inFlight = false;
      const reason = error instanceof ApiError ? error.message : 'the server cannot be reached';
      this.update({ readError: `The counter could not be read: ${reason}.` });
      this.failures += 1;
      this.readSoon(1_000 + backoffDelay(this.failures, 1_000, 30_000, this.options.random));
    }
  }

  private update(patch: Partial<ReadsState>): void {
    this.current = { ...this.current, ...patch };
    this.options.onChange(this.current);
  }
}
