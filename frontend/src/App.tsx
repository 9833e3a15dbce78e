import { type CSSProperties, useEffect } from 'react';
import { type CounterPage, type PageState, formatValue } from './lib/counterPage';
import type { HistoryItem, Operation } from './lib/types';
import { Sparkline } from './Sparkline';
import { useCounterPage } from './useCounterPage';

const TITLE = 'Number Acidizer';

function formatDate(at: string): string {
  return new Date(at).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

const sign = (operation: Operation) => (operation === 'increment' ? '+1' : '−1');

/** The tab's title: the value and its counter, so a background tab still tells it. */
function useTitle(state: PageState): void {
  const { counter, shown } = state;
  const title = !counter.valid
    ? `No such counter · ${TITLE}`
    : shown === null
      ? `${counter.name} · ${TITLE}`
      : `${formatValue(shown.value)} · ${counter.name} · ${TITLE}`;
  useEffect(() => {
    document.title = title;
  }, [title]);
}

export function App({ page }: { page: CounterPage }) {
  const state = useCounterPage(page);
  useTitle(state);
  const { counter } = state;
  if (!counter.valid) {
    return (
      <main className="page">
        <header>
          <h1>{TITLE}</h1>
        </header>
        <section className="value-card">
          <p role="alert" className="error">
            There is no counter “{counter.shown}”. {counter.reason}
          </p>
          <p>
            <a href="/">Go to the global counter</a>
          </p>
        </section>
      </main>
    );
  }
  return (
    <main className="page">
      <header>
        <h1>{TITLE}</h1>
        <p className="counter-name">
          counter <code>{counter.name}</code>
        </p>
      </header>
      <Card state={state} page={page} />
      <History items={state.history} ownKeys={state.ownKeys} />
    </main>
  );
}

function Card({ state, page }: { state: PageState; page: CounterPage }) {
  const { shown, ready, counterMax, clicks, connection } = state;
  const value = shown?.value ?? null;
  const text = value === null ? '…' : formatValue(value);
  const sending = clicks.filter((c) => c.state === 'sending');
  const failed = clicks.filter((c) => c.state === 'failed');
  const busy = (operation: Operation) => sending.some((c) => c.operation === operation);
  const tone = connection === 'live' ? 'live' : connection === 'offline' ? 'offline' : 'waiting';
  return (
    <section className="value-card" aria-label="Counter">
      <p data-testid="counter-value" className="value" style={{ '--chars': text.length } as CSSProperties}>
        {text}
      </p>
      <p className="visually-hidden" aria-live="polite" data-testid="announcement">
        {state.announcement}
      </p>
      <div className="buttons">
        <button
          type="button"
          className="decrement"
          aria-busy={busy('decrement')}
          onClick={() => {
            page.click('decrement');
          }}
          disabled={!ready || value === null || value <= 0}
        >
          Decrement
        </button>
        <button
          type="button"
          className="increment"
          aria-busy={busy('increment')}
          onClick={() => {
            page.click('increment');
          }}
          disabled={!ready || value === null || value >= counterMax}
        >
          Increment
        </button>
      </div>
      <p role="status" className={`status status-${tone}`}>
        <span className="dot" aria-hidden="true" />
        <span data-testid="connection-status">{connection}</span>
        {state.connectionReason !== null && connection !== 'live' && (
          <span className="reason"> — {state.connectionReason}</span>
        )}
        {sending.length > 0 && <span className="pending"> · sending {sending.length}</span>}
      </p>
      {state.readError !== null && (
        <p role="alert" className="error">
          {state.readError}
        </p>
      )}
      {state.refusal !== null && (
        <p role="alert" className="error">
          {state.refusal}
        </p>
      )}
      {failed.map((click, i) => (
        <div role="alert" className="error failed-click" key={click.key}>
          <span>
            Your {sign(click.operation)} is not confirmed: {click.reason}. It is sent again by itself, and never counted
            twice.
          </span>
          <button
            type="button"
            className="retry"
            aria-label={`Retry your ${sign(click.operation)}${failed.length > 1 ? ` (${i + 1} of ${failed.length})` : ''} now`}
            onClick={() => {
              page.retry(click.key);
            }}
          >
            Retry
          </button>
        </div>
      ))}
      <Sparkline perMinute={state.perMinute} />
    </section>
  );
}

function History({ items, ownKeys }: { items: readonly HistoryItem[]; ownKeys: ReadonlySet<string> }) {
  return (
    <section className="history" aria-labelledby="history-heading">
      <h2 id="history-heading">Last changes</h2>
      {items.length === 0 ? (
        <p className="empty">None yet.</p>
      ) : (
        // `list-style: none` takes the list role away in some browsers: it is given back explicitly.
        <ol role="list">
          {items.map((item) => (
            <li key={item.seq} className={ownKeys.has(item.requestId) ? 'own' : undefined}>
              <span className={`history-delta ${item.delta > 0 ? 'up' : 'down'}`}>{item.delta > 0 ? '+1' : '−1'}</span>
              <span className="history-value">{formatValue(item.value)}</span>
              {ownKeys.has(item.requestId) && <span className="own-badge">your click</span>}
              <time dateTime={item.at}>{formatDate(item.at)}</time>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
