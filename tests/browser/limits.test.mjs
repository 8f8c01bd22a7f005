// Limits seen as a person sees them: a sign-in refused for too many attempts shows how
// long to wait, and messages sent faster than the allowance are held and sent once each.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, launchBrowser, startServer } from './harness.mjs';
import { openConversation, register, send, startDirect, texts, waitForText } from './ui.mjs';

let server;
let browser;

before(async () => {
  // 3 sign-in attempts per account per hour; 1 message a second after a burst of 3.
  server = await startServer([
    '--auth-rate-per-account', '3', '--auth-rate-window-secs', '3600', '--auth-rate-per-address', '0',
    '--send-rate-per-user', '1', '--send-burst-per-user', '3',
  ]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) await server.stop();
});

test('too many sign-in attempts: the form says how long to wait and the button waits too', async () => {
  const made = await api(server.base, 'POST', '/api/auth/register', { username: 'pam', email: 'pam@example.org', password: 'password-pam' });
  assert.equal(made.status, 201);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(server.base + '/');
  for (let i = 0; i < 3; i++) {
    await page.fill('#login', 'pam');
    await page.fill('#password', `wrong-${i}`);
    await page.click('#sign-in');
    await page.locator('#auth-error').waitFor();
  }
  await page.locator('#auth-wait').waitFor();
  assert.match(await page.locator('#auth-wait').textContent(), /Try again in \d+ s/);
  assert.equal(await page.locator('#sign-in').isDisabled(), true);
  await context.close();
});

test('messages sent faster than the allowance are held, then each sent once, nothing marked failed', async () => {
  const quin = await register(browser, server.base, 'quin', { displayName: 'Quin' });
  const rex = await register(browser, server.base, 'rex', { displayName: 'Rex' });
  await startDirect(quin.page, 'rex');
  const sent = Array.from({ length: 6 }, (_, i) => `quick ${i}`);
  for (const text of sent) await send(quin.page, text);
  await openConversation(rex.page, 'Quin');
  for (const text of sent) await waitForText(rex.page, text, 60_000);
  assert.equal(await quin.page.locator('.msg-row[data-state="failed"]').count(), 0);
  await quin.page.locator('.msg-row[data-state]').waitFor({ state: 'detached', timeout: 60_000 });
  for (const p of [quin.page, rex.page]) {
    assert.deepEqual([...(await texts(p))].sort(), [...sent].sort(), 'each message once');
  }
  await quin.context.close();
  await rex.context.close();
});
