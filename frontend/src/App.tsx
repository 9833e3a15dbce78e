import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { type Api, ApiError, createApi, newIdempotencyKey } from './lib/api';
import { DEFAULT_COUNTER_MAX, counterFromPath, loadConfig } from './lib/config';
import { LiveConnection, websocketUrl } from './lib/live';
import { advance } from './lib/monotonic';
import type { ConnectionState, CounterValue, HistoryItem, Operation } from './lib/types';

const counter = counterFromPath(window.location.pathname);

/** How long after a pushed value the history is re-read (one read for a burst of values). */
const HISTORY_REFRESH_MS = 250;

/**
 * What went wrong, and what clears it: a read error, or a click that could not get through (network, 429, 5xx),
 * clears once the page is in touch with the server again; a refusal (a 409 at a bound, say) on the next click.
 */
interface Failure {
  source: 'read' | 'click';
  message: string;
  /** The HTTP status of a refusal; null when the server could not be reached or answered 429/5xx. */
  status: number | null;
}

/** Whether a failure says nothing about the counter, only about the connection: recovery clears it. */
function clearsOnRecovery(failure: Failure | null): boolean {
  return failure !== null && (failure.source === 'read' || failure.status === null || failure.status >= 429);
}

function formatTime(at: string): string {
  return new Date(at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function App() {
  const [shown, setShown] = useState<CounterValue | null>(null);
  const [state, setState] = useState<ConnectionState>('reconnecting…');
  const [history, setHistory] = useState<HistoryItem[]>([]);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [pending, setPending] = useState(0);
  const [counterMax, setCounterMax] = useState(DEFAULT_COUNTER_MAX);
  const [ready, setReady] = useState(false);
  const api = useRef<Api | null>(null);
  /** The state on screen (the highest `seq` seen): what a pushed value must beat to be news. */
  const latest = useRef<CounterValue | null>(null);
  /** The last read failed: the next sign of life from the server (a pushed value) reads again. */
  const readFailed = useRef(false);
  /** A read is under way: a pushed value then waits for it instead of asking for another. */
  const reading = useRef(false);

  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  /** Shows a state if it is newer than the one shown; tells whether it was. */
  const show = useCallback((incoming: CounterValue): boolean => {
    const next = advance(latest.current, incoming, counter);
    if (next === latest.current) return false;
    latest.current = next;
    setShown(next);
    return true;
  }, []);

  /**
   * `refresh` reads the value and the history (one read at a time); `refreshSoon` re-reads once a burst of pushed
   * values has settled, not once per value, and not while a read is under way — that read checks, when it ends,
   * whether a value pushed meanwhile is newer than the history it got.
   */
  const { refresh, refreshSoon } = useMemo(() => {
    const refreshSoon = () => {
      if (refreshTimer.current !== null || reading.current) return;
      refreshTimer.current = setTimeout(() => {
        refreshTimer.current = null;
        void refresh();
      }, HISTORY_REFRESH_MS);
    };
    const refresh = async () => {
      const client = api.current;
      if (client === null || reading.current) return;
      reading.current = true;
      try {
        const [value, page] = await Promise.all([client.read(counter), client.history(counter, 10)]);
        show(value);
        const newest = page.items[0]?.seq ?? 0;
        setHistory((current) => (newest >= (current[0]?.seq ?? 0) ? page.items : current));
        readFailed.current = false;
        setFailure((current) => (clearsOnRecovery(current) ? null : current));
        reading.current = false;
        if ((latest.current?.seq ?? -1) > newest) refreshSoon();
      } catch (error) {
        reading.current = false;
        readFailed.current = true;
        const message = error instanceof ApiError ? error.message : 'The counter could not be read.';
        setFailure({ source: 'read', message, status: null });
      }
    };
    return { refresh, refreshSoon };
  }, [show]);

  useEffect(() => {
    let live: LiveConnection | null = null;
    let cancelled = false;
    const page = new URL(window.location.href);
    const online = () => live?.reconnectNow();
    const offline = () => live?.markOffline();
    void loadConfig(page).then((config) => {
      if (cancelled) return;
      api.current = createApi(config.apiUrl);
      setCounterMax(config.counterMax);
      live = new LiveConnection({
        url: websocketUrl(config.wsUrl, counter),
        createSocket: (url) => new WebSocket(url),
        onValue: (value) => {
          // The first state shown comes with the read of the history already under way; after a failed read,
          // any value is a sign the server is back, worth another read.
          const hadState = latest.current !== null;
          if ((show(value) && hadState) || readFailed.current) refreshSoon();
        },
        onState: (next) => {
          setState(next);
          if (next === 'live') setFailure((current) => (clearsOnRecovery(current) ? null : current));
        },
        onReconnected: () => void refresh(),
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

  const change = (operation: Operation) => {
    const client = api.current;
    if (client === null) return;
    setFailure(null);
    setPending((n) => n + 1);
    client
      .change(counter, operation, newIdempotencyKey())
      .then((answer) => {
        if (show({ counter: answer.counter, value: answer.value, seq: answer.seq, updatedAt: answer.updatedAt })) {
          refreshSoon();
        }
      })
      .catch((error: unknown) => {
        const message = error instanceof ApiError ? error.message : 'The click could not be counted. Try again.';
        setFailure({ source: 'click', message, status: error instanceof ApiError ? error.status : null });
      })
      .finally(() => {
        setPending((n) => n - 1);
      });
  };

  const value = shown?.value ?? null;
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
          {value === null ? '…' : String(value)}
        </output>
        <div className="buttons">
          <button
            type="button"
            className="decrement"
            onClick={() => {
              change('decrement');
            }}
            disabled={!ready || value === null || value <= 0}
          >
            Decrement
          </button>
          <button
            type="button"
            className="increment"
            onClick={() => {
              change('increment');
            }}
            disabled={!ready || value === null || value >= counterMax}
          >
            Increment
          </button>
        </div>
        <p className={`status status-${state === 'live' ? 'live' : state === 'offline' ? 'offline' : 'waiting'}`}>
          <span className="dot" aria-hidden="true" />
          <span data-testid="connection-status">{state}</span>
          {pending > 0 && <span className="pending"> · sending {pending}</span>}
        </p>
        {failure !== null && (
          <p role="alert" className="error">
            {failure.message}
          </p>
        )}
      </section>
      <section className="history">
        <h2>Last changes</h2>
        {history.length === 0 ? (
          <p className="empty">None yet.</p>
        ) : (
          <ol>
            {history.map((item) => (
              <li key={item.seq}>
                <span className={`history-delta ${item.delta > 0 ? 'up' : 'down'}`}>
                  {item.delta > 0 ? '+1' : '−1'}
                </span>
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
