// What a person sees cannot mislead them: a sign-out the server did not confirm is not shown
// as one, sign-out leaves no unsent text behind on a shared computer (unless asked to), links
// read left to right as where they go whatever bidi controls surround them, and two members
// whose names look alike are shown apart by username.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, startServer } from './harness.mjs';
import { openConversation, register, screenshots, send, startDirect, waitForText, waitLive } from './ui.mjs';

let server;
let browser;
const people = [];

before(async () => {
  server = await startServer(['--auth-rate-per-address', '0']);
  browser = await launchBrowser();
});

after(async () => {
  for (const p of people) await p.context.close().catch(() => {});
  await browser?.close();
  if (server) {
    const { code } = await server.stop();
    assert.equal(code, 0, 'server shuts down cleanly on SIGTERM');
  }
});

async function person(name, opts) {
  const p = await register(browser, server.base, name, opts);
  people.push(p);
  return p;
}

/** Without the isolation marks (FSI … PDI) the UI puts around names in labels. */
const plain = (s) => s.replace(/[\u2068\u2069]/g, '').trim();

async function signIn(page, username) {
  await page.fill('#login', username);
  await page.fill('#password', `password-${username}`);
  await page.click('#sign-in');
  await page.locator('#me-name').waitFor();
}

const outboxKeys = (page) =>
  page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('chatapp.outbox.')).map((k) => [k, JSON.parse(localStorage.getItem(k))]));

test('a sign-out the server did not confirm leaves the page signed in and says so; Retry signs out', async () => {
  const ann = await person('ann', { displayName: 'Ann' });
  const { page } = ann;
  const LOGOUT = '**/api/auth/logout';
  const failures = [
    ['the request fails', (route) => route.abort('connectionfailed')],
    ['the server answers 500', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":{"code":"internal","message":"Something went wrong on the server."}}' })],
  ];
  for (const [what, answer] of failures) {
    await page.route(LOGOUT, answer);
    await page.click('#sign-out');
    const alert = page.locator('#sign-out-failed');
    await alert.waitFor();
    assert.match(await alert.textContent(), /Could not sign out\..*still signed in/s, what);
    assert.ok((await page.locator('#sign-out-reason').textContent()).trim().length > 0, `the reason is given (${what})`);
    assert.equal(await page.locator('#sign-in-form').count(), 0, `still signed in (${what})`);
    assert.equal(await page.locator('#sign-out-here').count(), 0, 'no "this computer only" in a browser (the cookie is the server\'s to end)');
    if (what.includes('500')) {
      await screenshots(page, 'signout-failed');
    }
    await page.reload();
    await page.locator('#me-name').waitFor();
    assert.equal(await page.locator('#sign-in-form').count(), 0, `a reload shows the account signed in (${what})`);
    await page.unroute(LOGOUT);
  }

  // The server is reachable again: Retry signs out, for good.
  await page.route(LOGOUT, (route) => route.abort('connectionfailed'));
  await page.click('#sign-out');
  await page.locator('#sign-out-failed').waitFor();
  await page.unroute(LOGOUT);
  await page.click('#sign-out-retry');
  await page.locator('#sign-in-form').waitFor();
  assert.equal(await page.locator('#session-ended').count(), 0, 'a sign-out is not reported as a session ended elsewhere');
  await page.reload();
  await page.locator('#sign-in-form').waitFor();
  assert.equal(await page.evaluate(async () => (await fetch('/api/me')).status), 401, 'the session ended on the server');

  const unexpected = ann.problems.filter((p) => !/ERR_CONNECTION_FAILED|ERR_FAILED|status of 500 /.test(p));
  assert.deepEqual(unexpected, []);
});

test('links read left to right and show their real host, whatever bidi controls surround them', async () => {
  const bea = await person('bea', { displayName: 'Bea' });
  const cal = await person('cal', { displayName: 'Cal' });
  await startDirect(bea.page, 'cal');
  const messages = [
    // reads "https://google.com//:sptth…" when turned around by the override
    '\u202Ehttps://evil.example/?moc.elgoog//:sptth',
    // an override inside: the link ends there
    'look https://evil.example/\u202Emoc.elgoog.www//:sptth',
    // an IDN look-alike (Cyrillic о): shown as its punycode target
    'log in at https://g\u043E\u043Egle.com/account please',
    // an override around a sentence with a plain link
    '\u202Eabc https://example.org/path?q=1 def',
  ];
  for (const m of messages) await send(bea.page, m);
  await openConversation(cal.page, 'Bea');
  for (const p of [cal.page, bea.page]) {
    await p.waitForFunction((n) => document.querySelectorAll('.timeline .msg-row[data-seq]').length >= n, messages.length);
  }

  for (const p of [cal.page, bea.page]) {
    const links = await p.evaluate(() =>
      [...document.querySelectorAll('.timeline a')].map((a) => {
        const text = a.textContent;
        const node = a.firstChild;
        const boxes = [];
        for (let i = 0; i < text.length; i++) {
          const r = document.createRange();
          r.setStart(node, i);
          r.setEnd(node, i + 1);
          const rect = r.getClientRects()[0];
          if (rect && rect.width > 0) boxes.push({ i, left: rect.left, top: rect.top });
        }
        // In reading order each character is right of the one before (or on a line below).
        let ltr = boxes.length > 1;
        for (let k = 1; k < boxes.length; k++) {
          const [a0, b0] = [boxes[k - 1], boxes[k]];
          if (Math.abs(b0.top - a0.top) < 2 ? b0.left <= a0.left : b0.top < a0.top) ltr = false;
        }
        return { href: a.href, host: new URL(a.href).host, text, ltr };
      }),
    );
    assert.equal(links.length, messages.length, 'one link per message');
    for (const l of links) {
      assert.ok(l.ltr, `link text reads left to right: ${JSON.stringify(l)}`);
      assert.ok(l.text.includes(l.host), `link text shows its host: ${JSON.stringify(l)}`);
    }
    assert.deepEqual(
      links.map((l) => l.host),
      ['evil.example', 'evil.example', 'xn--ggle-55da.com', 'example.org'],
    );
  }

  // A browser shows a link's destination itself: no bar on hover. A touch long-press
  // shows it everywhere.
  const link = cal.page.locator('.timeline a').first();
  await link.hover();
  assert.equal(await cal.page.locator('#link-target').count(), 0, 'no bar on hover in a browser');
  await link.dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true, bubbles: true });
  await cal.page.locator('#link-target').waitFor({ timeout: 3000 });
  assert.equal(await cal.page.textContent('#link-target'), await link.evaluate((a) => a.href));
  await link.dispatchEvent('pointerup', { pointerType: 'touch', isPrimary: true, bubbles: true });
  await cal.page.locator('#link-target').waitFor({ state: 'detached', timeout: 10_000 });
  // A short touch (a tap) shows nothing.
  await link.dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true, bubbles: true });
  await link.dispatchEvent('pointerup', { pointerType: 'touch', isPrimary: true, bubbles: true });
  await cal.page.waitForTimeout(700);
  assert.equal(await cal.page.locator('#link-target').count(), 0);
  assert.deepEqual(cal.problems, []);
});

test('sign-out leaves no unsent message in storage unless kept; a kept one is sent after the next sign-in', async () => {
  const dee = await person('dee', { displayName: 'Dee' });
  const eli = await person('eli', { displayName: 'Eli' });
  await startDirect(dee.page, 'eli');
  await send(dee.page, 'hello Eli');
  await openConversation(eli.page, 'Dee');
  await waitForText(eli.page, 'hello Eli');

  // Dee's live connection is cut (the page and the REST calls still work).
  let blocked = true;
  await dee.context.routeWebSocket(/\/api\/ws$/, (ws) => {
    if (blocked) ws.close();
    else ws.connectToServer();
  });
  await dee.page.reload();
  await dee.page.locator('#connection-state', { hasText: 'Reconnecting' }).waitFor();
  await dee.page.locator('#composer-input').waitFor();
  await send(dee.page, 'typed while cut off');
  await dee.page.locator('.msg-row[data-state="pending"]', { hasText: 'typed while cut off' }).waitFor();
  assert.equal((await outboxKeys(dee.page)).length, 1);

  // Signing out asks; Cancel changes nothing.
  await dee.page.click('#sign-out');
  await dee.page.locator('#sign-out-sheet').waitFor();
  assert.match(await dee.page.textContent('#sign-out-unsent'), /1 message you wrote has not been sent/);
  await screenshots(dee.page, 'signout-unsent');
  await dee.page.click('#sign-out-cancel');
  await dee.page.locator('#sign-out-sheet').waitFor({ state: 'detached' });
  assert.equal(await dee.page.locator('#me-name').count(), 1);
  await dee.page.locator('.msg-row[data-state="pending"]', { hasText: 'typed while cut off' }).waitFor();

  // Discard: signed out, and nothing of it left in storage.
  await dee.page.click('#sign-out');
  await dee.page.click('#sign-out-discard');
  await dee.page.locator('#sign-in-form').waitFor();
  assert.deepEqual(await outboxKeys(dee.page), [], 'no outbox left after sign-out');

  // Keep: the entry stays for the next sign-in of this account.
  await signIn(dee.page, 'dee');
  await openConversation(dee.page, 'Eli');
  assert.equal(await dee.page.locator('.msg-row[data-state]').count(), 0, 'the discarded message is gone');
  await send(dee.page, 'kept for later');
  await dee.page.locator('.msg-row[data-state="pending"]', { hasText: 'kept for later' }).waitFor();
  await dee.page.click('#sign-out');
  await dee.page.click('#sign-out-keep');
  await dee.page.locator('#sign-in-form').waitFor();
  const kept = await outboxKeys(dee.page);
  assert.equal(kept.length, 1);
  assert.deepEqual(kept[0][1].map((e) => e.body), ['kept for later']);

  // Back with a live connection: the kept message is sent, once, and leaves storage.
  blocked = false;
  await signIn(dee.page, 'dee');
  await waitLive(dee.page);
  await waitForText(eli.page, 'kept for later');
  await dee.page.waitForFunction(() => !Object.keys(localStorage).some((k) => k.startsWith('chatapp.outbox.')));
  assert.equal(await eli.page.locator('.msg-text', { hasText: 'typed while cut off' }).count(), 0, 'the discarded message never went out');
  assert.equal(await eli.page.locator('.msg-text', { hasText: 'kept for later' }).count(), 1);

  // With nothing unsent, signing out asks nothing.
  await dee.page.click('#sign-out');
  await dee.page.locator('#sign-in-form').waitFor();
  assert.equal(await dee.page.locator('#sign-out-sheet').count(), 0);
});

test('two members whose names look alike are shown with their usernames; a unique name alone', async () => {
  const alice = await person('alice', { displayName: 'alice' });
  const mallory = await person('mallory', { displayName: '\u0430lice' }); // Cyrillic а
  const fay = await person('fay', { displayName: 'Fay' });
  const idOf = (p) => p.page.evaluate(async () => (await (await fetch('/api/me')).json()).id);
  const ids = { alice: await idOf(alice), mallory: await idOf(mallory) };

  await fay.page.click('#new-group');
  await fay.page.fill('#group-title', 'Book club');
  for (const name of ['alice', 'mallory']) {
    await fay.page.fill('#group-member-search', name);
    await fay.page.locator(`button[data-pick-user="${ids[name]}"]`).click();
  }
  await fay.page.click('#create-group');
  await fay.page.locator('#conversation-title', { hasText: 'Book club' }).waitFor();
  await send(fay.page, 'Welcome, both of you');

  for (const [p, text] of [[alice, 'Hi, I am the real one'], [mallory, 'No, I am']]) {
    await openConversation(p.page, 'Book club');
    await waitForText(p.page, 'Welcome');
    await send(p.page, text);
    await waitForText(fay.page, text);
  }
  const senders = await fay.page.$$eval('.timeline .msg-sender', (els) => els.map((e) => e.textContent));
  assert.deepEqual(senders.map(plain), ['alice (@alice)', '\u0430lice (@mallory)']);
  const preview = fay.page.locator('li[data-conversation-id] .conv-preview');
  await preview.filter({ hasText: 'No, I am' }).waitFor();
  assert.equal(plain(await preview.textContent()), '\u0430lice (@mallory): No, I am');

  // Typing, named the same way (typing is sent at most every 3 s: Alice just sent one).
  await alice.page.waitForTimeout(3100);
  await alice.page.locator('#composer-input').pressSequentially('Hel', { delay: 30 });
  await fay.page.locator('#typing-indicator', { hasText: '(@alice) is typing' }).waitFor();
  await alice.page.fill('#composer-input', '');

  // In Alice's view Fay's name is unique: no username.
  await waitForText(alice.page, 'No, I am');
  const seenByAlice = await alice.page.$$eval('.timeline .msg-sender', (els) => els.map((e) => e.textContent));
  assert.deepEqual(seenByAlice.map(plain), ['Fay', '\u0430lice (@mallory)']);

  await screenshots(fay.page, 'lookalike-names');

  await fay.page.click('#group-settings');
  await fay.page.locator('#member-list li').nth(2).waitFor();
  const members = await fay.page.$$eval('#member-list .member-name bdi', (els) => els.map((e) => e.textContent));
  assert.deepEqual(members.map(plain).sort(), ['Fay', 'alice (@alice)', '\u0430lice (@mallory)'].sort());
  await screenshots(fay.page, 'lookalike-members');
  for (const p of [alice, mallory, fay]) assert.deepEqual(p.problems, []);
});
