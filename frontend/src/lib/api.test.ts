import { describe, expect, it } from 'vitest';
import { ApiError, createApi, type RetryPolicy } from './api';

const noWait: RetryPolicy = { attempts: 4, baseMs: 10, capMs: 100, sleep: () => Promise.resolve(), random: () => 0.5 };

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** A fetch that answers from a script, one entry per call, and records what it was sent. */
function scripted(...answers: (() => Promise<Response>)[]) {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  const fetchImpl = ((input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: input instanceof Request ? input.url : input.toString(), init });
    const next = answers[calls.length - 1];
    if (next === undefined) throw new Error('unexpected call');
    return next();
  }) as typeof fetch;
  return { calls, fetchImpl };
}

const keyOf = (init: RequestInit | undefined) => (init?.headers as Record<string, string>)['Idempotency-Key'];
const answer = { counter: 'global', value: 7, seq: 9, delta: 1, requestId: 'k-1', updatedAt: '2026-11-23T10:00:00.000Z' };

describe('change', () => {
  it('decrements at its own route, and reports a 409 at once in the server’s words', async () => {
    const { calls, fetchImpl } = scripted(() =>
      Promise.resolve(json(409, { title: 'The counter is at 0', status: 409, detail: "the counter 'global' is at 0" })),
    );
    const failure = await createApi('', fetchImpl, noWait)
      .change('global', 'decrement', 'k-0')
      .catch((e: unknown) => e);
    expect((failure as ApiError).status).toBe(409);
    expect((failure as ApiError).message).toContain('is at 0');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe('/counters/global/decrement');
  });

  it('retries a network failure with the same key', async () => {
    const { calls, fetchImpl } = scripted(
      () => Promise.reject(new TypeError('Failed to fetch')),
      () => Promise.resolve(json(503, { title: 'Service unavailable', status: 503, detail: 'retry' })),
      () => Promise.resolve(json(200, answer)),
    );
    const api = createApi('http://127.0.0.1:8080', fetchImpl, noWait);
    await expect(api.change('global', 'increment', 'k-1')).resolves.toEqual(answer);
    expect(calls).toHaveLength(3);
    expect(calls.map((c) => keyOf(c.init))).toEqual(['k-1', 'k-1', 'k-1']);
    expect(calls[0]?.url).toBe('http://127.0.0.1:8080/counters/global/increment');
    expect(calls[0]?.init?.method).toBe('POST');
  });

  it('reports a refusal at once, with the server’s detail', async () => {
    const { calls, fetchImpl } = scripted(() =>
      Promise.resolve(json(422, { title: 'Invalid', status: 422, detail: 'this Idempotency-Key was already used' })),
    );
    const api = createApi('', fetchImpl, noWait);
    const failure = await api.change('global', 'increment', 'k-2').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).message).toContain('already used');
    expect((failure as ApiError).status).toBe(422);
    expect(calls).toHaveLength(1);
  });

  it('gives up after its attempts and says so', async () => {
    const down = () => Promise.reject(new TypeError('Failed to fetch'));
    const { calls, fetchImpl } = scripted(down, down, down, down);
    const api = createApi('', fetchImpl, noWait);
    await expect(api.change('global', 'increment', 'k-3')).rejects.toThrow(/could not be counted/);
    expect(calls).toHaveLength(4);
    expect(new Set(calls.map((c) => keyOf(c.init)))).toEqual(new Set(['k-3']));
  });

  it('waits with growing backoff between attempts', async () => {
    const waits: number[] = [];
    const policy: RetryPolicy = { ...noWait, sleep: (ms) => (waits.push(ms), Promise.resolve()), random: () => 0.999 };
    const down = () => Promise.reject(new TypeError('Failed to fetch'));
    const { fetchImpl } = scripted(down, down, down, () => Promise.resolve(json(200, answer)));
    await createApi('', fetchImpl, policy).change('global', 'increment', 'k-4');
    expect(waits).toEqual([9, 19, 39]);
  });
});
