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
  onState: (state: ConnectionState) => void;
  /** After every reconnect (not the first connect): re-read what may have been missed while away. */
  onReconnected: () => void;
  baseMs?: number;
  capMs?: number;
  /** Failed attempts in a row after which the state reads `offline` (reconnecting goes on). */
  offlineAfter?: number;
  random?: () => number;
  setTimer?: (run: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
}

export function websocketUrl(base: string, counter: string): string {
  const url = new URL(base);
  url.searchParams.set('counter', counter);
  return url.toString();
}

/** A WebSocket subscription that reconnects with exponential backoff and full jitter, and re-syncs each time. */
export class LiveConnection {
  private socket: SocketLike | null = null;
  private failures = 0;
  private timer: unknown = null;
  private stopped = false;
  private connectedBefore = false;
  private readonly options: Required<LiveOptions>;

  constructor(options: LiveOptions) {
    this.options = {
      baseMs: 250,
      capMs: 10_000,
      offlineAfter: 6,
      random: Math.random,
      setTimer: (run, ms) => setTimeout(run, ms),
      clearTimer: (timer) => {
        clearTimeout(timer as ReturnType<typeof setTimeout>);
      },
      ...options,
    };
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer();
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }

  /** Reconnects now (e.g. when the browser comes back online), without waiting out the backoff. */
  reconnectNow(): void {
    if (this.stopped || this.socket !== null) return;
    this.cancelTimer();
    this.connect();
  }

  /** The browser says the network is gone: say so, and wait for it (or the backoff) to come back. */
  markOffline(): void {
    this.options.onState('offline');
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.options.clearTimer(this.timer);
    this.timer = null;
  }

  private connect(): void {
    this.timer = null;
    let socket: SocketLike;
    try {
      socket = this.options.createSocket(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.failures = 0;
      this.options.onState('live');
      socket.send(JSON.stringify({ action: 'sync' }));
      if (this.connectedBefore) this.options.onReconnected();
      this.connectedBefore = true;
    };
    socket.onmessage = (event) => {
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
      this.socket = null;
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    this.failures += 1;
    this.options.onState(this.failures >= this.options.offlineAfter ? 'offline' : 'reconnecting…');
    const delay = backoffDelay(this.failures - 1, this.options.baseMs, this.options.capMs, this.options.random);
    this.timer = this.options.setTimer(() => {
      this.connect();
    }, delay);
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
    return null;
  } catch {
    return null;
  }
}
