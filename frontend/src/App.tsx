import { useCallback, useEffect, useRef, useState } from 'react';
import { type Api, ApiError, createApi, newIdempotencyKey } from './lib/api';
import { counterFromPath, loadConfig } from './lib/config';
import { LiveConnection, websocketUrl } from './lib/live';
import { advance } from './lib/monotonic';
import type { ConnectionState, CounterValue, HistoryItem } from './lib/types';

const counter = counterFromPath(window.location.pathname);

/** How long after a pushed value the history is re-read (one read for a burst of values). */
const HISTORY_REFRESH_MS = 250;

function formatTime(at: string): string {
  return new Date(at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function App() {
  const [shown, setShown] = useState<CounterValue | null>(null);
  const [state, setState] = useState<ConnectionState>('reconnecting…');
  const [history, setHistory] = useState<HistoryItem[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(0);
  const [ready, setReady] = useState(false);
  const api = useRef<Api | null>(null);

  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const show = useCallback((incoming: CounterValue) => {
    setShown((current) => advance(current, incoming, counter));
  }, []);

  const refresh = useCallback(async () => {
    const client = api.current;
    if (client === null) return;
    try {
      const [value, page] = await Promise.all([client.read(counter), client.history(counter, 10)]);
      show(value);
      setHistory((current) => {
        const newest = current[0]?.value ?? 0;
        return (page.items[0]?.value ?? 0) >= newest ? page.items : current;
      });
    } catch (failure) {
      setError(failure instanceof ApiError ? failure.message : 'The counter could not be read.');
    }
  }, [show]);

  /** Re-reads the history once a burst of pushed values has settled, not once per value. */
  const refreshSoon = useCallback(() => {
    if (refreshTimer.current !== null) return;
    refreshTimer.current = setTimeout(() => {
      refreshTimer.current = null;
      void refresh();
    }, HISTORY_REFRESH_MS);
  }, [refresh]);

  useEffect(() => {
    let live: LiveConnection | null = null;
    let cancelled = false;
    const page = new URL(window.location.href);
    const online = () => live?.reconnectNow();
    const offline = () => live?.markOffline();
    void loadConfig(page).then((config) => {
      if (cancelled) return;
      api.current = createApi(config.apiUrl);
      live = new LiveConnection({
        url: websocketUrl(config.wsUrl, counter),
        createSocket: (url) => new WebSocket(url),
        onValue: (value) => {
          show(value);
          refreshSoon();
        },
        onState: setState,
        onConnected: () => void refresh(),
      });
      live.start();
      setReady(true);
      void refresh();
    });
    window.addEventListener('online', online);
    window.addEventListener('offline', offline);
    return () => {
      cancelled = true;
      live?.stop();
      if (refreshTimer.current !== null) clearTimeout(refreshTimer.current);
      window.removeEventListener('online', online);
      window.removeEventListener('offline', offline);
    };
  }, [refresh, refreshSoon, show]);

  const increment = () => {
    const client = api.current;
    if (client === null) return;
    setError(null);
    setPending((n) => n + 1);
    client
      .increment(counter, newIdempotencyKey())
      .then((answer) => {
        show({ counter: answer.counter, value: answer.value, updatedAt: answer.updatedAt });
        void refresh();
      })
      .catch((failure: unknown) => {
        setError(failure instanceof ApiError ? failure.message : 'The click could not be counted. Try again.');
      })
      .finally(() => {
        setPending((n) => n - 1);
      });
  };

  return (
    <main className="page">
      <header>
        <h1>Number Acidizer</h1>
        <p className="counter-name">
          counter <code>{counter}</code>
        </p>
      </header>
      <section className="value-card">
        <output data-testid="counter-value" aria-live="polite" aria-label="Counter value" className="value">
          {shown === null ? '…' : String(shown.value)}
        </output>
        <button type="button" className="increment" onClick={increment} disabled={!ready}>
          Increment
        </button>
        <p className={`status status-${state === 'live' ? 'live' : state === 'offline' ? 'offline' : 'waiting'}`}>
          <span className="dot" aria-hidden="true" />
          <span data-testid="connection-status">{state}</span>
          {pending > 0 && <span className="pending"> · sending {pending}</span>}
        </p>
        {error !== null && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </section>
      <section className="history">
        <h2>Last increments</h2>
        {history.length === 0 ? (
          <p className="empty">None yet.</p>
        ) : (
          <ol>
            {history.map((item) => (
              <li key={item.value}>
                <span className="history-value">{item.value}</span>
                <time dateTime={item.at}>{formatTime(item.at)}</time>
              </li>
            ))}
          </ol>
        )}
      </section>
    </main>
  );
}
