import type { CounterValue } from './types';

/**
 * States only move forward on screen: an answer or message that arrives late, with a `seq` not above the one
 * shown, is dropped (the value itself may go up or down). Messages about another counter are dropped too.
 */
export function advance(shown: CounterValue | null, incoming: CounterValue, counter: string): CounterValue | null {
  if (incoming.counter !== counter) return shown;
  if (shown === null || incoming.seq > shown.seq) return incoming;
  return shown;
}
