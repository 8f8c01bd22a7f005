// Nothing typed is lost: the server killed and restarted mid-conversation, and a message
// typed while offline that survives a page reload.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, launchBrowser, startServer } from './harness.mjs';
import { openConversation, register, send, seqs, startDirect, texts, waitForText, waitLive } from './ui.mjs';

let server;
let browser;
let dataDir;
let listen;

before(async () => {
  server = await startServer(['--auth-rate-per-address', '0']);
  dataDir = server.dataDir;
  listen = new URL(server.base).host;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) await server.stop();
});

test('server killed and restarted: the pending message is delivered once, nothing from the other side is missing or doubled', async () => {
  const kim = await register(browser, server.base, 'kim', { displayName: 'Kim' });
  const leo = await register(browser, server.base, 'leo', { displayName: 'Leo' });
  await startDirect(kim.page, 'leo');
  await send(kim.page, 'before 1');
  await openConversation(leo.page, 'Kim');
  await waitForText(leo.page, 'before 1');
  await send(leo.page, 'before 2');
  await waitForText(kim.page, 'before 2');

  await server.kill();
  await kim.page.locator('#connection-state', { hasText: 'Reconnecting' }).waitFor();
  await send(kim.page, 'typed while the server was down');
  await kim.page.locator('.msg-row[data-state="pending"]').waitFor();

  // The server comes back on the same address and data; Leo (reconnecting too) and
  // Kim both send; Kim's pending message goes out once she is back.
  server = await startServer(['--auth-rate-per-address', '0'], { dataDir, listen });
  await waitLive(leo.page);
  await send(leo.page, 'after restart from Leo');
  await waitLive(kim.page);
  await waitForText(kim.page, 'after restart from Leo');
  await waitForText(leo.page, 'typed while the server was down');
  await kim.page.locator('.msg-row[data-state]').waitFor({ state: 'detached' });

  const expected = ['before 1', 'before 2', 'typed while the server was down', 'after restart from Leo'];
  for (const p of [kim.page, leo.page]) {
    const got = await texts(p);
    assert.deepEqual([...got].sort(), [...expected].sort(), 'every message once');
    const s = await seqs(p);
    assert.deepEqual(s, [1, 2, 3, 4]);
  }
  await kim.context.close();
  await leo.context.close();
});

test('a message typed offline survives a reload and is sent later', async () => {
  const mia = await register(browser, server.base, 'mia', { displayName: 'Mia' });
  const ned = await register(browser, server.base, 'ned', { displayName: 'Ned' });
  await startDirect(mia.page, 'ned');
  await send(mia.page, 'online hello');
  await openConversation(ned.page, 'Mia');
  await waitForText(ned.page, 'online hello');

  // Cut Mia's live connection (the page itself still loads).
  let blocked = true;
  await mia.context.routeWebSocket(/\/api\/ws$/, (ws) => {
    if (blocked) ws.close();
    else ws.connectToServer();
  });
  await mia.page.reload();
  await mia.page.locator('#connection-state', { hasText: 'Reconnecting' }).waitFor();
  await mia.page.locator('#composer-input').waitFor();
  await send(mia.page, 'written offline');
  await mia.page.locator('.msg-row[data-state="pending"]', { hasText: 'written offline' }).waitFor();
  await mia.page.reload();
  await mia.page.locator('.msg-row[data-state="pending"]', { hasText: 'written offline' }).waitFor();
  assert.equal(await ned.page.locator('.msg-text', { hasText: 'written offline' }).count(), 0);

  blocked = false;
  await waitLive(mia.page);
  await waitForText(ned.page, 'written offline');
  await mia.page.locator('.msg-row[data-state]').waitFor({ state: 'detached' });
  await waitForText(mia.page, 'written offline');
  assert.deepEqual(await texts(ned.page), ['online hello', 'written offline']);
  await mia.context.close();
  await ned.context.close();
});

test('a password change on another device ends this session: the page goes back to sign-in and says why', async () => {
  const ola = await register(browser, server.base, 'ola', { displayName: 'Ola' });
  // Another device signs in and changes the password, which ends every other session.
  const login = await api(server.base, 'POST', '/api/auth/login', { login: 'ola', password: 'password-ola' });
  assert.equal(login.status, 200);
  const changed = await api(
    server.base,
    'PATCH',
    '/api/me',
    { new_password: 'a-new-password-for-ola', current_password: 'password-ola' },
    login.body.token,
  );
  assert.equal(changed.status, 200);
  await ola.page.locator('#session-ended').waitFor({ timeout: 15_000 });
  await ola.page.locator('#sign-in-form').waitFor();
  assert.equal(await ola.page.locator('#me-name').count(), 0, 'the signed-in screen is gone');
  await ola.context.close();
});
