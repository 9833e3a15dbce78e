// What the end-to-end tests share: `acidizer serve`, a TCP proxy that can leave connections half-open, Chromium,
// and checks that fail loudly on page errors, console errors and accessibility violations.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
export const binary = process.env.ACIDIZER_BIN ?? join(repo, 'target', 'debug', 'acidizer');
export const dist = join(repo, 'frontend', 'dist');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

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

/** Fails, loudly, when something the tests need is missing. */
export function assertPrerequisites() {
  assert.ok(existsSync(binary), `${binary} is missing: cargo build --workspace --bins`);
  assert.ok(existsSync(join(dist, 'index.html')), `${dist} is missing: npm run build`);
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium`);
}

export function launchChromium() {
  return chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_FLAGS });
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

export const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts `acidizer serve` and resolves once it prints its URL. */
export function startServer(port, dataDir, extraArgs = []) {
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--static-dir', dist, ...extraArgs];
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

/** Stops the server; a server that has exited already is stopped too. */
export function stopServer(child) {
  if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    child.once('exit', () => resolveStop());
    child.kill('SIGTERM');
  });
}

/**
 * A TCP proxy to `targetPort`. `silence()` leaves every connection open through it but carries nothing more either
 * way — a half-open connection, as after a laptop's sleep — while new connections go through.
 */
export async function startProxy(targetPort) {
  const pairs = new Set();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, silent: false };
    pairs.add(pair);
    client.on('data', (data) => {
      if (!pair.silent) upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (!pair.silent) client.write(data);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    silence() {
      for (const pair of pairs) pair.silent = true;
      return pairs.size;
    },
    close() {
      for (const pair of pairs) pair.client.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/**
 * Opens a page that fails the test on an uncaught error, on a console error (save network errors while `expected`
 * says the server is meant to be unreachable), and on a request for something that is not there.
 */
export async function openPage(browser, url, name, { expected = () => false, init = null, viewport = null } = {}) {
  const context = await browser.newContext(viewport === null ? {} : { viewport });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page ${name}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const network = /net::ERR_|WebSocket connection to .* failed/.test(message.text());
    if (!(network && expected())) problems.push(`page ${name} logged: ${message.text()}`);
  });
  page.on('response', (response) => {
    if (response.status() === 404) problems.push(`page ${name} asked for ${response.url()}, which is not there`);
  });
  if (init !== null) await page.addInitScript(init);
  await page.goto(url);
  page.problems = problems;
  return page;
}

/** Waits until the element's text matches. */
export async function expectText(locator, expected, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let text = null;
  while (Date.now() < deadline) {
    text = (await locator.textContent({ timeout: 5_000 }).catch(() => null))?.trim() ?? null;
    if (text !== null && (expected instanceof RegExp ? expected.test(text) : text === expected)) return;
    await pause(100);
  }
  assert.fail(`${what}: expected ${expected}, saw ${JSON.stringify(text)}`);
}

/** Runs axe-core on the page: no violations of WCAG 2.x A and AA. */
export async function assertAccessible(page, what) {
  await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  });
  assert.deepEqual(violations, [], `${what}: axe-core found violations`);
}

/** WCAG's contrast ratio of two CSS colours given as `rgb(r, g, b)`. */
export function contrast(first, second) {
  const luminance = (css) => {
    const [r, g, b] = css.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map((c) => {
      const s = c / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [light, dark] = [luminance(first), luminance(second)].sort((a, b) => b - a);
  return (light + 0.05) / (dark + 0.05);
}
