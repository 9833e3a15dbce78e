import { LiveConnection, type SocketLike, websocketUrl } from './live';
import type { ConnectionState, CounterValue } from './types';

/** The live connection, as the page shows it. */
export interface LiveState {
  connection: ConnectionState;
  /** Why the connection is not live (and when it tries again). */
  connectionReason: string | null;
}

export interface LiveUpdatesOptions {
  createSocket: (url: string) => SocketLike;
  /** Where `online`, `offline` and `visibilitychange` are heard. */
  window: Pick<Window, 'addEventListener' | 'removeEventListener'>;
  document: Pick<Document, 'addEventListener' | 'removeEventListener' | 'visibilityState'>;
  /** Where the backoff's jitter comes from. */
  random: () => number;
  onValue: (value: CounterValue) => void;
  /** The server answers on the live connection: it is back. */
  onLive: () => void;
  /** The page checks again — the network changed, or the tab shows again (`tabShown`). */
  onCheck: (tabShown: boolean) => void;
  onChange: (state: LiveState) => void;
}

/**
 * The counter's live values: its WebSocket subscription while the page runs, the connection's state, and a check
 * of the connection whenever the browser's network changes or the tab becomes visible.
 */
export class LiveUpdates {
  private current: LiveState = { connection: 'connecting…', connectionReason: null };
  private connection: LiveConnection | null = null;

  constructor(private readonly options: LiveUpdatesOptions) {}

  get state(): LiveState {
    return this.current;
  }

  /** Subscribes to `counter` at the WebSocket endpoint `wsUrl`. */
  start(wsUrl: string, counter: string): void {
    const { createSocket, random, onValue, onLive, onChange } = this.options;
    this.connection = new LiveConnection({
      url: websocketUrl(wsUrl, counter),
      createSocket,
      random,
      onValue,
      onState: (connection, connectionReason) => {
        this.current = { connection, connectionReason };
        onChange(this.current);
        if (connection === 'live') onLive();
      },
    });
    this.options.window.addEventListener('online', this.onNetworkChange);
    this.options.window.addEventListener('offline', this.onNetworkChange);
    this.options.document.addEventListener('visibilitychange', this.onVisibilityChange);
    this.connection.start();
  }

  stop(): void {
    this.connection?.stop();
    this.connection = null;
    this.options.window.removeEventListener('online', this.onNetworkChange);
    this.options.window.removeEventListener('offline', this.onNetworkChange);
    this.options.document.removeEventListener('visibilitychange', this.onVisibilityChange);
  }

  private readonly onNetworkChange = () => {
    this.connection?.checkNow();
    this.options.onCheck(false);
  };

  private readonly onVisibilityChange = () => {
    if (this.options.document.visibilityState !== 'visible') return;
    this.connection?.checkNow();
    this.options.onCheck(true);
  };
}
