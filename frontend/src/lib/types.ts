/** The shapes of the acidizer HTTP API and WebSocket messages (see the contract). */

export interface CounterValue {
  counter: string;
  value: number;
  updatedAt: string | null;
}

export interface IncrementAnswer {
  counter: string;
  value: number;
  requestId: string;
  updatedAt: string;
}

export interface HistoryItem {
  value: number;
  requestId: string;
  at: string;
}

export interface HistoryPage {
  counter: string;
  items: HistoryItem[];
  next: number | null;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
}

export type ServerMessage =
  | { type: 'value'; counter: string; value: number; updatedAt: string | null }
  | { type: 'pong' }
  | { type: 'error'; detail: string };

export type ConnectionState = 'live' | 'reconnecting…' | 'offline';
