/** An answer, read to its end. */
export interface Answer {
  status: number;
  ok: boolean;
  headers: Headers;
  body: string;
}

/**
 * One request and its answer read to the end — the body too, so a server that stalls mid-answer is caught —
 * abandoned after `timeoutMs`, or when `signal` aborts.
 */
export async function fetchAnswer(
  fetchImpl: typeof fetch,
  url: string | URL,
  init: RequestInit,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Answer> {
  const abort = new AbortController();
  const timer = setTimeout(() => {
    abort.abort();
  }, timeoutMs);
  const stop = () => {
    abort.abort();
  };
  signal?.addEventListener('abort', stop);
  try {
    const response = await fetchImpl(url, { ...init, signal: abort.signal });
    const body = await response.text();
    return { status: response.status, ok: response.ok, headers: response.headers, body };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  }
}
