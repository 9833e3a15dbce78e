import { describe, expect, it, vi } from 'vitest';
import { FakeServer } from '../test/fakeServer';
import { CounterPage } from './counterPage';
import { withFakeTimers } from '../test/fakeTimers';

/** The page's store on a fake server, without React. */
function open(path = '/c/clicks') {
  const server = new FakeServer();
  const visibility: { visibilityState: DocumentVisibilityState } = { visibilityState: 'visible' };
  const page = new CounterPage({
    location: new URL(`http://192.168.1.20:8080${path}`),
    fetch: server.fetch,
    createSocket: server.createSocket,
    window: new EventTarget(),
    document: Object.assign(new EventTarget(), visibility),
    random: () => 0.5,
  });
  return { server, page, state: () => page.getSnapshot() };
}

withFakeTimers();

describe('CounterPage', () => {
  it('brings the reads, the live connection, the clicks and the announcements into one state', async () => {
    const { server, page, state } = open();
    server.seed('clicks', 41);
    page.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(state()).toMatchObject({ ready: true, connection: 'live', shown: { value: 41, seq: 41 }, readError: null });
    expect(state().history.map((item) => item.seq)).toEqual([41]);
    expect(state().announcement).toBe('counter clicks is 41');
    page.click('increment');
    expect(state().clicks).toMatchObject([{ operation: 'increment', state: 'sending' }]);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(state()).toMatchObject({ clicks: [], shown: { value: 42, seq: 42 } });
    expect(state().history.map((item) => item.seq)).toEqual([42, 41]);
    server.commit('clicks', 1);
    await vi.advanceTimersByTimeAsync(100);
    expect(state().shown?.value).toBe(43);
    expect(state().perMinute.at(-1), 'a pushed change is activity').toBe(1);
    page.stop();
  });

  it('tells its listeners of each change, and keeps its snapshot between changes', async () => {
    const { server, page } = open();
    let told = 0;
    const unsubscribe = page.subscribe(() => {
      told += 1;
    });
    page.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(told).toBeGreaterThan(0);
    const snapshot = page.getSnapshot();
    expect(page.getSnapshot()).toBe(snapshot);
    unsubscribe();
    const before = told;
    server.commit('clicks', 1);
    await vi.advanceTimersByTimeAsync(100);
    expect(told).toBe(before);
    expect(page.getSnapshot()).not.toBe(snapshot);
    page.stop();
  });

  it('clears a refusal once the value moves', async () => {
    const { server, page, state } = open();
    page.start();
    await vi.advanceTimersByTimeAsync(100);
    page.click('decrement');
    await vi.advanceTimersByTimeAsync(100);
    expect(state().refusal).toMatch(/is at 0/);
    server.commit('clicks', 1);
    await vi.advanceTimersByTimeAsync(100);
    expect(state().refusal).toBeNull();
    page.stop();
  });

  it('asks nothing for an address that names no counter', async () => {
    const { server, page, state } = open('/c/Apples');
    page.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(state().counter.valid).toBe(false);
    expect(server.requests).toEqual([]);
    expect(server.sockets).toEqual([]);
    page.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
