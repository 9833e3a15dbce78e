/** The shapes of the acidizer HTTP API and WebSocket messages (see the contract). */

/** A counter's state: its value, and `seq`, the number of changes it has committed (states only move forward). */
export interface CounterValue {
  counter: string;
  value: number;
  seq: number;
  updatedAt: string | null;
}

/** +1 (an increment) or -1 (a decrement). */
export type Delta = 1 | -1;

export type Operation = 'increment' | 'decrement';

export interface ChangeAnswer {
  counter: string;
  value: number;
  seq: number;
  delta: Delta;
  requestId: string;
  updatedAt: string;
}

export interface HistoryItem {
  seq: number;
  delta: Delta;
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
  | { type: 'value'; counter: string; value: number; seq: number; updatedAt: string | null }
  | { type: 'pong' }
  | { type: 'error'; detail: string };

export type ConnectionState = 'connecting…' | 'live' | 'reconnecting…' | 'offline';
