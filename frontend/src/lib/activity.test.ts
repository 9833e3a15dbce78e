import { describe, expect, it } from 'vitest';
import { ACTIVITY_MINUTES, changesPerMinute, recordChanges } from './activity';

describe('changes per minute', () => {
  it('counts the changes of each minute, the newest last, and forgets older ones', () => {
    const t0 = 1_000_000_000;
    let activity = recordChanges([], 2, t0);
    activity = recordChanges(activity, 1, t0 + 30_000);
    activity = recordChanges(activity, 5, t0 + 90_000);
    const line = changesPerMinute(activity, t0 + 100_000);
    expect(line).toHaveLength(ACTIVITY_MINUTES);
    expect(line.slice(-2)).toEqual([3, 5]);
    expect(line.slice(0, -2).every((n) => n === 0)).toBe(true);
    const later = recordChanges(activity, 0, t0 + (ACTIVITY_MINUTES + 1) * 60_000);
    expect(later).toEqual([{ at: t0 + 90_000, changes: 5 }]);
  });
});
