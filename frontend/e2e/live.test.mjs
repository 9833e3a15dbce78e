// End to end in Debian's Chromium (driven by playwright-core), on `acidizer serve`: two pages of the same counter stay
// in sync through clicks, a server restart with a click in flight, and a connection left half-open; one of them is
// opened as over a LAN address (plain HTTP: no crypto.randomUUID) and through a proxy that can leave its connections
// half-open. Needs the built SPA (npm run build), the built server (cargo build) and Chromium (apt-get install -y
// chromium); it fails, loudly, without any of them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  assertPrerequisites,
  expectText,
  freePort,
  launchChromium,
  openPage,
  pause,
  startProxy,
  startServer,
  stopServer,
} from './support.mjs';

const screenshot = process.env.ACIDIZER_SCREENSHOT;
/** The server's ceiling for this test: low enough to click up to. */
const CEILING = 6;
/** How long the page may take to notice a connection that stopped answering: a ping, then the wait for an answer. */
const HALF_OPEN_NOTICED_MS = 15_000 + 5_000 + 5_000;

/** As on a plain-HTTP LAN address: the browser offers no crypto.randomUUID. */
function asOnPlainHttp() {
  Object.defineProperty(Crypto.prototype, 'randomUUID', { value: undefined, configurable: true });
}

test('two pages stay in sync through clicks, a restart mid-click and a half-open connection', { timeout: 240_000 }, async () => {
  assertPrerequisites();
  const dataDir = mkdtempSync(join(tmpdir(), 'acidizer-e2e-'));
  const port = await freePort();
  const args = ['--counter-max', String(CEILING)];
  let server = await startServer(port, dataDir, args);
  const proxy = await startProxy(port);
  const browser = await launchChromium();
  /** The server is down, or a connection was cut on purpose: the browser may log network errors. */
  let networkTrouble = false;
  const expected = () => networkTrouble;
  try {
    const reads = { value: 0, history: 0 };
    const a = await openPage(browser, `http://127.0.0.1:${proxy.port}/c/e2e`, 'A', { expected, init: asOnPlainHttp });
    a.on('request', (request) => {
      const path = new URL(request.url()).pathname;
      if (path === '/counters/e2e') reads.value += 1;
      if (path === '/counters/e2e/history') reads.history += 1;
    });
    let socketsOfA = 0;
    a.on('websocket', () => {
      socketsOfA += 1;
    });
    const b = await openPage(browser, `http://127.0.0.1:${port}/c/e2e`, 'B', { expected });
    const pages = [a, b];
    const value = (page) => page.getByTestId('counter-value');
    const state = (page) => page.getByTestId('connection-status');
    const increment = (page) => page.getByRole('button', { name: 'Increment' });
    const decrement = (page) => page.getByRole('button', { name: 'Decrement' });
    const both = async (expectedValue, what) => {
      await expectText(value(a), expectedValue, `page A ${what}`);
      await expectText(value(b), expectedValue, `page B ${what}`);
    };
    /** No error stays on screen: one about a read under way may show for a moment, never for long. */
    const noErrorsLeft = async (what) => {
      for (const page of pages) {
        const deadline = Date.now() + 5_000;
        let alerts = await page.getByRole('alert').allTextContents();
        while (alerts.length > 0 && Date.now() < deadline) {
          await pause(100);
          alerts = await page.getByRole('alert').allTextContents();
        }
        assert.deepEqual(alerts, [], `${what}: no error left`);
      }
    };

    for (const page of pages) await expectText(state(page), 'live', 'connected');
    await both('0', 'at first');
    await pause(500);
    assert.deepEqual(reads, { value: 1, history: 1 }, 'a page reads the value and the history once on load');
    assert.equal(await a.evaluate(() => typeof crypto.randomUUID), 'undefined', 'page A has no crypto.randomUUID');
    assert.ok(await decrement(a).isDisabled(), 'Decrement is disabled at 0');

    await increment(a).click();
    await both('1', 'after a click in A (no crypto.randomUUID)');
    await increment(b).click();
    await increment(b).click();
    await both('3', 'after two clicks in B');
    await expectText(a.locator('.history li').first(), /^\+1\s*3/, 'history shows the newest increment');
    assert.equal(await a.locator('.history li').count(), 3);
    assert.equal(await a.locator('.history li.own').count(), 1, 'page A marks its own click, and only it');
    await decrement(b).click();
    await both('2', 'after a decrement in B');
    await expectText(a.locator('.history li').first(), /^−1\s*2/, 'history shows the decrement');
    assert.match(await a.title(), /^2 · e2e · Number Acidizer$/);

    // The server restarts while a click is on its way: the click lands once, and nothing is left on screen.
    networkTrouble = true;
    await stopServer(server);
    for (const page of pages) await expectText(state(page), /reconnecting…|offline/, 'while the server is down');
    await increment(a).click();
    await expectText(a.getByRole('status'), /sending 1/, 'page A is sending its click');
    assert.equal(await increment(a).getAttribute('aria-busy'), 'true');
    await pause(2_000);
    server = await startServer(port, dataDir, args);
    for (const page of pages) await expectText(state(page), 'live', 'after the restart', 30_000);
    networkTrouble = false;
    await both('3', 'after the restart: the click made while down counted once');
    await pause(1_000);
    await both('3', 'still once');
    await noErrorsLeft('after the restart');

    // A's connections are left half-open (carrying nothing, closed by no one): A notices, and catches up.
    networkTrouble = true;
    assert.ok(proxy.silence() > 0, 'page A had connections to silence');
    await increment(b).click();
    await expectText(value(b), '4', 'page B after its click');
    const socketsBefore = socketsOfA;
    await expectText(value(a), '4', 'page A notices the silence and catches up', HALF_OPEN_NOTICED_MS);
    assert.ok(socketsOfA > socketsBefore, 'page A let the silent connection go and opened another');
    await expectText(state(a), 'live', 'page A is live again', 30_000);
    networkTrouble = false;
    await both('4', 'after the half-open connection');
    await noErrorsLeft('after the half-open connection');

    await increment(a).click();
    await both('5', 'after a click once back');
    assert.ok(await increment(b).isEnabled(), 'Increment is enabled below the ceiling');
    await increment(a).click();
    await both(String(CEILING), 'at the ceiling');
    for (const page of pages) {
      const deadline = Date.now() + 5_000;
      while (!(await increment(page).isDisabled()) && Date.now() < deadline) await pause(50);
      assert.ok(await increment(page).isDisabled(), 'Increment is disabled at the ceiling');
    }
    await decrement(b).click();
    await both(String(CEILING - 1), 'after a decrement from the ceiling');
    for (const page of pages) {
      await expectText(page.locator('.history li').first(), new RegExp(`^−1\\s*${CEILING - 1}`), 'history follows');
    }
    await noErrorsLeft('at the end');

    if (screenshot) await a.screenshot({ path: screenshot });
    for (const page of pages) assert.deepEqual(page.problems, [], 'no page errors, console errors or missing files');
  } finally {
    await browser.close();
    await proxy.close();
    await stopServer(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
