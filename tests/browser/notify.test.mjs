// While the page is hidden, a message from someone else raises a notification (title: who,
// body: the text), and the unread total is in the page title.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, startServer } from './harness.mjs';
import { register, send, startDirect } from './ui.mjs';

let server;
let browser;

before(async () => {
  server = await startServer(['--auth-rate-per-address', '0']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) await server.stop();
});

/** A stand-in for the browser's Notification (granted) that records what was shown, and a
 *  switch for `document.hidden`: headless Chromium has no notification centre or tab switch. */
const FAKE_NOTIFICATIONS = `
  window.__shown = [];
  window.Notification = class {
    static permission = 'granted';
    static requestPermission() { return Promise.resolve('granted'); }
    constructor(title, options) { window.__shown.push({ title, body: options && options.body }); }
    close() {}
  };
  window.__hidden = false;
  Object.defineProperty(document, 'hidden', { get: () => window.__hidden });
`;

test('a message arriving while the page is hidden raises one notification; the title counts unread', async () => {
  const sam = await register(browser, server.base, 'sam', { displayName: 'Sam' });
  const tia = await register(browser, server.base, 'tia', { displayName: 'Tia' });
  await tia.page.addInitScript(FAKE_NOTIFICATIONS);
  await tia.page.reload();
  await tia.page.locator('#me-name').waitFor();
  await startDirect(sam.page, 'tia');

  // Visible: no notification.
  await send(sam.page, 'while you look');
  await tia.page.locator('li[data-conversation-id]', { hasText: 'while you look' }).waitFor();
  assert.deepEqual(await tia.page.evaluate(() => window.__shown), []);

  // Hidden: one notification with who and what, text only.
  await tia.page.evaluate(() => { window.__hidden = true; });
  await send(sam.page, 'while you are away <b>bold?</b>');
  await tia.page.waitForFunction(() => window.__shown.length > 0);
  assert.deepEqual(await tia.page.evaluate(() => window.__shown), [{ title: 'Sam', body: 'while you are away <b>bold?</b>' }]);
  await tia.page.waitForFunction(() => document.title.startsWith('(2)'));
  await sam.context.close();
  await tia.context.close();
});
