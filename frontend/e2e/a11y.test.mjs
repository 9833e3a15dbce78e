// The page in Chromium as people meet it: axe-core finds no violations, in light and dark mode; the focus ring
// stands out from the card; a long value fits a 320 px screen; an address that names no counter says so.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  assertAccessible,
  assertPrerequisites,
  contrast,
  expectText,
  freePort,
  launchChromium,
  openPage,
  startServer,
  stopServer,
} from './support.mjs';

const NARROW = { width: 320, height: 640 };

/** The focus ring's contrast with the card behind it, once the keyboard has reached the Increment button. */
async function focusRingContrast(page) {
  const increment = page.getByRole('button', { name: 'Increment' });
  // A mouse click focuses without a ring: start from nothing focused, and come by keyboard.
  await page.evaluate(() => document.activeElement?.blur());
  for (let i = 0; i < 10 && !(await increment.evaluate((el) => el === document.activeElement)); i += 1) {
    await page.keyboard.press('Tab');
  }
  const colours = await increment.evaluate((el) => ({
    ring: getComputedStyle(el).outlineColor,
    width: getComputedStyle(el).outlineWidth,
    card: getComputedStyle(el.closest('.value-card')).backgroundColor,
  }));
  assert.notEqual(colours.width, '0px', 'the focused button has a ring');
  return contrast(colours.ring, colours.card);
}

test('the page is accessible, in light and dark mode, and fits a narrow screen', { timeout: 120_000 }, async () => {
  assertPrerequisites();
  const dataDir = mkdtempSync(join(tmpdir(), 'acidizer-e2e-a11y-'));
  const port = await freePort();
  const server = await startServer(port, dataDir);
  const browser = await launchChromium();
  try {
    const page = await openPage(browser, `http://127.0.0.1:${port}/c/a11y`, 'a11y', { viewport: NARROW });
    await expectText(page.getByTestId('connection-status'), 'live', 'connected');
    await page.getByRole('button', { name: 'Increment' }).click();
    await expectText(page.getByTestId('counter-value'), '1', 'after a click');
    await expectText(page.locator('.history li').first(), /your click/, 'the click is marked as the user’s own');
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await assertAccessible(page, `${scheme} mode`);
      const ratio = await focusRingContrast(page);
      assert.ok(ratio >= 3, `${scheme} mode: the focus ring has ${ratio.toFixed(2)}:1 against the card, not 3:1`);
    }

    // Values this page's server will not reach in a test, answered by the browser itself.
    for (const [counter, value, shown] of [
      ['seven', 1_234_567, '1,234,567'],
      ['ten', 1_000_000_000, '1,000,000,000'],
    ]) {
      const wide = await openPage(browser, `http://127.0.0.1:${port}/c/${counter}`, counter, { viewport: NARROW });
      await wide.route(`**/counters/${counter}`, (route) =>
        route.fulfill({ json: { counter, value, seq: value, updatedAt: '2026-11-23T10:00:00.000Z' } }),
      );
      await wide.reload();
      await expectText(wide.getByTestId('counter-value'), shown, `${counter}: grouped digits`);
      const fits = await wide.evaluate(() => {
        const el = document.querySelector('[data-testid="counter-value"]');
        return { value: el.scrollWidth <= el.clientWidth, page: document.documentElement.scrollWidth <= window.innerWidth };
      });
      assert.deepEqual(fits, { value: true, page: true }, `${counter}: ${shown} fits 320 px`);
      assert.deepEqual(wide.problems, []);
    }

    const invalid = await openPage(browser, `http://127.0.0.1:${port}/c/%E0`, 'invalid');
    await expectText(invalid.getByRole('alert'), /There is no counter/, 'an address that names no counter');
    await assertAccessible(invalid, 'the page of no counter');
    for (const p of [page, invalid]) assert.deepEqual(p.problems, [], 'no page errors, console errors or missing files');
  } finally {
    await browser.close();
    await stopServer(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
