import { describe, expect, it, vi } from 'vitest';
import { LiveConnection, type SocketLike, websocketUrl } from './live';
import type { ConnectionState, CounterValue } from './types';
import { withFakeTimers } from '../test/fakeTimers';

export class FakeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  onmessage: SocketLike['onmessage'] = null;
  sent: string[] = [];
  closed = false;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.onopen?.(new Event('open'));
  }
  drop() {
    this.onclose?.({ code: 1006 } as CloseEvent);
  }
  receive(data: unknown) {
    this.onmessage?.({ data } as MessageEvent);
  }
}

const VALUE = '{"type":"value","counter":"clicks","value":4,"seq":6,"updatedAt":"2026-11-23T10:00:00.000Z"}';

function harness() {
  const sockets: FakeSocket[] = [];
  const states: [ConnectionState, string | null][] = [];
  const values: CounterValue[] = [];
  const live = new LiveConnection({
    url: websocketUrl('ws://127.0.0.1:8080/ws', 'clicks'),
    createSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    onValue: (value) => values.push(value),
    onState: (state, reason) => states.push([state, reason]),
    baseMs: 100,
    capMs: 1000,
    offlineAfter: 3,
    stableAfterMs: 5_000,
    pingEveryMs: 10_000,
    answerWithinMs: 2_000,
    random: () => 0.5,
  });
  const last = () => {
    const socket = sockets.at(-1);
    if (socket === undefined) throw new Error('no socket yet');
    return socket;
  };
  const state = () => states.at(-1)?.[0];
  return { live, sockets, states, values, last, state };
}

withFakeTimers();

describe('LiveConnection', () => {
  it('subscribes to the counter, syncs on open, and is live once the server answers', () => {
    const h = harness();
    h.live.start();
    expect(h.last().url).toBe('ws://127.0.0.1:8080/ws?counter=clicks');
    h.last().open();
    expect(h.last().sent).toEqual(['{"action":"sync"}']);
    expect(h.state(), 'an open socket that has not answered is not live yet').toBe('connecting…');
    h.last().receive(VALUE);
    expect(h.state()).toBe('live');
    expect(h.values).toEqual([{ counter: 'clicks', value: 4, seq: 6, updatedAt: '2026-11-23T10:00:00.000Z' }]);
  });

  it('passes value messages on and ignores the rest', () => {
    const h = harness();
    h.live.start();
    h.last().open();
    h.last().receive('{"type":"value","counter":"clicks","value":4,"updatedAt":"2026-11-23T10:00:00.000Z"}');
    h.last().receive('{"type":"pong"}');
    h.last().receive('not json');
    expect(h.values).toEqual([]);
  });

  it('pings, and takes a connection that stops answering for lost', () => {
    const h = harness();
    h.live.start();
    h.last().open();
    h.last().receive(VALUE);
    vi.advanceTimersByTime(10_000);
    expect(h.last().sent.at(-1)).toBe('{"action":"ping"}');
    h.last().receive('{"type":"pong"}');
    vi.advanceTimersByTime(10_000);
    expect(h.state()).toBe('live');
    // Half-open: the next ping gets no answer.
    vi.advanceTimersByTime(2_000);
    expect(h.state()).toBe('reconnecting…');
    expect(h.states.at(-1)?.[1]).toContain('stopped answering');
    expect(h.sockets[0]?.closed).toBe(true);
    vi.advanceTimersByTime(100);
    expect(h.sockets).toHaveLength(2);
  });

  it('backs off more and more from a server that accepts and closes at once, and says why', () => {
    const h = harness();
    h.live.start();
    const delays: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      h.last().open();
      h.last().drop();
      const before = h.sockets.length;
      let waited = 0;
      while (h.sockets.length === before) {
        vi.advanceTimersByTime(10);
        waited += 10;
      }
      delays.push(waited);
    }
    expect(delays).toEqual([50, 100, 200, 400]);
    expect(h.states.some(([state]) => state === 'live'), 'never said live').toBe(false);
    expect(h.state()).toBe('offline');
    expect(h.states.at(-1)?.[1]).toBe('the server cannot be reached; trying again');
  });

  it('backs off more and more from a server that answers and closes soon after', () => {
    const h = harness();
    h.live.start();
    const delays: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      h.last().open();
      h.last().receive(VALUE);
      vi.advanceTimersByTime(100);
      h.last().drop();
      const before = h.sockets.length;
      let waited = 0;
      while (h.sockets.length === before) {
        vi.advanceTimersByTime(10);
        waited += 10;
      }
      delays.push(waited);
    }
    expect(delays).toEqual([50, 100, 200, 400]);
  });

  it('starts the backoff over once a connection has stayed up', () => {
    const h = harness();
    h.live.start();
    h.last().drop();
    vi.advanceTimersByTime(50);
    h.last().drop();
    vi.advanceTimersByTime(100);
    h.last().open();
    h.last().receive(VALUE);
    vi.advanceTimersByTime(5_000);
    h.last().receive('{"type":"pong"}');
    h.last().drop();
    const before = h.sockets.length;
    vi.advanceTimersByTime(50);
    expect(h.sockets.length).toBe(before + 1);
  });

  it('checks at once when asked: a sync on an open socket, a connect on a closed one', () => {
    const h = harness();
    h.live.start();
    h.last().open();
    h.last().receive(VALUE);
    h.live.checkNow();
    expect(h.last().sent.at(-1)).toBe('{"action":"sync"}');
    vi.advanceTimersByTime(2_000);
    expect(h.state(), 'a check that gets no answer loses the connection').toBe('reconnecting…');
    h.live.checkNow();
    expect(h.sockets).toHaveLength(2);
  });

  it('stops for good', () => {
    const h = harness();
    h.live.start();
    h.live.stop();
    expect(h.sockets[0]?.closed).toBe(true);
    h.sockets[0]?.drop();
    vi.advanceTimersByTime(60_000);
    expect(h.sockets).toHaveLength(1);
  });
});
