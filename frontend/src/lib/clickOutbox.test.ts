import { describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import { ClickOutbox, type ClicksState, RESEND_AFTER_MS } from './clickOutbox';
import type { ChangeAnswer, CounterValue, Operation } from './types';
import { settle, withFakeTimers } from '../test/fakeTimers';

interface Call {
  counter: string;
  operation: Operation;
  key: string;
  signal: AbortSignal | undefined;
  resolve: (answer: ChangeAnswer) => void;
  reject: (error: unknown) => void;
}

/** An outbox on a server whose answers the test gives, one call at a time. */
function harness() {
  const calls: Call[] = [];
  const committed: CounterValue[] = [];
  const states: ClicksState[] = [];
  const outbox = new ClickOutbox({
    onCommitted: (value) => committed.push(value),
    onChange: (state) => states.push(state),
  });
  const api = {
    change: (counter: string, operation: Operation, key: string, signal?: AbortSignal) =>
      new Promise<ChangeAnswer>((resolve, reject) => {
        calls.push({ counter, operation, key, signal, resolve, reject });
      }),
  };
  const running = new AbortController();
  outbox.start(api, 'clicks', running.signal);
  const call = (i: number) => {
    const found = calls[i];
    if (found === undefined) throw new Error(`no call ${i}`);
    return found;
  };
  const answer = (seq: number, key: string): ChangeAnswer => ({
    counter: 'clicks',
    value: seq,
    seq,
    delta: 1,
    requestId: key,
    updatedAt: '2026-11-23T10:00:00.000Z',
  });
  return { outbox, api, calls, call, committed, states, running, answer };
}

const unreachable = (retryAfterMs: number | null = null) =>
  new ApiError('the server cannot be reached', 'unreachable', null, retryAfterMs);


withFakeTimers();

describe('ClickOutbox', () => {
  it('sends a click with a key of its own, shows it on its way, and passes the counted state on', async () => {
    const h = harness();
    h.outbox.click('increment');
    h.outbox.click('increment');
    expect(h.calls.map((c) => [c.counter, c.operation])).toEqual([
      ['clicks', 'increment'],
      ['clicks', 'increment'],
    ]);
    const key = h.call(0).key;
    expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(h.call(1).key).not.toBe(key);
    expect(h.call(0).signal).toBe(h.running.signal);
    expect(h.outbox.state.clicks.map((c) => c.state)).toEqual(['sending', 'sending']);
    expect(h.outbox.state.ownKeys.has(key)).toBe(true);
    h.call(0).resolve(h.answer(1, key));
    await settle();
    expect(h.committed).toEqual([{ counter: 'clicks', value: 1, seq: 1, updatedAt: '2026-11-23T10:00:00.000Z' }]);
    expect(h.outbox.state.clicks.map((c) => c.key)).toEqual([h.call(1).key]);
    expect(h.outbox.state.ownKeys.has(key), 'still the user’s own, for the history').toBe(true);
  });

  it('shows a refusal in the server’s words until the next click, or a new value', async () => {
    const h = harness();
    h.outbox.click('decrement');
    h.call(0).reject(new ApiError("the counter 'clicks' is at 0", 'refused', 409));
    await settle();
    expect(h.outbox.state.refusal).toBe("the counter 'clicks' is at 0");
    expect(h.outbox.state.clicks).toEqual([]);
    h.outbox.click('increment');
    expect(h.outbox.state.refusal).toBeNull();
    h.call(1).reject(new ApiError('at its ceiling', 'refused', 409));
    await settle();
    expect(h.outbox.state.refusal).toBe('at its ceiling');
    h.outbox.clearRefusal();
    expect(h.outbox.state.refusal).toBeNull();
    const changes = h.states.length;
    h.outbox.clearRefusal();
    expect(h.states.length, 'nothing to clear, nothing changes').toBe(changes);
  });

  it('keeps a click that could not get through as failed, and sends it again by itself, with its key', async () => {
    const h = harness();
    h.outbox.click('increment');
    h.call(0).reject(unreachable());
    await settle();
    expect(h.outbox.state.clicks).toMatchObject([{ state: 'failed', reason: 'the server cannot be reached' }]);
    await settle(RESEND_AFTER_MS - 1);
    expect(h.calls).toHaveLength(1);
    await settle(1);
    expect(h.calls).toHaveLength(2);
    expect(h.call(1).key).toBe(h.call(0).key);
    expect(h.outbox.state.clicks).toMatchObject([{ state: 'sending' }]);
    h.call(1).resolve(h.answer(1, h.call(1).key));
    await settle();
    expect(h.outbox.state.clicks).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('waits as long as Retry-After asks before it sends a failed click again', async () => {
    const h = harness();
    h.outbox.click('increment');
    h.call(0).reject(unreachable(40_000));
    await settle(39_999);
    h.outbox.resendFailed();
    expect(h.calls, 'not even when asked to resend').toHaveLength(1);
    await settle(1);
    expect(h.calls).toHaveLength(2);
  });

  it('sends a failed click again at once on retry, with its key, and counts nothing else', async () => {
    const h = harness();
    h.outbox.click('decrement');
    h.call(0).reject(new Error('network'));
    await settle();
    expect(h.outbox.state.clicks).toMatchObject([{ state: 'failed', reason: 'the click could not be sent' }]);
    h.outbox.retry(h.call(0).key);
    h.outbox.retry('another-key');
    expect(h.calls.map((c) => [c.operation, c.key])).toEqual([
      ['decrement', h.call(0).key],
      ['decrement', h.call(0).key],
    ]);
    h.outbox.retry(h.call(0).key);
    expect(h.calls, 'a click on its way is not sent twice').toHaveLength(2);
  });

  it('leaves a click older than a day for the user to retry', async () => {
    const h = harness();
    h.outbox.click('increment');
    h.call(0).reject(unreachable());
    await settle();
    h.outbox.stop();
    vi.setSystemTime(Date.now() + 25 * 60 * 60 * 1000);
    h.outbox.start(h.api, 'clicks', new AbortController().signal);
    h.outbox.resendFailed();
    expect(h.calls).toHaveLength(1);
    h.outbox.retry(h.call(0).key);
    expect(h.calls).toHaveLength(2);
  });

  it('when stopped, keeps a click on its way as failed, ignores its answer, and sends it once running again', async () => {
    const h = harness();
    h.outbox.click('increment');
    h.running.abort();
    h.outbox.stop();
    expect(h.outbox.state.clicks).toMatchObject([{ state: 'failed', reason: 'the page stopped sending it', notBefore: 0 }]);
    h.call(0).resolve(h.answer(1, h.call(0).key));
    await settle();
    expect(h.committed).toEqual([]);
    h.outbox.click('increment');
    expect(h.calls, 'nothing is sent while stopped').toHaveLength(1);
    h.outbox.start(h.api, 'clicks', new AbortController().signal);
    h.outbox.resendFailed();
    expect(h.calls.map((c) => c.key)).toEqual([h.call(0).key, h.call(0).key]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
