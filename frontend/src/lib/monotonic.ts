import type { CounterValue } from './types';

/**
 * Values only move forward on screen: an answer or message that arrives late, with a value below the one shown,
 * is dropped. Messages about another counter are dropped too.
 */
export function advance(shown: CounterValue | null, incoming: CounterValue, counter: string): CounterValue | null {
  if (incoming.counter !== counter) return shown;
  if (shown === null || incoming.value > shown.value) return incoming;
  return shown;
}
