// The web UI in a real Chromium against the real server: register, sign out, sign in,
// see conversations with their last message (as text) and unread count.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, launchBrowser, startServer } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) {
    const { code } = await server.stop();
    assert.equal(code, 0, 'server shuts down cleanly on SIGTERM');
  }
});

test('register, see conversations as text with unread counts, sign out and back in', async () => {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });

  await page.goto(server.base + '/');
  await page.locator('#sign-in').waitFor();

  // Register through the UI.
  await page.click('#show-register');
  await page.fill('#reg-username', 'ann');
  await page.fill('#reg-email', 'ann@example.org');
  await page.fill('#reg-password', 'short');
  await page.click('#register');
  await page.locator('#reg-password-error').waitFor();
  assert.match(await page.textContent('#reg-password-error'), /at least 8 characters/);
  await page.fill('#reg-password', 'correct horse');
  await page.fill('#reg-display-name', 'Ann Lee');
  await page.click('#register');
  await page.locator('#me-name').waitFor();
  assert.equal(await page.textContent('#me-name'), 'Ann Lee');
  await page.locator('#conversations-empty').waitFor();

  // The session is an HttpOnly cookie, invisible to scripts; the CSRF cookie is readable.
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'chatapp_session');
  assert.ok(session?.httpOnly, 'session cookie is HttpOnly');
  assert.ok(!(await page.evaluate(() => document.cookie)).includes('chatapp_session'));

  // Someone writes to Ann (through the API), including markup that must stay text.
  const ben = await api(server.base, 'POST', '/api/auth/register', { username: 'ben', email: 'ben@example.org', password: 'password-ben' });
  assert.equal(ben.status, 201);
  const annId = (await api(server.base, 'GET', '/api/users?q=ann', undefined, ben.body.token)).body[0].id;
  const dm = await api(server.base, 'POST', '/api/conversations', { kind: 'direct', user_id: annId }, ben.body.token);
  assert.equal(dm.status, 201);
  for (const body of ['hi Ann', '<img src=x onerror="window.pwned=1">']) {
    const sent = await api(server.base, 'POST', `/api/conversations/${dm.body.id}/messages`, { body }, ben.body.token);
    assert.equal(sent.status, 201);
  }

  await page.reload();
  const item = page.locator(`li[data-conversation-id="${dm.body.id}"]`);
  await item.waitFor();
  assert.equal((await item.locator('.conv-title').textContent()).trim(), 'ben');
  assert.equal((await item.locator('.conv-preview').textContent()).trim(), '<img src=x onerror="window.pwned=1">');
  assert.equal(await item.locator('.conv-preview img').count(), 0, 'message text is never markup');
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal((await item.locator('.unread-badge').textContent()).trim(), '2');

  // Sign out (a cookie-authenticated POST: needs the CSRF header the client sends).
  await page.click('#sign-out');
  await page.locator('#sign-in').waitFor();
  const me = await page.evaluate(async () => (await fetch('/api/me')).status);
  assert.equal(me, 401, 'the session ended on the server');

  // Sign in again by email.
  await page.fill('#login', 'ANN@example.org');
  await page.fill('#password', 'correct horse');
  await page.click('#sign-in');
  await page.locator(`li[data-conversation-id="${dm.body.id}"]`).waitFor();

  // The 401 of the first /api/me and the 400 of the refused password are expected.
  const unexpected = problems.filter((p) => !/status of 40[01] /.test(p));
  assert.deepEqual(unexpected, [], 'no script errors');
  await page.close();
});
