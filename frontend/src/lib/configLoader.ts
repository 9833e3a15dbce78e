import { backoffDelay } from './backoff';
import { type Config, loadConfig } from './config';

export interface ConfigLoaderOptions {
  page: URL;
  fetch: typeof fetch;
  /** Stops the loading: what is on its way, and the next try. */
  signal: AbortSignal;
  onLoaded: (config: Config) => void;
  /** Why a try failed; another follows. */
  onFailed: (reason: string) => void;
  /** Where the backoff's jitter comes from. */
  random: () => number;
}

/** Reads the configuration, trying again with backoff until it arrives or the signal aborts. */
export function keepLoadingConfig(options: ConfigLoaderOptions): void {
  const { page, fetch, signal, onLoaded, onFailed, random } = options;
  let retry: ReturnType<typeof setTimeout> | undefined;
  signal.addEventListener('abort', () => {
    clearTimeout(retry);
  });
  const attempt = (failures: number) => {
    loadConfig(page, fetch, signal).then(
      (config) => {
        if (!signal.aborted) onLoaded(config);
      },
      (error: unknown) => {
        if (signal.aborted) return;
        onFailed(error instanceof Error && error.name !== 'AbortError' ? error.message : 'it did not arrive in time');
        retry = setTimeout(() => {
          attempt(failures + 1);
        }, 1_000 + backoffDelay(failures, 1_000, 15_000, random));
      },
    );
  };
  attempt(0);
}
