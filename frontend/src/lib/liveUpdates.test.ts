import { describe, expect, it, vi } from 'vitest';
import { FakeServer } from '../test/fakeServer';
import { type LiveState, LiveUpdates } from './liveUpdates';
import type { CounterValue } from './types';
import { withFakeTimers } from '../test/fakeTimers';

/** Live updates from a fake server, with a window and a document of the test's own. */
function harness() {
  const server = new FakeServer();
  const windowEvents = new EventTarget();
  const visibility: { visibilityState: DocumentVisibilityState } = { visibilityState: 'visible' };
  const documentEvents = Object.assign(new EventTarget(), visibility);
  const values: CounterValue[] = [];
  const states: LiveState[] = [];
  const checks: boolean[] = [];
  let lives = 0;
  const live = new LiveUpdates({
    createSocket: server.createSocket,
    window: windowEvents,
    document: documentEvents,
    random: () => 0.5,
    onValue: (value) => values.push(value),
    onLive: () => {
      lives += 1;
    },
    onCheck: (tabShown) => checks.push(tabShown),
    onChange: (state) => states.push(state),
  });
  return { server, live, windowEvents, documentEvents, values, states, checks, lives: () => lives };
}

withFakeTimers();

describe('LiveUpdates', () => {
  it('subscribes to the counter, says when it is live, and passes values on', () => {
    const h = harness();
    h.live.start('ws://192.168.1.20:8080/ws', 'clicks');
    expect(h.live.state).toEqual({ connection: 'connecting…', connectionReason: null });
    expect(h.server.sockets.map((s) => s.counter)).toEqual(['clicks']);
    vi.advanceTimersByTime(10);
    expect(h.live.state.connection).toBe('live');
    expect(h.lives()).toBe(1);
    h.server.commit('clicks', 1);
    vi.advanceTimersByTime(10);
    expect(h.values.map((v) => v.seq)).toEqual([0, 1]);
  });

  it('says why it is not live, and comes back', () => {
    const h = harness();
    h.live.start('ws://192.168.1.20:8080/ws', 'clicks');
    vi.advanceTimersByTime(10);
    h.server.setMode('down');
    expect(h.live.state).toEqual({ connection: 'reconnecting…', connectionReason: 'the live connection closed; trying again' });
    h.server.setMode('up');
    vi.advanceTimersByTime(1_000);
    expect(h.live.state.connection).toBe('live');
    expect(h.lives()).toBe(2);
  });

  it('checks when the network changes: the connection syncs, and the page is told', () => {
    const h = harness();
    h.live.start('ws://192.168.1.20:8080/ws', 'clicks');
    vi.advanceTimersByTime(10);
    h.server.losePushes = true;
    h.server.commit('clicks', 1);
    h.server.losePushes = false;
    for (const event of ['online', 'offline']) h.windowEvents.dispatchEvent(new Event(event));
    vi.advanceTimersByTime(10);
    expect(h.values.at(-1)?.seq).toBe(1);
    expect(h.checks).toEqual([false, false]);
  });

  it('checks when the tab shows again, not when it hides', () => {
    const h = harness();
    h.live.start('ws://192.168.1.20:8080/ws', 'clicks');
    vi.advanceTimersByTime(10);
    h.documentEvents.visibilityState = 'hidden';
    h.documentEvents.dispatchEvent(new Event('visibilitychange'));
    expect(h.checks).toEqual([]);
    h.documentEvents.visibilityState = 'visible';
    h.documentEvents.dispatchEvent(new Event('visibilitychange'));
    expect(h.checks).toEqual([true]);
  });

  it('stops for good: its socket closed, no timer left, deaf to the browser', () => {
    const h = harness();
    h.live.start('ws://192.168.1.20:8080/ws', 'clicks');
    vi.advanceTimersByTime(10);
    h.live.stop();
    expect(h.server.sockets.every((s) => s.closed)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    h.windowEvents.dispatchEvent(new Event('online'));
    h.documentEvents.dispatchEvent(new Event('visibilitychange'));
    expect(h.checks).toEqual([]);
    expect(h.server.sockets).toHaveLength(1);
  });
});
