import { backoffDelay, sleep } from './backoff';
import type { ChangeAnswer, CounterValue, HistoryPage, Operation, Problem } from './types';

/**
 * A request that did not succeed: `refused` when the server said no (a 409 at a bound, a 422), `unreachable` when
 * no answer came through every retry (network down, timeouts, 429, 5xx).
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly kind: 'refused' | 'unreachable',
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RetryPolicy {
  /** How long one request may take before it is abandoned (and retried). */
  timeoutMs: number;
  /** How long a request keeps being retried: long enough to outlast a server restart. */
  retryForMs: number;
  baseMs: number;
  capMs: number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

/** A change is retried for 30 s; a read gives up sooner, as the page reads again when the server is back. */
export const changeRetry: RetryPolicy = {
  timeoutMs: 8_000,
  retryForMs: 30_000,
  baseMs: 250,
  capMs: 4_000,
  sleep,
  random: Math.random,
};
export const readRetry: RetryPolicy = { ...changeRetry, timeoutMs: 4_000, retryForMs: 10_000 };

/** The statuses that say "not now" rather than "no": the same request may succeed later. */
export function isRetryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | null {
  if (header === null || header.trim() === '') return null;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

async function problemOf(response: Response): Promise<string> {
  try {
    const problem = (await response.json()) as Partial<Problem>;
    return problem.detail ?? problem.title ?? `the server answered ${response.status}`;
  } catch {
    return `the server answered ${response.status}`;
  }
}

/** One attempt, abandoned after the policy's timeout. */
async function attempt(fetchImpl: typeof fetch, url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const abort = new AbortController();
  const timer = setTimeout(() => {
    abort.abort();
  }, timeoutMs);
  try {
    return await fetchImpl(url, { ...init, signal: abort.signal });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends a request until it gets an answer that is not "not now": each attempt with a timeout, retried (the same
 * request, so the same `Idempotency-Key`) after a network failure, a timeout, a 408, 429 or 5xx, waiting as long as
 * `Retry-After` asks and at least the backoff, for as long as the policy allows.
 */
async function send(fetchImpl: typeof fetch, url: string, init: RequestInit, policy: RetryPolicy): Promise<Response> {
  const giveUpAt = Date.now() + policy.retryForMs;
  for (let tries = 0; ; tries += 1) {
    let failure: string;
    let wait = backoffDelay(tries, policy.baseMs, policy.capMs, policy.random);
    try {
      const response = await attempt(fetchImpl, url, init, policy.timeoutMs);
      if (response.ok) return response;
      if (!isRetryable(response.status)) throw new ApiError(await problemOf(response), 'refused', response.status);
      wait = Math.max(wait, retryAfterMs(response.headers.get('Retry-After')) ?? 0);
      failure = await problemOf(response);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      const timedOut = error instanceof Error && error.name === 'AbortError';
      failure = timedOut ? 'the server did not answer in time' : 'the server cannot be reached';
    }
    if (Date.now() + wait > giveUpAt) throw new ApiError(failure, 'unreachable', null);
    await policy.sleep(wait);
  }
}

export function createApi(
  baseUrl: string,
  fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  policies: { change: RetryPolicy; read: RetryPolicy } = { change: changeRetry, read: readRetry },
) {
  const url = (path: string) => `${baseUrl}${path}`;
  const counterPath = (counter: string) => `/counters/${encodeURIComponent(counter)}`;

  async function getJson<T>(path: string): Promise<T> {
    const response = await send(fetchImpl, url(path), { cache: 'no-store' }, policies.read);
    return (await response.json()) as T;
  }

  return {
    read: (counter: string) => getJson<CounterValue>(counterPath(counter)),

    history: (counter: string, limit = 10) => getJson<HistoryPage>(`${counterPath(counter)}/history?limit=${limit}`),

    /**
     * Changes the counter once (+1 or -1), however often the request has to be sent: every attempt carries `key`,
     * so the server counts it at most once. A refusal (a 409 at a bound, say) is reported in the server's words.
     */
    async change(counter: string, operation: Operation, key: string): Promise<ChangeAnswer> {
      const init: RequestInit = { method: 'POST', headers: { 'Idempotency-Key': key } };
      const response = await send(fetchImpl, url(`${counterPath(counter)}/${operation}`), init, policies.change);
      return (await response.json()) as ChangeAnswer;
    },
  };
}

export type Api = ReturnType<typeof createApi>;
