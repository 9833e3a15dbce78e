import type { SocketLike } from '../lib/live';
import type { HistoryItem } from '../lib/types';

/** How the fake server behaves right now. */
export type Mode =
  /** Answers everything. */
  | 'up'
  /** Refuses connections: fetches fail, sockets close before they open. */
  | 'down'
  /** Takes requests and never answers; open sockets stay open and say nothing (a half-open connection), new ones
   * never open. */
  | 'silent'
  /** Accepts WebSocket connections and closes them at once; HTTP works. */
  | 'flapping';

interface Counter {
  value: number;
  seq: number;
  history: HistoryItem[];
}

const AT = '2026-11-23T10:00:00.000Z';

/** A socket of the fake server, opened and answered by it on the next turn of the timers. */
export class FakeServerSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  onmessage: SocketLike['onmessage'] = null;
  isOpen = false;
  closed = false;

  constructor(
    private readonly server: FakeServer,
    readonly counter: string,
  ) {}

  send(data: string) {
    if (!this.isOpen) throw new Error('not open');
    if (this.server.mode !== 'up') return;
    const message = JSON.parse(data) as { action?: string };
    if (message.action === 'sync') this.push(this.server.valueMessage(this.counter));
    else if (message.action === 'ping') this.push({ type: 'pong' });
    else this.push({ type: 'error', detail: 'unknown action' });
  }

  close() {
    this.closed = true;
    this.isOpen = false;
  }

  push(message: unknown) {
    if (this.server.mode === 'silent') return;
    const data = JSON.stringify(message);
    setTimeout(() => {
      if (this.isOpen) this.onmessage?.({ data } as MessageEvent);
    }, 1);
  }

  /** The server goes away: the client sees the close. */
  serverClose() {
    if (this.closed) return;
    this.isOpen = false;
    this.closed = true;
    this.onclose?.({ code: 1006 } as CloseEvent);
  }
}

/**
 * An acidizer stand-in for the page's tests: the routes the page uses, idempotency keys, the floor and the ceiling,
 * pushes to subscribers, and modes that fail the way real networks do.
 */
export class FakeServer {
  mode: Mode = 'up';
  /** Pushes of new values are lost on the way (a laptop asleep); answers to the client's messages are not. */
  losePushes = false;
  /** HTTP requests fail (the network drops them) while the WebSocket works. */
  httpDown = false;
  /** Answers to changes start but their bodies never end. */
  stallBodies = false;
  counterMax = 1_000_000_000;
  /** Statuses (and a Retry-After) the next changes answer instead of committing, one per change. */
  failNextChanges: { status: number; retryAfter?: string }[] = [];
  readonly requests: { method: string; path: string; key: string | null; at: number }[] = [];
  readonly sockets: FakeServerSocket[] = [];
  private readonly counters = new Map<string, Counter>();
  private readonly answers = new Map<string, { body: string; operation: string; counter: string }>();

  counter(name: string): Counter {
    let counter = this.counters.get(name);
    if (counter === undefined) {
      counter = { value: 0, seq: 0, history: [] };
      this.counters.set(name, counter);
    }
    return counter;
  }

  valueMessage(name: string) {
    const counter = this.counter(name);
    return { type: 'value', counter: name, value: counter.value, seq: counter.seq, updatedAt: AT };
  }

  /** Commits a change as another client would, and pushes it. */
  commit(name: string, delta: 1 | -1, requestId = `other-${Math.random().toString(36).slice(2)}`) {
    const counter = this.counter(name);
    counter.value += delta;
    counter.seq += 1;
    const seq = counter.seq;
    counter.history.unshift({ seq, delta, value: counter.value, requestId, at: AT });
    if (!this.losePushes) for (const socket of this.sockets) if (socket.counter === name) socket.push(this.valueMessage(name));
    return { counter: name, value: counter.value, seq, delta, requestId, updatedAt: AT };
  }

  /** Sets a counter's value as if it had got there by increments. */
  seed(name: string, value: number) {
    const counter = this.counter(name);
    counter.value = value;
    counter.seq = value;
    counter.history = [{ seq: value, delta: 1, value, requestId: 'seed', at: AT }];
  }

  /** The changes committed with this request id. */
  commitsOf(key: string): number {
    let n = 0;
    for (const counter of this.counters.values()) n += counter.history.filter((h) => h.requestId === key).length;
    return n;
  }

  readonly fetch = ((input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString(), 'http://page.test');
    const method = init?.method ?? 'GET';
    const key = (init?.headers as Record<string, string> | undefined)?.['Idempotency-Key'] ?? null;
    this.requests.push({ method, path: url.pathname, key, at: Date.now() });
    if (this.mode === 'down' || this.httpDown) return Promise.reject(new TypeError('Failed to fetch'));
    if (this.mode === 'silent') {
      return new Promise((_, reject) => {
        init?.signal?.addEventListener('abort', () => {
          reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        });
      });
    }
    const answer = this.answer(method, url, key);
    if (this.stallBodies && method === 'POST') return Promise.resolve(stalled(answer.status, init?.signal));
    return Promise.resolve(answer);
  }) as typeof fetch;

  readonly createSocket = (url: string): SocketLike => {
    const counter = new URL(url).searchParams.get('counter') ?? 'global';
    const socket = new FakeServerSocket(this, counter);
    this.sockets.push(socket);
    const mode = this.mode;
    setTimeout(() => {
      if (socket.closed || mode === 'silent') return;
      if (mode === 'down') {
        socket.serverClose();
        return;
      }
      socket.isOpen = true;
      socket.onopen?.(new Event('open'));
      if (mode === 'flapping') socket.serverClose();
    }, 1);
    return socket;
  };

  /** Changes the mode; going down closes every open socket, as a server that exits does. */
  setMode(mode: Mode) {
    this.mode = mode;
    if (mode === 'down') for (const socket of this.sockets) socket.serverClose();
  }

  private answer(method: string, url: URL, key: string | null): Response {
    if (url.pathname === '/config.json') return json(200, { counterMax: this.counterMax });
    const match = /^\/counters\/([^/]+)(?:\/(history|increment|decrement))?$/.exec(url.pathname);
    if (match === null) return json(404, { title: 'Not found', status: 404, detail: 'no such route' });
    const name = decodeURIComponent(match[1] ?? '');
    const action = match[2];
    const counter = this.counter(name);
    if (method === 'GET' && action === undefined) {
      const { value, seq, updatedAt } = this.valueMessage(name);
      return json(200, { counter: name, value, seq, updatedAt });
    }
    if (method === 'GET' && action === 'history') {
      const limit = Number(url.searchParams.get('limit') ?? '10');
      return json(200, { counter: name, items: counter.history.slice(0, limit), next: null });
    }
    if (method !== 'POST' || (action !== 'increment' && action !== 'decrement')) {
      return json(405, { title: 'Method not allowed', status: 405, detail: 'no' });
    }
    const failure = this.failNextChanges.shift();
    if (failure !== undefined) {
      const headers: Record<string, string> = failure.retryAfter === undefined ? {} : { 'Retry-After': failure.retryAfter };
      return json(failure.status, { title: 'Unavailable', status: failure.status, detail: 'try again' }, headers);
    }
    if (key !== null) {
      const known = this.answers.get(key);
      if (known !== undefined) {
        if (known.operation !== action || known.counter !== name) {
          return json(422, { title: 'Key reused', status: 422, detail: 'this Idempotency-Key was used for another request' });
        }
        return json(200, JSON.parse(known.body), { 'Idempotent-Replayed': 'true' });
      }
    }
    const delta = action === 'increment' ? 1 : -1;
    if (delta === -1 && counter.value <= 0) {
      return json(409, { title: 'At the floor', status: 409, detail: `the counter '${name}' is at 0` });
    }
    if (delta === 1 && counter.value >= this.counterMax) {
      return json(409, { title: 'At the ceiling', status: 409, detail: `the counter '${name}' is at its ceiling` });
    }
    const body = this.commit(name, delta, key ?? `server-${Math.random()}`);
    if (key !== null) this.answers.set(key, { body: JSON.stringify(body), operation: action, counter: name });
    return json(200, body);
  }
}

/** An answer whose headers arrive and whose body never ends, until the request is aborted. */
function stalled(status: number, signal: AbortSignal | null | undefined): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"counter":'));
      signal?.addEventListener('abort', () => {
        controller.error(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      });
    },
  });
  return new Response(body, { status, headers: { 'content-type': 'application/json' } });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}
