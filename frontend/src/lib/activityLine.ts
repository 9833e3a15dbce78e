import { type Activity, changesPerMinute, recordChanges } from './activity';

/** The line of changes per minute, as the page shows it. */
export interface ActivityState {
  /** Changes per minute over the last minutes, oldest first, from the values seen. */
  perMinute: readonly number[];
}

/** How often the line moves on when nothing changes. */
export const ACTIVITY_TICK_MS = 60_000;
/** Pushes closer together than this follow each other: the changes between them are counted in full. */
const FOLLOWS_WITHIN_MS = 60_000;

/** Changes per minute, counted from the pushed values, moving on every minute while it runs. */
export class ActivityLine {
  private current: ActivityState = { perMinute: changesPerMinute([], Date.now()) };
  private activity: Activity = [];
  private lastPushAt = -Infinity;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly onChange: (state: ActivityState) => void) {}

  get state(): ActivityState {
    return this.current;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.show(Date.now());
    }, ACTIVITY_TICK_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Counts `changes` pushed; a jump after a silence (missed pushes) counts as one, not as all at once. */
  pushed(changes: number): void {
    const now = Date.now();
    const follows = now - this.lastPushAt < FOLLOWS_WITHIN_MS;
    this.lastPushAt = now;
    this.activity = recordChanges(this.activity, follows ? changes : Math.min(changes, 1), now);
    this.show(now);
  }

  private show(now: number): void {
    this.current = { perMinute: changesPerMinute(this.activity, now) };
    this.onChange(this.current);
  }
}
