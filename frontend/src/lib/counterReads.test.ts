import { describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import { CounterReads, READ_AGAIN_AFTER_MS, type ReadsState } from './counterReads';
import type { CounterValue, HistoryItem, HistoryPage } from './types';
import { settle, withFakeTimers } from '../test/fakeTimers';

const AT = '2026-11-23T10:00:00.000Z';
const item = (seq: number): HistoryItem => ({ seq, delta: 1, value: seq, requestId: `r${seq}`, at: AT });

/** Reads from a server at `seq` (its history as long), that fails while `down`. */
function harness() {
  const server = { seq: 3, down: false, hold: false };
  const page = { hidden: false, shownSeq: 0 };
  const requests: string[] = [];
  const held: (() => void)[] = [];
  const values: CounterValue[] = [];
  const states: ReadsState[] = [];
  let reads = 0;
  const answer = <T>(request: string, body: () => T): Promise<T> => {
    requests.push(request);
    if (server.down) return Promise.reject(new ApiError('the server answered 503', 'unreachable', 503));
    if (!server.hold) return Promise.resolve(body());
    return new Promise((resolve) => {
      held.push(() => {
        resolve(body());
      });
    });
  };
  const api = {
    read: (counter: string) =>
      answer(`read ${counter}`, (): CounterValue => ({ counter, value: server.seq, seq: server.seq, updatedAt: AT })),
    history: (counter: string, limit = 10) =>
      answer(`history ${counter} ${limit}`, (): HistoryPage => {
        const items = Array.from({ length: Math.min(limit, server.seq) }, (_, i) => item(server.seq - i));
        return { counter, items, next: null };
      }),
  };
  const reader = new CounterReads({
    isHidden: () => page.hidden,
    shownSeq: () => page.shownSeq,
    onValue: (value) => {
      values.push(value);
      page.shownSeq = Math.max(page.shownSeq, value.seq);
    },
    onRead: () => {
      reads += 1;
    },
    onChange: (state) => states.push(state),
    random: () => 0.5,
  });
  const running = new AbortController();
  return {
    server,
    page,
    reader,
    requests,
    held,
    values,
    states,
    reads: () => reads,
    start: () => {
      reader.start(api, 'clicks', running.signal);
    },
    newest: () => reader.state.history[0]?.seq,
  };
}


withFakeTimers();

describe('CounterReads', () => {
  it('reads the value and the last ten changes when it starts, and says when a read succeeded', async () => {
    const h = harness();
    h.server.seq = 12;
    h.start();
    await settle();
    expect(h.requests).toEqual(['read clicks', 'history clicks 10']);
    expect(h.values.map((v) => v.seq)).toEqual([12]);
    expect(h.reader.state.history.map((i) => i.seq)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    expect(h.reads()).toBe(1);
    expect(vi.getTimerCount(), 'nothing more to read').toBe(0);
  });

  it('reads once, a second after a burst of values began, and never two reads at a time', async () => {
    const h = harness();
    h.start();
    await settle();
    h.requests.length = 0;
    for (let i = 0; i < 5; i += 1) h.reader.readSoon();
    await settle(READ_AGAIN_AFTER_MS - 1);
    expect(h.requests).toEqual([]);
    h.server.hold = true;
    await settle(1);
    expect(h.requests).toHaveLength(2);
    h.reader.readSoon();
    void h.reader.readNow();
    await settle(5_000);
    expect(h.requests, 'one read at a time').toHaveLength(2);
  });

  it('reads nothing while the tab is hidden', async () => {
    const h = harness();
    h.start();
    await settle();
    h.page.hidden = true;
    h.requests.length = 0;
    h.reader.readSoon();
    await settle(5_000);
    expect(h.requests).toEqual([]);
  });

  it('reads again when the history it read is older than the value shown', async () => {
    const h = harness();
    h.page.shownSeq = 5;
    h.start();
    await settle();
    expect(h.newest()).toBe(3);
    h.server.seq = 5;
    await settle(READ_AGAIN_AFTER_MS);
    expect(h.newest()).toBe(5);
    expect(h.requests).toHaveLength(4);
  });

  it('keeps a newer history than a late read brings', async () => {
    const h = harness();
    h.server.seq = 5;
    h.start();
    await settle();
    h.server.seq = 4;
    await h.reader.readNow();
    expect(h.newest()).toBe(5);
  });

  it('catches up at once when the value shown is newer than the history, and only then', async () => {
    const h = harness();
    h.start();
    await settle();
    h.requests.length = 0;
    h.reader.catchUp();
    await settle(5_000);
    expect(h.requests).toEqual([]);
    h.page.shownSeq = 4;
    h.server.seq = 4;
    h.reader.catchUp();
    await settle(0);
    expect(h.newest()).toBe(4);
  });

  it('says why a read failed, tries again with backoff, and clears the error once a read succeeds', async () => {
    const h = harness();
    h.server.down = true;
    h.start();
    await settle();
    expect(h.reader.state.readError).toBe('The counter could not be read: the server answered 503.');
    expect(h.reader.failed).toBe(true);
    // 1 s, and half (random 0.5) of the backoff's 2 s ceiling after one failure.
    await settle(1_999);
    expect(h.requests).toHaveLength(2);
    await settle(1);
    expect(h.requests).toHaveLength(4);
    // After two failures: 1 s and half of 4 s.
    await settle(2_999);
    expect(h.requests).toHaveLength(4);
    h.server.down = false;
    await settle(1);
    expect(h.reader.state.readError).toBeNull();
    expect(h.reader.failed).toBe(false);
    expect(h.reads()).toBe(1);
  });

  it('shows that the settings could not be read until a read succeeds', async () => {
    const h = harness();
    h.reader.settingsFailed('the server answered 500');
    expect(h.reader.state.readError).toBe('The page’s settings could not be read (the server answered 500); trying again.');
    h.start();
    await settle();
    expect(h.reader.state.readError).toBeNull();
  });

  it('when stopped, leaves no timer behind, ignores a late answer and reads nothing', async () => {
    const h = harness();
    h.server.hold = true;
    h.start();
    h.reader.readSoon(0);
    h.reader.stop();
    expect(vi.getTimerCount()).toBe(0);
    for (const release of h.held) release();
    await settle();
    expect(h.values).toEqual([]);
    expect(h.states).toEqual([]);
    h.reader.readSoon(0);
    await settle(5_000);
    expect(h.requests).toHaveLength(2);
  });
});
