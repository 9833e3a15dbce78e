import { backoffDelay, sleep } from './backoff';
import type { ChangeAnswer, CounterValue, HistoryPage, Operation, Problem } from './types';

/** A failure the user should hear about: the server refused, or the network stayed down through every retry. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  capMs: number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

export const defaultRetry: RetryPolicy = { attempts: 5, baseMs: 200, capMs: 3000, sleep, random: Math.random };

/** A fresh idempotency key: one per click. */
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}

async function problemOf(response: Response): Promise<string> {
  try {
    const problem = (await response.json()) as Partial<Problem>;
    return problem.detail ?? problem.title ?? `the server answered ${response.status}`;
  } catch {
    return `the server answered ${response.status}`;
  }
}

function isRetryable(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

export function createApi(baseUrl: string, fetchImpl: typeof fetch = fetch, retry: RetryPolicy = defaultRetry) {
  const url = (path: string) => `${baseUrl}${path}`;
  const counterPath = (counter: string) => `/counters/${encodeURIComponent(counter)}`;

  async function getJson<T>(path: string): Promise<T> {
    const response = await fetchImpl(url(path), { cache: 'no-store' });
    if (!response.ok) throw new ApiError(await problemOf(response), response.status);
    return (await response.json()) as T;
  }

  return {
    read: (counter: string) => getJson<CounterValue>(counterPath(counter)),

    history: (counter: string, limit = 10) => getJson<HistoryPage>(`${counterPath(counter)}/history?limit=${limit}`),

    /**
     * Changes the counter once (+1 or -1). A network failure, a 429 or a 5xx is retried with the same key, so the
     * server counts the click at most once however often it is sent; anything else (a 409 at a bound, say) is
     * reported in the server's words.
     */
    async change(counter: string, operation: Operation, key: string): Promise<ChangeAnswer> {
      let lastFailure = 'the network is unreachable';
      for (let attempt = 0; attempt < retry.attempts; attempt += 1) {
        if (attempt > 0) await retry.sleep(backoffDelay(attempt - 1, retry.baseMs, retry.capMs, retry.random));
        let response: Response;
        try {
          response = await fetchImpl(url(`${counterPath(counter)}/${operation}`), {
            method: 'POST',
            headers: { 'Idempotency-Key': key },
          });
        } catch {
          lastFailure = 'the network is unreachable';
          continue;
        }
        if (response.ok) return (await response.json()) as ChangeAnswer;
        if (!isRetryable(response.status)) throw new ApiError(await problemOf(response), response.status);
        lastFailure = await problemOf(response);
      }
      throw new ApiError(`The click could not be counted: ${lastFailure}. Try again.`, null);
    },
  };
}

export type Api = ReturnType<typeof createApi>;
