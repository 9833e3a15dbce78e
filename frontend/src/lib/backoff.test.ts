import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff';

describe('backoffDelay', () => {
  it('grows exponentially up to the cap', () => {
    const top = () => 0.999999;
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, 100, 1000, top))).toEqual([99, 199, 399, 799, 999, 999]);
  });

  it('is fully jittered between zero and the ceiling', () => {
    expect(backoffDelay(3, 100, 1000, () => 0)).toBe(0);
    expect(backoffDelay(3, 100, 1000, () => 0.5)).toBe(400);
  });
});
