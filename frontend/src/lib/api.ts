import { backoffDelay, sleep } from './backoff';
import { type Answer, fetchAnswer } from './fetchAnswer';
import type { ChangeAnswer, CounterValue, HistoryPage, Operation, Problem } from './types';

/**
 * A request that did not succeed: `refused` when the server said no (a 409 at a bound, a 422), `unreachable` when
 * no answer came through every retry (network down, timeouts, 429, 5xx).
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly kind: 'refused' | 'unreachable' | 'aborted',
    readonly status: number | null,
    /** How long the server asked to wait before the next try (`Retry-After`), when it did. */
    readonly retryAfterMs: number | null = null,
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

/**
 * A change is retried for 30 s; a read gives up sooner, as the page reads again when the server is back. One
 * attempt may take longer than the server's own 10 s deadline, so an answer on its way is not abandoned.
 */
export const changeRetry: RetryPolicy = {
  timeoutMs: 12_000,
  retryForMs: 30_000,
  baseMs: 250,
  capMs: 4_000,
  sleep,
  random: Math.random,
};
export const readRetry: RetryPolicy = { ...changeRetry, retryForMs: 15_000, baseMs: 1_000, capMs: 8_000 };

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

function problemOf(answer: Answer): string {
  try {
    const problem = JSON.parse(answer.body) as Partial<Problem>;
    return problem.detail ?? problem.title ?? `the server answered ${answer.status}`;
  } catch {
    return `the server answered ${answer.status}`;
  }
}

/** Waits `ms`, or less if `signal` aborts (then nothing of the wait is left behind). */
async function pause(policy: RetryPolicy, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return policy.sleep(ms);
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * Sends a request until it gets an answer that is not "not now": each attempt with a timeout, retried (the same
 * request, so the same `Idempotency-Key`) after a network failure, a timeout, a 408, 429 or 5xx, waiting as long as
 * `Retry-After` asks and at least the backoff, for as long as the policy allows.
 */
async function send(
  fetchImpl: typeof fetch,
  url: string,
  init: RequestInit,
  policy: RetryPolicy,
  signal?: AbortSignal,
): Promise<Answer> {
  const giveUpAt = Date.now() + policy.retryForMs;
  for (let tries = 0; ; tries += 1) {
    let wait = backoffDelay(tries, policy.baseMs, policy.capMs, policy.random);
    let failure: string;
    let retryAfter: number | null = null;
    try {
      const answer = await fetchAnswer(fetchImpl, url, init, policy.timeoutMs, signal);
      if (answer.ok) return answer;
      if (!isRetryable(answer.status)) throw new ApiError(problemOf(answer), 'refused', answer.status);
      retryAfter = retryAfterMs(answer.headers.get('Retry-After'));
      wait = Math.max(wait, retryAfter ?? 0);
      failure = problemOf(answer);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      const timedOut = error instanceof Error && error.name === 'AbortError';
      failure = timedOut ? 'the server did not answer in time' : 'the server cannot be reached';
    }
    stopIfAborted(signal);
    if (Date.now() + wait > giveUpAt) throw new ApiError(failure, 'unreachable', null, retryAfter);
    await pause(policy, wait, signal);
    stopIfAborted(signal);
  }
}

function stopIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new ApiError('the page stopped sending it', 'aborted', null);
}

function parse(answer: Answer): unknown {
  try {
    return JSON.parse(answer.body);
  } catch {
    throw new ApiError('the server answered something that is not JSON', 'unreachable', answer.status);
  }
}

export function createApi(
  baseUrl: string,
  fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  policies: { change: RetryPolicy; read: RetryPolicy } = { change: changeRetry, read: readRetry },
) {
  const url = (path: string) => `${baseUrl}${path}`;
  const counterPath = (counter: string) => `/counters/${encodeURIComponent(counter)}`;

  async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
    return parse(await send(fetchImpl, url(path), { cache: 'no-store' }, policies.read, signal)) as T;
  }

  return {
    read: (counter: string, signal?: AbortSignal) => getJson<CounterValue>(counterPath(counter), signal),

    history: (counter: string, limit = 10, signal?: AbortSignal) =>
      getJson<HistoryPage>(`${counterPath(counter)}/history?limit=${limit}`, signal),

    /**
     * Changes the counter once (+1 or -1), however often the request has to be sent: every attempt carries `key`,
     * so the server counts it at most once. A refusal (a 409 at a bound, say) is reported in the server's words.
     */
    async change(counter: string, operation: Operation, key: string, signal?: AbortSignal): Promise<ChangeAnswer> {
      const init: RequestInit = { method: 'POST', headers: { 'Idempotency-Key': key } };
      const path = url(`${counterPath(counter)}/${operation}`);
      return parse(await send(fetchImpl, path, init, policies.change, signal)) as ChangeAnswer;
    },
  };
}

export type Api = ReturnType<typeof createApi>;
