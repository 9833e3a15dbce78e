import { describe, expect, it, vi } from 'vitest';
import type { Config } from './config';
import { keepLoadingConfig } from './configLoader';
import { withFakeTimers } from '../test/fakeTimers';

const page = new URL('http://192.168.1.20:8080/c/clicks');

/** Loads the configuration from a server that answers `statuses` in turn (then 200), or never (`null`). */
function harness(statuses: (number | null)[]) {
  const loaded: Config[] = [];
  const failures: string[] = [];
  let requests = 0;
  const fetch = ((_input: RequestInfo | URL, init?: RequestInit) => {
    requests += 1;
    const next = statuses.shift();
    const status = next === undefined ? 200 : next;
    if (status === null) {
      return new Promise((_, reject) => {
        init?.signal?.addEventListener('abort', () => {
          reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        });
      });
    }
    return Promise.resolve(new Response(status === 200 ? '{"counterMax":5}' : '{}', { status }));
  }) as typeof globalThis.fetch;
  const running = new AbortController();
  keepLoadingConfig({
    page,
    fetch,
    signal: running.signal,
    onLoaded: (config) => loaded.push(config),
    onFailed: (reason) => failures.push(reason),
    random: () => 0.5,
  });
  return { loaded, failures, running, requests: () => requests };
}

withFakeTimers();

describe('keepLoadingConfig', () => {
  it('passes the configuration on once it arrives', async () => {
    const h = harness([]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.loaded).toEqual([{ apiUrl: 'http://192.168.1.20:8080', wsUrl: 'ws://192.168.1.20:8080/ws', counterMax: 5 }]);
    expect(h.failures).toEqual([]);
  });

  it('says why a try failed and tries again with backoff until it arrives', async () => {
    const h = harness([503, 500]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.failures).toEqual(['the server answered 503']);
    // 1 s, and half (random 0.5) of the backoff's ceiling: 1 s at first, then 2 s.
    await vi.advanceTimersByTimeAsync(1_499);
    expect(h.requests()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.failures).toEqual(['the server answered 503', 'the server answered 500']);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(h.requests()).toBe(3);
    expect(h.loaded).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('says the configuration did not arrive in time when the server does not answer', async () => {
    const h = harness([null]);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(h.failures).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.failures).toEqual(['it did not arrive in time']);
  });

  it('stops trying once aborted, and leaves no timer behind', async () => {
    const h = harness([503]);
    await vi.advanceTimersByTimeAsync(0);
    h.running.abort();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.requests()).toBe(1);
    expect(h.failures).toHaveLength(1);
    expect(h.loaded).toEqual([]);
  });
});
