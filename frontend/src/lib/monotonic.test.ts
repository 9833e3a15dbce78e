import { describe, expect, it } from 'vitest';
import { advance } from './monotonic';

const at = (value: number, counter = 'global') => ({ counter, value, updatedAt: null });

describe('advance', () => {
  it('only moves forward', () => {
    let shown = advance(null, at(3), 'global');
    shown = advance(shown, at(2), 'global');
    expect(shown?.value).toBe(3);
    shown = advance(shown, at(5), 'global');
    shown = advance(shown, at(5), 'global');
    expect(shown?.value).toBe(5);
  });

  it("ignores another counter's values", () => {
    expect(advance(at(1), at(9, 'other'), 'global')?.value).toBe(1);
    expect(advance(null, at(9, 'other'), 'global')).toBeNull();
  });
});
