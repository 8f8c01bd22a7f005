// The whole product in Chromium against the real server: people chatting live, groups,
// history, voice, profile photos, resilience to a server restart and to being offline.
// Each person has their own browser context. Screenshots go to ./artifacts (not committed).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, launchBrowser, startServer } from './harness.mjs';
import {
  checkA11y, openConversation, percentile, register, screenshots, send, seqs, startDirect, texts, waitForText, waitLive,
} from './ui.mjs';

let server;
let browser;
const people = [];

before(async () => {
  server = await startServer(['--auth-rate-per-address', '0', '--send-rate-per-user', '0']);
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

test('two people find each other and talk live both ways; typing, presence, read state; markup stays text', async () => {
  const ann = await person('ann', { displayName: 'Ann Lee' });
  await checkA11y(ann.page, 'main view (empty)');
  const ben = await person('ben', { displayName: 'Ben Okafor' });

  await startDirect(ann.page, 'ben');
  assert.equal((await ann.page.textContent('#conversation-title')).trim(), 'Ben Okafor');
  await ann.page.locator('#conversation-status', { hasText: 'online' }).waitFor();

  await send(ann.page, 'Hi Ben! See https://example.org/docs.');
  const convItem = ben.page.locator('li[data-conversation-id]', { hasText: 'Ann Lee' });
  await convItem.waitFor();
  assert.equal((await convItem.locator('.unread-badge').textContent()).trim(), '1');
  await openConversation(ben.page, 'Ann Lee');
  await waitForText(ben.page, 'Hi Ben!');
  await ben.page.locator('#new-messages').waitFor(); // divider at the first unread
  const link = ben.page.locator('.msg-text a').first();
  assert.equal(await link.getAttribute('href'), 'https://example.org/docs');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');

  // Ben types: Ann sees it; Ben answers; Ann sees "Seen" on her message.
  await ben.page.locator('#composer-input').pressSequentially('Hel', { delay: 30 });
  await ann.page.locator('#typing-indicator', { hasText: 'Ben Okafor is typing' }).waitFor();
  await ben.page.fill('#composer-input', '');
  await send(ben.page, 'Hello Ann\nsecond line');
  await waitForText(ann.page, 'Hello Ann');
  assert.deepEqual(await texts(ann.page), ['Hi Ben! See https://example.org/docs.', 'Hello Ann\nsecond line']);
  await ann.page.locator('.seen-state', { hasText: 'Seen' }).waitFor();

  // Shift+Enter is a new line, not a send.
  await ann.page.locator('#composer-input').press('Shift+Enter');
  assert.equal(await ann.page.inputValue('#composer-input'), '\n');
  await ann.page.fill('#composer-input', '');

  // Markup is text.
  for (const body of ['<img src=x onerror="window.pwned=1">', '<script>window.pwned=2</script>']) await send(ann.page, body);
  await waitForText(ben.page, '<script>');
  assert.equal(await ben.page.locator('.timeline img[src="x"], .timeline script').count(), 0);
  assert.equal(await ben.page.evaluate(() => window.pwned), undefined);

  // Time for a message to appear on the other screen.
  const delays = [];
  for (let i = 0; i < 100; i++) {
    const text = `latency ${i}`;
    const appeared = ben.page.waitForFunction(
      (t) => [...document.querySelectorAll('.timeline .msg-row[data-seq] .msg-text')].some((e) => e.textContent === t),
      text,
      { polling: 'raf' },
    );
    const t0 = Date.now();
    await send(ann.page, text);
    await appeared;
    delays.push(Date.now() - t0);
  }
  delays.sort((a, b) => a - b);
  console.log(`# message to other screen: median ${percentile(delays, 50)} ms, p95 ${percentile(delays, 95)} ms (100 messages)`);
  const benSeqs = await seqs(ben.page);
  assert.deepEqual(benSeqs, [...new Set(benSeqs)].sort((a, b) => a - b), 'each message once, in order');

  // Presence: Ben leaves, Ann sees him go offline.
  await checkA11y(ann.page, 'conversation');
  await screenshots(ann.page, 'conversation');
  await ann.page.goto(server.base + '/#/');
  await waitLive(ann.page);
  await screenshots(ann.page, 'main');
  await ann.page.locator('li[data-conversation-id] .conv-title', { hasText: 'Ben Okafor' }).click();
  await ben.context.close();
  people.splice(people.indexOf(ben), 1);
  await ann.page.locator('#conversation-status', { hasText: 'last seen' }).waitFor();
  assert.deepEqual(ann.problems, []);
});

test('a group: created, renamed, a member removed stops receiving', async () => {
  const cat = await person('cat', { displayName: 'Cat' });
  const dan = await person('dan', { displayName: 'Dan' });
  const eve = await person('eve', { displayName: 'Eve' });
  await cat.page.click('#new-group');
  await cat.page.fill('#group-title', 'Climbing');
  for (const name of ['dan', 'eve']) {
    await cat.page.fill('#group-member-search', name);
    await cat.page.locator('button[data-pick-user]').first().click();
  }
  await checkA11y(cat.page, 'new group');
  await cat.page.click('#create-group');
  await cat.page.locator('#conversation-title', { hasText: 'Climbing' }).waitFor();
  await send(cat.page, 'Saturday?');
  for (const p of [dan, eve]) {
    await openConversation(p.page, 'Climbing');
    await waitForText(p.page, 'Saturday?');
  }
  await send(dan.page, 'Yes!');
  await waitForText(eve.page, 'Yes!');
  assert.equal(await eve.page.locator('.msg-sender', { hasText: 'Dan' }).count(), 1, 'sender name in groups');

  await cat.page.click('#group-settings');
  await cat.page.fill('#rename-title', 'Climbing club');
  await cat.page.click('#rename-save');
  await dan.page.locator('#conversation-title', { hasText: 'Climbing club' }).waitFor();
  await screenshots(cat.page, 'group-settings');
  await cat.page.locator('li[data-member-id] .remove-member').last().click(); // eve (members sorted by id)
  await cat.page.locator('#member-list li').nth(1).waitFor();
  await cat.page.keyboard.press('Escape');
  await eve.page.locator('li[data-conversation-id]', { hasText: 'Climbing' }).waitFor({ state: 'detached' });
  await send(cat.page, 'only for members now');
  await waitForText(dan.page, 'only for members now');
  await eve.page.waitForTimeout(500);
  assert.equal(await eve.page.locator('.msg-text', { hasText: 'only for members now' }).count(), 0);
  await screenshots(dan.page, 'group');

  // Dan leaves by himself.
  await dan.page.click('#group-settings');
  await dan.page.click('#leave-group');
  await dan.page.locator('li[data-conversation-id]', { hasText: 'Climbing' }).waitFor({ state: 'detached' });
});

test('scrolling back through 250 messages shows each once, in order', async () => {
  const fay = await person('fay');
  const bot = await api(server.base, 'POST', '/api/auth/register', { username: 'historybot', email: 'hb@example.org', password: 'password-hb' });
  const fayId = (await api(server.base, 'GET', '/api/users?q=fay', undefined, bot.body.token)).body[0].id;
  const dm = await api(server.base, 'POST', '/api/conversations', { kind: 'direct', user_id: fayId }, bot.body.token);
  for (let i = 1; i <= 250; i++) {
    const r = await api(server.base, 'POST', `/api/conversations/${dm.body.id}/messages`, { body: `history ${i}`, client_id: `h${i}` }, bot.body.token);
    assert.equal(r.status, 201);
  }
  await openConversation(fay.page, 'historybot');
  await waitForText(fay.page, 'history 250');
  const timeline = fay.page.locator('.timeline');
  for (let i = 0; i < 40 && (await fay.page.locator('#history-start').count()) === 0; i++) {
    await timeline.evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
    await fay.page.waitForTimeout(150);
  }
  await fay.page.locator('#history-start').waitFor();
  assert.deepEqual(await texts(fay.page), Array.from({ length: 250 }, (_, i) => `history ${i + 1}`));
  await screenshots(fay.page, 'history');
});

test('a voice message: recorded with pause and resume, previewed, sent, played at 2× on the other side', async () => {
  const gus = await person('gus', { displayName: 'Gus' });
  const hal = await person('hal', { displayName: 'Hal' });
  await startDirect(gus.page, 'hal');
  await gus.page.click('#record');
  await gus.page.locator('#voice-pause').waitFor();
  await checkA11y(gus.page, 'voice recorder');
  await screenshots(gus.page, 'recording');
  await gus.page.waitForTimeout(1200);
  await gus.page.click('#voice-pause');
  await gus.page.locator('#voice-resume').waitFor();
  const pausedAt = await gus.page.textContent('#voice-timer');
  await gus.page.waitForTimeout(700);
  assert.equal(await gus.page.textContent('#voice-timer'), pausedAt, 'the timer stops while paused');
  await gus.page.click('#voice-resume');
  await gus.page.waitForTimeout(1200);
  await gus.page.click('#voice-stop');
  await gus.page.locator('#voice-preview').waitFor({ state: 'attached' });
  const previewPlays = await gus.page.evaluate(async () => {
    const a = document.querySelector('#voice-preview');
    a.muted = true;
    await a.play();
    await new Promise((r) => setTimeout(r, 400));
    const t = a.currentTime;
    a.pause();
    return t;
  });
  assert.ok(previewPlays > 0, 'the preview plays');
  await screenshots(gus.page, 'voice-preview');
  await gus.page.click('#voice-send');
  await gus.page.locator('.timeline .voice-player').waitFor();

  await openConversation(hal.page, 'Gus');
  const player = hal.page.locator('.timeline .voice-player').first();
  await player.waitFor();
  await player.locator('.speed-btn').click();
  await player.locator('.speed-btn').click();
  assert.equal((await player.locator('.speed-btn').textContent()).trim(), '2×');
  await hal.page.evaluate(() => { document.querySelector('.voice-player audio').muted = true; });
  await player.locator('.voice-toggle').click();
  await hal.page.waitForFunction(() => document.querySelector('.voice-player audio').currentTime > 0.3);
  const rate = await hal.page.evaluate(() => document.querySelector('.voice-player audio').playbackRate);
  assert.equal(rate, 2);
  await screenshots(hal.page, 'voice');
});

test('a new profile photo appears on the other screen without reload', async () => {
  const ida = await person('ida', { displayName: 'Ida' });
  const jon = await person('jon', { displayName: 'Jon' });
  await startDirect(jon.page, 'ida');
  await send(jon.page, 'hi Ida');
  await ida.page.locator('li[data-conversation-id]', { hasText: 'Jon' }).waitFor();
  await ida.page.click('#profile-button');
  await ida.page.locator('#photo-file').waitFor();
  await checkA11y(ida.page, 'profile');
  // A 2×2 PNG made in the page.
  const png = await ida.page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 32;
    c.height = 32;
    const g = c.getContext('2d');
    g.fillStyle = '#e91e63';
    g.fillRect(0, 0, 32, 32);
    const b = await new Promise((r) => c.toBlob(r, 'image/png'));
    return [...new Uint8Array(await b.arrayBuffer())];
  });
  await ida.page.setInputFiles('#photo-file', { name: 'me.png', mimeType: 'image/png', buffer: Buffer.from(png) });
  await ida.page.locator('#photo-preview').waitFor();
  await ida.page.click('#photo-save');
  await ida.page.locator('#photo-remove').waitFor();
  await screenshots(ida.page, 'profile');
  await jon.page.locator('.conv-header img[data-avatar-user]').waitFor();
  await jon.page.locator('li[data-conversation-id] img[data-avatar-user]').waitFor();
  await ida.page.fill('#profile-display-name', 'Ida B.');
  await ida.page.click('#profile-save-name');
  await jon.page.locator('#conversation-title', { hasText: 'Ida B.' }).waitFor();
  await ida.page.click('#photo-remove');
  await jon.page.locator('.conv-header img[data-avatar-user]').waitFor({ state: 'detached' });
});

test('sign-in screen is accessible and shown at both widths', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(server.base + '/');
  await page.locator('#sign-in').waitFor();
  await checkA11y(page, 'sign in');
  await screenshots(page, 'sign-in');
  await page.fill('#login', 'nobody');
  await page.fill('#password', 'wrong-password');
  await page.click('#sign-in');
  await page.locator('#auth-error').waitFor();
  await context.close();
});
