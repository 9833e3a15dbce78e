import { describe, expect, it, vi } from 'vitest';
import { ACTIVITY_MINUTES } from './activity';
import { ACTIVITY_TICK_MS, ActivityLine, type ActivityState } from './activityLine';
import { withFakeTimers } from '../test/fakeTimers';

function harness() {
  const states: ActivityState[] = [];
  const line = new ActivityLine((state) => states.push(state));
  const lastMinutes = (n: number) => line.state.perMinute.slice(-n);
  return { line, states, lastMinutes };
}

withFakeTimers();

describe('ActivityLine', () => {
  it('starts flat, one entry per minute', () => {
    const { line } = harness();
    expect(line.state.perMinute).toEqual(new Array(ACTIVITY_MINUTES).fill(0));
  });

  it('counts the changes between pushes that follow each other', () => {
    const { line, lastMinutes } = harness();
    line.pushed(1);
    vi.advanceTimersByTime(1_000);
    line.pushed(3);
    expect(lastMinutes(1)).toEqual([4]);
  });

  it('counts a jump after a silence as one change, not all the ones missed', () => {
    const { line, lastMinutes } = harness();
    line.pushed(40);
    vi.advanceTimersByTime(2 * 60_000);
    line.pushed(500);
    expect(lastMinutes(3)).toEqual([1, 0, 1]);
  });

  it('moves on every minute while it runs, and not once stopped', () => {
    const { line, states, lastMinutes } = harness();
    line.start();
    line.pushed(1);
    vi.advanceTimersByTime(ACTIVITY_TICK_MS);
    expect(lastMinutes(2)).toEqual([1, 0]);
    expect(states).toHaveLength(2);
    line.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10 * ACTIVITY_TICK_MS);
    expect(states).toHaveLength(2);
  });
});
