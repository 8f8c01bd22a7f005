// Helpers that drive the web UI the way a person does: one browser context per person.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = process.env.CHATAPP_ARTIFACTS ?? join(here, 'artifacts');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** A person with their own browser context, registered through the sign-up form.
 *  `prepare(context)` runs before the first page loads (init scripts, routes). */
export async function register(browser, base, username, { displayName = '', viewport = { width: 1280, height: 800 }, prepare } = {}) {
  const context = await browser.newContext({ viewport });
  if (prepare) await prepare(context);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[01] |ERR_CONNECTION_REFUSED|WebSocket connection/.test(m.text())) problems.push(m.text());
  });
  await page.goto(base + '/');
  await page.click('#show-register');
  await page.fill('#reg-username', username);
  await page.fill('#reg-email', `${username}@example.org`);
  await page.fill('#reg-password', `password-${username}`);
  if (displayName) await page.fill('#reg-display-name', displayName);
  await page.click('#register');
  await page.locator('#me-name').waitFor();
  await waitLive(page);
  return { context, page, username, problems };
}

/** Waits until the realtime connection is live (no connection banner). */
export async function waitLive(page, timeout = 30_000) {
  await page.locator('#connection-state').waitFor({ state: 'detached', timeout });
}

export async function startDirect(page, username) {
  await page.fill('#user-search', username);
  await page.locator('.search-results button[data-user-id]').first().click();
  await page.locator('#composer-input').waitFor();
}

export async function openConversation(page, title) {
  await page.locator('li[data-conversation-id] .conv-title', { hasText: title }).first().click();
  await page.locator('#composer-input').waitFor();
}

export async function send(page, text) {
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
}

/** Texts of the stored messages in the open conversation, in screen order. */
export function texts(page) {
  return page.$$eval('.timeline .msg-row[data-seq] .msg-text', (els) => els.map((e) => e.textContent));
}

export function seqs(page) {
  return page.$$eval('.timeline .msg-row[data-seq]', (els) => els.map((e) => Number(e.getAttribute('data-seq'))));
}

export async function waitForText(page, text, timeout = 15_000) {
  await page.locator('.timeline .msg-row[data-seq] .msg-text', { hasText: text }).first().waitFor({ timeout });
}

/** axe-core in the page (evaluated, so the page's CSP stays on): no serious or critical violations. */
export async function checkA11y(page, name) {
  await page.evaluate(`${axeSource}\n;0`);
  const violations = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], `accessibility of ${name}`);
}

/** Screenshots at desktop and phone width into the artifacts folder. */
export async function screenshots(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const size = page.viewportSize();
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 390 ? 844 : 800 });
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${width}.png`) });
  }
  if (size) await page.setViewportSize(size);
}

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
