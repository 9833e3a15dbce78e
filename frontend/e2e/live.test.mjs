// End to end in Debian's Chromium (driven by playwright-core): two pages of the same counter stay in sync
// through increments and decrements, and both recover after `acidizer serve` restarts. Needs the built SPA (npm run build), the
// built server (cargo build) and Chromium (apt-get install -y chromium); it fails, loudly, without any of them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const binary = process.env.ACIDIZER_BIN ?? join(repo, 'target', 'debug', 'acidizer');
const dist = join(repo, 'frontend', 'dist');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const screenshot = process.env.ACIDIZER_SCREENSHOT;
/** The server's ceiling for this test: low enough to click up to. */
const CEILING = 5;
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

/** Starts `acidizer serve` and resolves once it prints its URL. */
function startServer(port, dataDir) {
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--static-dir', dist];
  args.push('--counter-max', String(CEILING));
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  return new Promise((resolveServer, reject) => {
    const timer = setTimeout(() => reject(new Error('acidizer serve did not start in 30 s')), 30_000);
    child.on('exit', (code) => reject(new Error(`acidizer serve exited early (${code})`)));
    child.stdout.on('data', (chunk) => {
      if (String(chunk).includes('listening on')) {
        clearTimeout(timer);
        resolveServer(child);
      }
    });
  });
}

function stopServer(child) {
  return new Promise((resolveStop) => {
    child.once('exit', () => resolveStop());
    child.kill('SIGTERM');
  });
}

/** Waits until the element's text matches. */
async function expectText(locator, expected, what) {
  const deadline = Date.now() + 20_000;
  let text = null;
  while (Date.now() < deadline) {
    text = (await locator.textContent({ timeout: 5_000 }).catch(() => null))?.trim() ?? null;
    if (text !== null && (expected instanceof RegExp ? expected.test(text) : text === expected)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: expected ${expected}, saw ${JSON.stringify(text)}`);
}

test('two pages stay in sync through clicks and a server restart', { timeout: 180_000 }, async () => {
  assert.ok(existsSync(binary), `${binary} is missing: cargo build --workspace --bins`);
  assert.ok(existsSync(join(dist, 'index.html')), `${dist} is missing: npm run build`);
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium`);

  const dataDir = mkdtempSync(join(tmpdir(), 'acidizer-e2e-'));
  const port = await freePort();
  let server = await startServer(port, dataDir);
  const browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_FLAGS });
  try {
    const url = `http://127.0.0.1:${port}/c/e2e`;
    const pages = [];
    const reads = { value: 0, history: 0 };
    for (const name of ['A', 'B']) {
      const page = await (await browser.newContext()).newPage();
      page.on('pageerror', (error) => assert.fail(`page ${name}: ${error.message}`));
      page.on('response', (response) => {
        assert.notEqual(response.status(), 404, `page ${name} asked for ${response.url()}, which is not there`);
      });
      page.on('request', (request) => {
        const path = new URL(request.url()).pathname;
        if (name === 'A' && path === '/counters/e2e') reads.value += 1;
        if (name === 'A' && path === '/counters/e2e/history') reads.history += 1;
      });
      await page.goto(url);
      pages.push(page);
    }
    const [a, b] = pages;
    const value = (page) => page.getByTestId('counter-value');
    const state = (page) => page.getByTestId('connection-status');
    const click = (page) => page.getByRole('button', { name: 'Increment' }).click();
    const decrement = (page) => page.getByRole('button', { name: 'Decrement' });
    const both = async (expected, what) => {
      await expectText(value(a), expected, `page A ${what}`);
      await expectText(value(b), expected, `page B ${what}`);
    };

    for (const page of pages) await expectText(state(page), 'live', 'connected');
    await both('0', 'at first');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(reads, { value: 1, history: 1 }, 'a page reads the value and the history once on load');
    assert.ok(await decrement(a).isDisabled(), 'Decrement is disabled at 0');
    await click(a);
    await both('1', 'after a click in A');
    await click(b);
    await click(b);
    await both('3', 'after two clicks in B');
    await expectText(a.locator('.history li').first(), /^\+1\s*3/, 'history shows the newest increment');
    assert.equal(await a.locator('.history li').count(), 3);
    await decrement(b).click();
    await both('2', 'after a decrement in B');
    await expectText(a.locator('.history li').first(), /^−1\s*2/, 'history shows the decrement');
    await click(a);
    await both('3', 'after another click in A');

    await stopServer(server);
    for (const page of pages) await expectText(state(page), /reconnecting…|offline/, 'while the server is down');
    server = await startServer(port, dataDir);
    for (const page of pages) await expectText(state(page), 'live', 'after the restart');
    await both('3', 'after the restart, nothing lost');
    for (const page of pages) assert.equal(await page.getByRole('alert').count(), 0, 'no error is left on screen');
    await click(a);
    await both('4', 'after a click once back');
    const increment = (page) => page.getByRole('button', { name: 'Increment' });
    assert.ok(await increment(b).isEnabled(), 'Increment is enabled below the ceiling');
    await click(a);
    await both(String(CEILING), 'at the ceiling');
    for (const page of pages) {
      const deadline = Date.now() + 5_000;
      while (!(await increment(page).isDisabled()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(await increment(page).isDisabled(), 'Increment is disabled at the ceiling');
    }
    await decrement(b).click();
    await both(String(CEILING - 1), 'after a decrement from the ceiling');

    if (screenshot) await a.screenshot({ path: screenshot });
  } finally {
    await browser.close();
    await stopServer(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
