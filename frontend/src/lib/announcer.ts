/** A screen reader hears the value at most this often: the latest value, once a burst has passed. */
export const ANNOUNCE_EVERY_MS = 3_000;

/**
 * What a screen reader hears, at a bounded rate: an announcement at once if the last was long enough ago, else —
 * once the bound allows — the latest one asked for by then; those in between are never heard.
 */
export class Announcer {
  private lastAnnounced = -Infinity;
  private latest = '';
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly onAnnounce: (announcement: string) => void) {}

  say(announcement: string): void {
    this.latest = announcement;
    if (this.timer !== null) return;
    const wait = this.lastAnnounced + ANNOUNCE_EVERY_MS - Date.now();
    if (wait <= 0) {
      this.announce();
      return;
    }
    this.timer = setTimeout(() => {
      this.announce();
    }, wait);
  }

  /** Drops what waits to be announced. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private announce(): void {
    this.timer = null;
    this.lastAnnounced = Date.now();
    this.onAnnounce(this.latest);
  }
}
