import { afterEach, beforeEach, vi } from 'vitest';

/** Every test of the file runs on fake timers, which it moves itself. */
export function withFakeTimers(): void {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

/** Lets the answers given (and the timers due within `ms`) run. */
export const settle = (ms = 0): Promise<unknown> => vi.advanceTimersByTimeAsync(ms);
