import { describe, expect, it } from 'vitest';
import { advance } from './monotonic';

const at = (seq: number, value: number, counter = 'global') => ({ counter, value, seq, updatedAt: null });

describe('advance', () => {
  it('only moves forward in seq, whichever way the value goes', () => {
    let shown = advance(null, at(3, 3), 'global');
    shown = advance(shown, at(2, 2), 'global');
    expect(shown?.seq).toBe(3);
    shown = advance(shown, at(4, 2), 'global');
    expect(shown?.value).toBe(2);
    shown = advance(shown, at(4, 2), 'global');
    shown = advance(shown, at(3, 3), 'global');
    expect([shown?.seq, shown?.value]).toEqual([4, 2]);
  });

  it("ignores another counter's values", () => {
    expect(advance(at(1, 1), at(9, 9, 'other'), 'global')?.value).toBe(1);
    expect(advance(null, at(9, 9, 'other'), 'global')).toBeNull();
  });
});
