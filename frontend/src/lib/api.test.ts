import { describe, expect, it, vi } from 'vitest';
import { ApiError, createApi, changeRetry, readRetry, retryAfterMs } from './api';
import { withFakeTimers } from '../test/fakeTimers';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/** A fetch that answers from a script, one entry per call, and records what it was sent and when. */
function scripted(...answers: ((init: RequestInit | undefined) => Promise<Response>)[]) {
  const calls: { url: string; init: RequestInit | undefined; at: number }[] = [];
  const fetchImpl = ((input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: input instanceof Request ? input.url : input.toString(), init, at: Date.now() });
    const next = answers[calls.length - 1];
    if (next === undefined) throw new Error('unexpected call');
    return next(init);
  }) as typeof fetch;
  return { calls, fetchImpl };
}

/** An answer that never comes, unless the request is aborted. */
const hang = (init: RequestInit | undefined) =>
  new Promise<Response>((_, reject) => {
    init?.signal?.addEventListener('abort', () => {
      reject(new DOMException('aborted', 'AbortError'));
    });
  });
const down = () => Promise.reject(new TypeError('Failed to fetch'));
const keyOf = (init: RequestInit | undefined) => (init?.headers as Record<string, string>)['Idempotency-Key'];
const answer = { counter: 'global', value: 7, seq: 9, delta: 1, requestId: 'k-1', updatedAt: '2026-11-23T10:00:00.000Z' };
const policies = { change: { ...changeRetry, random: () => 0.5 }, read: { ...readRetry, random: () => 0.5 } };

withFakeTimers();

describe('change', () => {
  it('decrements at its own route, and reports a 409 at once in the server’s words', async () => {
    const { calls, fetchImpl } = scripted(() =>
      Promise.resolve(json(409, { title: 'The counter is at 0', status: 409, detail: "the counter 'global' is at 0" })),
    );
    const failure = await createApi('', fetchImpl, policies)
      .change('global', 'decrement', 'k-0')
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).kind).toBe('refused');
    expect((failure as ApiError).status).toBe(409);
    expect((failure as ApiError).message).toContain('is at 0');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe('/counters/global/decrement');
  });

  it('retries a network failure, a 500 and a 503 with the same key', async () => {
    const { calls, fetchImpl } = scripted(
      down,
      () => Promise.resolve(json(500, { title: 'Internal', status: 500, detail: 'oops' })),
      () => Promise.resolve(json(503, { title: 'Service unavailable', status: 503, detail: 'retry' })),
      () => Promise.resolve(json(200, answer)),
    );
    const api = createApi('http://127.0.0.1:8080', fetchImpl, policies);
    const change = api.change('global', 'increment', 'k-1');
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(change).resolves.toEqual(answer);
    expect(calls.map((c) => keyOf(c.init))).toEqual(['k-1', 'k-1', 'k-1', 'k-1']);
    expect(calls[0]?.url).toBe('http://127.0.0.1:8080/counters/global/increment');
    expect(calls[0]?.init?.method).toBe('POST');
  });

  it('abandons a request that hangs, and sends it again', async () => {
    const { calls, fetchImpl } = scripted(hang, () => Promise.resolve(json(200, answer)));
    const change = createApi('', fetchImpl, policies).change('global', 'increment', 'k-2');
    await vi.advanceTimersByTimeAsync(changeRetry.timeoutMs + changeRetry.capMs);
    await expect(change).resolves.toEqual(answer);
    expect(calls).toHaveLength(2);
    expect((calls[1]?.at ?? 0) - (calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(changeRetry.timeoutMs);
    expect(keyOf(calls[1]?.init)).toBe('k-2');
  });

  it('waits as long as Retry-After asks', async () => {
    const { calls, fetchImpl } = scripted(
      () => Promise.resolve(json(429, { title: 'Too many', status: 429, detail: 'slow down' }, { 'Retry-After': '7' })),
      () => Promise.resolve(json(200, answer)),
    );
    const change = createApi('', fetchImpl, policies).change('global', 'increment', 'k-3');
    await vi.advanceTimersByTimeAsync(6_900);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200);
    await expect(change).resolves.toEqual(answer);
    expect(calls).toHaveLength(2);
  });

  it('keeps trying for as long as a server restart takes, then says why it gave up', async () => {
    const attempts = Array.from({ length: 200 }, () => down);
    const { calls, fetchImpl } = scripted(...attempts);
    const started = Date.now();
    const change = createApi('', fetchImpl, policies)
      .change('global', 'increment', 'k-4')
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(25_000);
    const sentBy25s = calls.length;
    expect(sentBy25s).toBeGreaterThan(3);
    await vi.advanceTimersByTimeAsync(10_000);
    const failure = await change;
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).kind).toBe('unreachable');
    expect((failure as ApiError).message).toContain('cannot be reached');
    expect((calls.at(-1)?.at ?? 0) - started).toBeLessThanOrEqual(changeRetry.retryForMs);
    expect((calls.at(-1)?.at ?? 0) - started).toBeGreaterThan(20_000);
    expect(new Set(calls.map((c) => keyOf(c.init)))).toEqual(new Set(['k-4']));
  });
});

describe('reads', () => {
  it('give up sooner, and a 404 is no reason to retry', async () => {
    const { calls, fetchImpl } = scripted(() => Promise.resolve(json(404, { title: 'Not found', status: 404, detail: 'no' })));
    const failure = await createApi('', fetchImpl, policies).read('global').catch((e: unknown) => e);
    expect((failure as ApiError).kind).toBe('refused');
    expect(calls).toHaveLength(1);
  });
});

describe('Retry-After', () => {
  it('reads seconds and dates', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(null)).toBeNull();
    expect(retryAfterMs('soon')).toBeNull();
    const now = Date.parse('2026-11-23T10:00:00Z');
    expect(retryAfterMs('Mon, 23 Nov 2026 10:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Mon, 23 Nov 2026 09:00:00 GMT', now)).toBe(0);
  });
});
