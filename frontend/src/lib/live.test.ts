import { describe, expect, it } from 'vitest';
import { LiveConnection, type SocketLike, websocketUrl } from './live';
import type { ConnectionState, CounterValue } from './types';

class FakeSocket implements SocketLike {
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

function harness() {
  const sockets: FakeSocket[] = [];
  const states: ConnectionState[] = [];
  const values: CounterValue[] = [];
  const timers: { run: () => void; ms: number }[] = [];
  let resyncs = 0;
  const live = new LiveConnection({
    url: websocketUrl('ws://127.0.0.1:8080/ws', 'clicks'),
    createSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    onValue: (value) => values.push(value),
    onState: (state) => states.push(state),
    onReconnected: () => {
      resyncs += 1;
    },
    baseMs: 100,
    capMs: 1000,
    offlineAfter: 3,
    random: () => 0.5,
    setTimer: (run, ms) => timers.push({ run, ms }),
    clearTimer: () => undefined,
  });
  return { live, sockets, states, values, timers, resyncs: () => resyncs };
}

describe('LiveConnection', () => {
  it('subscribes to the counter and syncs on open', () => {
    const h = harness();
    h.live.start();
    expect(h.sockets[0]?.url).toBe('ws://127.0.0.1:8080/ws?counter=clicks');
    h.sockets[0]?.open();
    expect(h.states).toEqual(['live']);
    expect(h.sockets[0]?.sent).toEqual(['{"action":"sync"}']);
    expect(h.resyncs(), 'the first connect is no reconnect: the page has just read everything').toBe(0);
  });

  it('passes value messages on and ignores the rest', () => {
    const h = harness();
    h.live.start();
    h.sockets[0]?.open();
    h.sockets[0]?.receive('{"type":"value","counter":"clicks","value":4,"seq":6,"updatedAt":"2026-11-23T10:00:00.000Z"}');
    h.sockets[0]?.receive('{"type":"value","counter":"clicks","value":4,"updatedAt":"2026-11-23T10:00:00.000Z"}');
    h.sockets[0]?.receive('{"type":"pong"}');
    h.sockets[0]?.receive('not json');
    expect(h.values).toEqual([{ counter: 'clicks', value: 4, seq: 6, updatedAt: '2026-11-23T10:00:00.000Z' }]);
  });

  it('reconnects with growing backoff, then reads offline, and re-syncs when back', () => {
    const h = harness();
    h.live.start();
    h.sockets[0]?.open();
    for (let i = 0; i < 3; i += 1) {
      h.sockets[i]?.drop();
      h.timers[i]?.run();
    }
    expect(h.timers.map((t) => t.ms)).toEqual([50, 100, 200]);
    expect(h.states).toEqual(['live', 'reconnecting…', 'reconnecting…', 'offline']);
    h.sockets[3]?.open();
    expect(h.states.at(-1)).toBe('live');
    expect(h.resyncs()).toBe(1);
    h.sockets[3]?.drop();
    expect(h.timers.at(-1)?.ms).toBe(50);
  });

  it('stops for good', () => {
    const h = harness();
    h.live.start();
    h.live.stop();
    expect(h.sockets[0]?.closed).toBe(true);
    h.sockets[0]?.drop();
    expect(h.timers).toHaveLength(0);
  });
});
