// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from './App';
import { ANNOUNCE_EVERY_MS } from './lib/announcer';
import { CounterPage, type PageEnv } from './lib/counterPage';
import { FakeServer } from './test/fakeServer';

/** The page as opened over a LAN address (plain HTTP), on a fake server, with its own window and document events. */
function open(path = '/c/clicks', configure: (server: FakeServer) => void = () => undefined) {
  const server = new FakeServer();
  configure(server);
  const windowEvents = new EventTarget();
  const visibility: { visibilityState: DocumentVisibilityState } = { visibilityState: 'visible' };
  const documentEvents = Object.assign(new EventTarget(), visibility);
  const env: PageEnv = {
    location: new URL(`http://192.168.1.20:8080${path}`),
    fetch: server.fetch,
    createSocket: server.createSocket,
    window: windowEvents,
    document: documentEvents,
    random: () => 0.5,
  };
  const page = new CounterPage(env);
  render(
    <StrictMode>
      <App page={page} />
    </StrictMode>,
  );
  const reads = () => server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/counters/')).length;
  const posts = () => server.requests.filter((r) => r.method === 'POST');
  return { server, page, windowEvents, documentEvents, reads, posts };
}

/** Lets the fake timers (and the promises they release) run for `ms`. */
async function wait(ms: number) {
  await act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });
}

const value = () => screen.getByTestId('counter-value').textContent;
const connection = () => screen.getByTestId('connection-status').textContent;
const button = (name: 'Increment' | 'Decrement') => screen.getByRole('button', { name });
const alerts = () => screen.queryAllByRole('alert').map((alert) => alert.textContent);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('the page', () => {
  it('shows the value, live, after one read of the value and one of the history', async () => {
    const { reads } = open('/c/clicks', (server) => {
      server.seed('clicks', 1_234_567);
    });
    await wait(100);
    expect(value()).toBe('1,234,567');
    expect(connection()).toBe('live');
    expect(reads()).toBe(2);
    expect(document.title).toBe('1,234,567 · clicks · Number Acidizer');
    const list = screen.getByRole('list');
    expect(within(list).getAllByRole('listitem')).toHaveLength(1);
    expect(within(list).getByText('1,234,567').closest('li')?.querySelector('time')?.textContent).toMatch(/2026/);
  });

  it('counts a click on a plain-HTTP page, where crypto.randomUUID does not exist', async () => {
    const getRandomValues = crypto.getRandomValues.bind(crypto);
    vi.stubGlobal('crypto', { getRandomValues });
    const { server, posts } = open();
    await wait(100);
    fireEvent.click(button('Increment'));
    await wait(1_500);
    expect(value()).toBe('1');
    expect(posts()).toHaveLength(1);
    expect(posts()[0]?.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.commitsOf(posts()[0]?.key ?? '')).toBe(1);
    expect(screen.getByText('your click')).toBeTruthy();
    expect(alerts()).toEqual([]);
  });

  it('says so when the address names no counter, and asks the server nothing', async () => {
    for (const path of ['/c/%E0', '/c/Apples']) {
      const { server } = open(path);
      await wait(100);
      expect(alerts().join(' ')).toMatch(/There is no counter/);
      expect(server.requests).toEqual([]);
      expect(server.sockets).toEqual([]);
      cleanup();
    }
  });

  it('abandons a click that hangs and sends it again with the same key, once the server answers', async () => {
    const { server, posts } = open();
    await wait(100);
    server.mode = 'silent';
    fireEvent.click(button('Increment'));
    await wait(100);
    expect(screen.getByRole('status').textContent).toContain('sending 1');
    expect(button('Increment').getAttribute('aria-busy')).toBe('true');
    await wait(9_000);
    server.mode = 'up';
    await wait(20_000);
    expect(value()).toBe('1');
    expect(new Set(posts().map((p) => p.key)).size).toBe(1);
    expect(posts().length).toBeGreaterThan(1);
    expect(server.commitsOf(posts()[0]?.key ?? '')).toBe(1);
    expect(button('Increment').getAttribute('aria-busy')).toBe('false');
    expect(screen.getByRole('status').textContent).not.toContain('sending');
  });

  it('retries a 500, and waits as long as Retry-After asks', async () => {
    const { server, posts } = open();
    await wait(100);
    server.failNextChanges = [{ status: 500 }, { status: 503, retryAfter: '5' }];
    fireEvent.click(button('Increment'));
    await wait(4_000);
    expect(posts()).toHaveLength(2);
    expect(value()).toBe('0');
    await wait(2_000);
    expect(posts()).toHaveLength(3);
    expect((posts()[2]?.at ?? 0) - (posts()[1]?.at ?? 0)).toBeGreaterThanOrEqual(5_000);
    expect(value()).toBe('1');
    expect(alerts()).toEqual([]);
  });

  it('outlasts a server restart mid-click: the click lands once, and no error is left', async () => {
    const { server, posts } = open();
    await wait(100);
    server.setMode('down');
    fireEvent.click(button('Increment'));
    await wait(12_000);
    expect(connection()).not.toBe('live');
    server.setMode('up');
    await wait(20_000);
    expect(connection()).toBe('live');
    expect(value()).toBe('1');
    expect(server.commitsOf(posts()[0]?.key ?? '')).toBe(1);
    expect(alerts()).toEqual([]);
  });

  it('shows a click that could not get through as failed, with a retry that reuses its key', async () => {
    const { server, posts } = open();
    await wait(100);
    server.setMode('down');
    fireEvent.click(button('Increment'));
    await wait(31_000);
    expect(alerts().join(' ')).toMatch(/Your \+1 is not confirmed: the server cannot be reached/);
    expect(screen.getByRole('status').textContent).not.toContain('sending');
    const key = posts()[0]?.key;
    server.mode = 'up';
    fireEvent.click(screen.getByRole('button', { name: /^Retry/ }));
    await wait(500);
    expect(value()).toBe('1');
    expect(posts().at(-1)?.key).toBe(key);
    expect(server.commitsOf(key ?? '')).toBe(1);
    expect(alerts()).toEqual([]);
  });

  it('sends a failed click again by itself once the server is back', async () => {
    const { server, posts } = open();
    await wait(100);
    server.setMode('down');
    fireEvent.click(button('Increment'));
    await wait(31_000);
    expect(alerts()).toHaveLength(1);
    server.setMode('up');
    await wait(20_000);
    expect(connection()).toBe('live');
    expect(value()).toBe('1');
    expect(server.commitsOf(posts()[0]?.key ?? '')).toBe(1);
    expect(alerts()).toEqual([]);
  });

  it('keeps a read error apart from a click refusal, and clears each when its cause is gone', async () => {
    const { server } = open();
    await wait(100);
    server.counterMax = 1; // Lower than the page was told: the server refuses what the page allows.
    fireEvent.click(button('Increment'));
    await wait(100);
    fireEvent.click(button('Increment'));
    await wait(100);
    expect(alerts().join(' ')).toMatch(/at its ceiling/);
    expect(value()).toBe('1');
    server.commit('clicks', -1);
    await wait(100);
    expect(alerts(), 'a new value clears the refusal').toEqual([]);

  });

  it('says why the settings could not be read, and goes on once they can', async () => {
    const { server } = open('/c/clicks', (s) => {
      s.setMode('down');
    });
    await wait(100);
    expect(alerts().join(' ')).toMatch(/settings could not be read/);
    expect(value()).toBe('…');
    server.setMode('up');
    await wait(20_000);
    expect(connection()).toBe('live');
    expect(value()).toBe('0');
    expect(alerts()).toEqual([]);
  });

  it('keeps a failed read apart from a failed click, and clears each once the server answers again', async () => {
    const { server, posts } = open();
    await wait(100);
    server.httpDown = true;
    server.commit('clicks', 1); // pushed over the socket, which still works: the page reads the history, and fails
    fireEvent.click(button('Increment'));
    await wait(31_000);
    expect(connection(), 'the socket stayed up').toBe('live');
    const shown = alerts().join(' ');
    expect(shown).toMatch(/could not be read: the server cannot be reached/);
    expect(shown).toMatch(/Your \+1 is not confirmed: the server cannot be reached/);
    server.httpDown = false;
    await wait(35_000);
    expect(alerts()).toEqual([]);
    expect(value()).toBe('2');
    expect(server.commitsOf(posts()[0]?.key ?? '')).toBe(1);
  });

  it('waits out a Retry-After longer than its budget, then sends the click again by itself', async () => {
    const { server, posts } = open();
    await wait(100);
    server.failNextChanges = [{ status: 503, retryAfter: '40' }];
    fireEvent.click(button('Increment'));
    await wait(1_000);
    expect(alerts().join(' ')).toMatch(/is not confirmed/);
    await wait(38_000);
    expect(posts()).toHaveLength(1);
    await wait(2_000);
    expect(posts()).toHaveLength(2);
    expect(posts()[1]?.key).toBe(posts()[0]?.key);
    expect(value()).toBe('1');
    expect(alerts()).toEqual([]);
    expect(connection()).toBe('live');
  });

  it('abandons an answer whose body never ends, and sends the click again', async () => {
    const { server, posts } = open();
    await wait(100);
    server.stallBodies = true;
    fireEvent.click(button('Increment'));
    await wait(12_100);
    server.stallBodies = false;
    await wait(2_000);
    expect(posts().length).toBeGreaterThan(1);
    expect(value()).toBe('1');
    expect(server.commitsOf(posts()[0]?.key ?? '')).toBe(1);
    expect(screen.getByRole('status').textContent).not.toContain('sending');
  });

  it('leaves no timer, socket or request behind once gone, and sends an interrupted click when back', async () => {
    const { server, page, posts } = open();
    await wait(100);
    server.mode = 'silent';
    fireEvent.click(button('Increment'));
    await wait(100);
    cleanup();
    await wait(0);
    expect(vi.getTimerCount(), 'no timer left').toBe(0);
    expect(server.sockets.every((socket) => socket.closed)).toBe(true);
    const sent = posts().length;
    await wait(60_000);
    expect(posts().length, 'nothing sent once gone').toBe(sent);

    server.mode = 'up';
    render(<App page={page} />);
    await wait(1_000);
    expect(value()).toBe('1');
    expect(server.commitsOf(posts()[0]?.key ?? '')).toBe(1);
    expect(alerts()).toEqual([]);
  });

  it('gives up on a connection that never opens, and tries again', async () => {
    const { server } = open();
    await wait(100);
    server.mode = 'silent';
    server.sockets.at(-1)?.serverClose();
    await wait(200);
    const attempts = server.sockets.length;
    await wait(12_000);
    expect(server.sockets.length, 'a connection that never opened was replaced').toBeGreaterThan(attempts);
    server.mode = 'up';
    await wait(30_000);
    expect(connection()).toBe('live');
  });

  it('keeps to a long Retry-After even while other answers come through', async () => {
    const { server, posts } = open();
    await wait(100);
    server.failNextChanges = [{ status: 503, retryAfter: '60' }];
    fireEvent.click(button('Increment'));
    for (let i = 0; i < 50; i += 1) {
      server.commit('clicks', 1); // pushes, and the reads they cause, succeed all along
      await wait(1_000);
    }
    expect(posts()).toHaveLength(1);
    await wait(11_000);
    expect(posts()).toHaveLength(2);
    expect(value()).toBe('51');
    expect(alerts()).toEqual([]);
  });

  it('catches the history up when the tab shows again, and reads nothing while hidden', async () => {
    const { server, documentEvents, reads } = open();
    await wait(100);
    const before = reads();
    documentEvents.visibilityState = 'hidden';
    for (let i = 0; i < 3; i += 1) server.commit('clicks', 1);
    await wait(5_000);
    expect(value()).toBe('3');
    expect(reads(), 'no read while hidden').toBe(before);
    documentEvents.visibilityState = 'visible';
    documentEvents.dispatchEvent(new Event('visibilitychange'));
    await wait(500);
    expect(screen.getAllByRole('listitem')).toHaveLength(3);
  });

  it('does not flood a server whose HTTP side is down with reads, however many values are pushed', async () => {
    const { server, reads } = open();
    await wait(100);
    server.httpDown = true;
    const before = reads();
    for (let i = 0; i < 60; i += 1) {
      server.commit('clicks', 1);
      await wait(1_000);
    }
    // A read is two requests; one read per push would be 120 here.
    expect(reads() - before).toBeLessThan(60);
  });

  it('stops its reads too when gone', async () => {
    const { server, reads } = open();
    await wait(100);
    server.mode = 'silent';
    server.sockets.at(-1)?.serverClose();
    server.commit('clicks', 1);
    await wait(2_000);
    cleanup();
    await wait(0);
    expect(vi.getTimerCount()).toBe(0);
    const sent = reads();
    await wait(60_000);
    expect(reads()).toBe(sent);
  });

  it('takes a socket that stops answering for lost, and ends live and in sync', async () => {
    const { server } = open();
    await wait(100);
    expect(connection()).toBe('live');
    server.mode = 'silent';
    server.commit('clicks', 1);
    await wait(15_000 + 5_000 + 50);
    expect(connection()).toBe('reconnecting…');
    expect(screen.getByRole('status').textContent).toMatch(/stopped answering/);
    expect(value()).toBe('0');
    server.mode = 'up';
    await wait(20_000);
    expect(connection()).toBe('live');
    expect(value()).toBe('1');
  });

  it('re-syncs when the tab becomes visible again, and when the browser is back online', async () => {
    const { server, documentEvents, windowEvents } = open();
    await wait(100);
    server.losePushes = true; // The pushes to a sleeping laptop are lost.
    server.commit('clicks', 1);
    server.losePushes = false;
    await wait(100);
    expect(value()).toBe('0');
    documentEvents.dispatchEvent(new Event('visibilitychange'));
    await wait(1_500);
    expect(value()).toBe('1');
    expect(screen.getAllByRole('listitem')).toHaveLength(1);

    server.losePushes = true;
    server.commit('clicks', 1);
    server.losePushes = false;
    windowEvents.dispatchEvent(new Event('online'));
    await wait(1_500);
    expect(value()).toBe('2');
  });

  it('does not say offline while values keep arriving', async () => {
    const { server, windowEvents } = open();
    await wait(100);
    windowEvents.dispatchEvent(new Event('offline'));
    await wait(100);
    server.commit('clicks', 1);
    await wait(6_000);
    expect(connection()).toBe('live');
    expect(value()).toBe('1');
  });

  it('never says live to a server that accepts and closes at once, backs off, and reads nothing each time', async () => {
    const { server, reads } = open('/c/clicks', (s) => {
      s.mode = 'flapping';
    });
    const seen = new Set<string | null>();
    for (let i = 0; i < 60; i += 1) {
      await wait(1_000);
      seen.add(connection());
    }
    expect(seen.has('live')).toBe(false);
    expect(connection()).toBe('offline');
    expect(screen.getByRole('status').textContent).toMatch(/cannot be reached; trying again/);
    expect(server.sockets.length, 'backoff grows: few attempts in a minute').toBeLessThan(15);
    expect(reads()).toBe(2);
  });

  it('announces the value with its counter, at a bounded rate', async () => {
    const { server } = open();
    await wait(100);
    const announcement = screen.getByTestId('announcement');
    expect(announcement.getAttribute('aria-live')).toBe('polite');
    expect(announcement.textContent).toBe('counter clicks is 0');
    const heard: string[] = [];
    const observer = new MutationObserver(() => heard.push(announcement.textContent));
    observer.observe(announcement, { childList: true, characterData: true, subtree: true });
    for (let i = 0; i < 20; i += 1) {
      server.commit('clicks', 1);
      await wait(100);
    }
    await wait(ANNOUNCE_EVERY_MS);
    observer.disconnect();
    expect(heard.length).toBeLessThanOrEqual(2 + Math.ceil(2_000 / ANNOUNCE_EVERY_MS));
    expect(heard.at(-1)).toBe('counter clicks is 20');
    expect(screen.getByTestId('counter-value').getAttribute('aria-live')).toBeNull();
  });

  it('shows the changes per minute as a line', async () => {
    const { server } = open();
    await wait(100);
    for (let i = 0; i < 3; i += 1) server.commit('clicks', 1);
    await wait(500);
    expect(screen.getByRole('img').getAttribute('aria-label')).toMatch(/^3 changes in the last 15 minutes; 3 in the last minute/);
  });

  it('disables Decrement at 0 and Increment at the ceiling', async () => {
    const { server } = open('/c/clicks', (s) => {
      s.counterMax = 2;
    });
    await wait(100);
    expect((button('Decrement') as HTMLButtonElement).disabled).toBe(true);
    server.commit('clicks', 1);
    server.commit('clicks', 1);
    await wait(100);
    expect((button('Increment') as HTMLButtonElement).disabled).toBe(true);
    expect((button('Decrement') as HTMLButtonElement).disabled).toBe(false);
  });
});
