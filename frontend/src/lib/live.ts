import { backoffDelay } from './backoff';
import type { ConnectionState, CounterValue, ServerMessage } from './types';

/** The part of a WebSocket this uses, so tests can stand one in. */
export interface SocketLike {
  onopen: ((event: Event) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  send(data: string): void;
  close(): void;
}

export interface LiveOptions {
  /** The WebSocket URL, `counter` included. */
  url: string;
  createSocket: (url: string) => SocketLike;
  onValue: (value: CounterValue) => void;
  /** The connection's state, and why when it is not live. */
  onState: (state: ConnectionState, reason: string | null) => void;
  baseMs?: number;
  capMs?: number;
  /** Failed attempts in a row after which the state reads `offline` (reconnecting goes on). */
  offlineAfter?: number;
  /** How long a connection stays up before its backoff starts again from the base. */
  stableAfterMs?: number;
  /** How often an open connection asks the server for a pong. */
  pingEveryMs?: number;
  /** How long an answer (any message) may take before the connection is taken for lost. */
  answerWithinMs?: number;
  random?: () => number;
}

export function websocketUrl(base: string, counter: string): string {
  const url = new URL(base);
  url.searchParams.set('counter', counter);
  return url.toString();
}

const SYNC = JSON.stringify({ action: 'sync' });
const PING = JSON.stringify({ action: 'ping' });

/**
 * A WebSocket subscription that syncs on every connect, pings to tell a live connection from a half-open one, and
 * reconnects with exponential backoff and full jitter — a backoff that starts again from the base only once a
 * connection has stayed up, so a server that accepts and closes at once is not hammered.
 */
export class LiveConnection {
  private socket: SocketLike | null = null;
  private answered = false;
  private failures = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private stableTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private answerTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;
  private readonly options: Required<LiveOptions>;

  constructor(options: LiveOptions) {
    this.options = {
      baseMs: 500,
      capMs: 15_000,
      offlineAfter: 4,
      stableAfterMs: 10_000,
      pingEveryMs: 15_000,
      answerWithinMs: 5_000,
      random: Math.random,
      ...options,
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.failures = 0;
    this.options.onState('connecting…', null);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.drop();
  }

  /**
   * The page is back in view, or the browser is back online: check now. An open connection is asked for the
   * current value and must answer in time; a closed one reconnects at once, without waiting out the backoff.
   */
  checkNow(): void {
    if (this.stopped) return;
    if (this.answered && this.socket !== null) {
      this.send(SYNC);
      return;
    }
    // Not connected, or connecting without an answer yet: start over now.
    this.clearTimers();
    this.drop();
    this.connect();
  }

  private connect(): void {
    this.reconnectTimer = null;
    let socket: SocketLike;
    try {
      socket = this.options.createSocket(this.options.url);
    } catch {
      this.lost('the live connection could not be opened');
      return;
    }
    this.socket = socket;
    // A connection that neither opens nor answers in time is as good as gone.
    this.answerTimer = setTimeout(() => {
      this.answerTimer = null;
      this.lost('the server did not answer');
    }, this.options.answerWithinMs * 2);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.send(SYNC);
      if (this.socket !== socket) return;
      this.stableTimer = setTimeout(() => {
        this.stableTimer = null;
        this.failures = 0;
      }, this.options.stableAfterMs);
      this.pingTimer = setInterval(() => {
        this.send(PING);
      }, this.options.pingEveryMs);
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.cancel('answerTimer');
      if (!this.answered) {
        // Live only once the server has answered: a socket that opens and says nothing is no connection.
        this.answered = true;
        this.options.onState('live', null);
      }
      const message = parseMessage(event.data);
      if (message?.type === 'value') {
        const { counter, value, seq, updatedAt } = message;
        this.options.onValue({ counter, value, seq, updatedAt });
      }
    };
    socket.onerror = () => {
      // A close follows every error; reconnecting starts there.
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.lost(this.answered ? 'the live connection closed' : 'the server cannot be reached');
    };
  }

  /** Sends a message that the server answers, and takes the connection for lost if no answer comes in time. */
  private send(message: string): void {
    const socket = this.socket;
    if (socket === null) return;
    try {
      socket.send(message);
    } catch {
      this.lost('the live connection failed');
      return;
    }
    this.answerTimer ??= setTimeout(() => {
      this.answerTimer = null;
      this.lost('the server stopped answering');
    }, this.options.answerWithinMs);
  }

  /** The connection is gone (or as good as gone): let it go, say why, and reconnect after the backoff. */
  private lost(reason: string): void {
    this.clearTimers();
    this.drop();
    if (this.stopped) return;
    this.failures += 1;
    const offline = this.failures >= this.options.offlineAfter;
    const delay = backoffDelay(this.failures - 1, this.options.baseMs, this.options.capMs, this.options.random);
    // The same words for every attempt of an outage: a screen reader hears the reason once, not a countdown.
    this.options.onState(offline ? 'offline' : 'reconnecting…', `${reason}; trying again`);
    this.reconnectTimer = setTimeout(() => {
      this.connect();
    }, delay);
  }

  /** Forgets the socket (its late events are ignored) and closes it. */
  private drop(): void {
    const socket = this.socket;
    this.socket = null;
    this.answered = false;
    if (socket === null) return;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
    try {
      socket.close();
    } catch {
      // Closing a socket that never opened can throw; it is gone either way.
    }
  }

  private cancel(timer: 'reconnectTimer' | 'stableTimer' | 'answerTimer'): void {
    const handle = this[timer];
    if (handle !== null) clearTimeout(handle);
    this[timer] = null;
  }

  private clearTimers(): void {
    this.cancel('reconnectTimer');
    this.cancel('stableTimer');
    this.cancel('answerTimer');
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }
}

function parseMessage(data: unknown): ServerMessage | null {
  if (typeof data !== 'string') return null;
  try {
    const message = JSON.parse(data) as Partial<ServerMessage> | null;
    if (
      message?.type === 'value' &&
      typeof message.value === 'number' &&
      typeof message.seq === 'number' &&
      typeof message.counter === 'string'
    ) {
      return message as ServerMessage;
    }
    if (message?.type === 'pong' || message?.type === 'error') return message as ServerMessage;
    return null;
  } catch {
    return null;
  }
}
