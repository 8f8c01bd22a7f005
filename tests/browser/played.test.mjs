// Played receipts for voice messages (issue 18, item 2), in Chromium against the real
// server. Ann's voice message, recorded by the web UI with the fake microphone playing a
// tone file, reaches Ben with the server's 64-peak waveform; when Ben plays it, the
// microphone on Ann's screen turns played, live, and stays so after a reload. In a group
// Ann sees "played by N" and who, a deleted account as "Deleted user". Playing your own
// voice message sends nothing; someone else's is said played once, over the socket. A
// voice message whose file does not load says so in its player and is not said played.
// Screenshots go to ./artifacts.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { api, launchBrowser, startServer } from './harness.mjs';
import { checkA11y, openConversation, register, screenshots, startDirect, waitLive } from './ui.mjs';

let server;
let browser;
let tmp;
const people = [];

/** A mono 16-bit PCM WAV: `parts` of [seconds, tone Hz (0: silence)], one after another. */
function wav(parts, rate = 48_000) {
  const samples = [];
  for (const [seconds, hz] of parts) {
    for (let i = 0; i < Math.round(seconds * rate); i++) samples.push(hz ? Math.round(0.6 * 32767 * Math.sin((2 * Math.PI * hz * i) / rate)) : 0);
  }
  const data = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => data.writeInt16LE(s, i * 2));
  const head = Buffer.alloc(44);
  head.write('RIFF', 0);
  head.writeUInt32LE(36 + data.length, 4);
  head.write('WAVEfmt ', 8);
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(1, 22); // mono
  head.writeUInt32LE(rate, 24);
  head.writeUInt32LE(rate * 2, 28);
  head.writeUInt16LE(2, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36);
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'chatapp-played-'));
  // What the fake microphone hears, looped: silence, then a tone, then silence.
  const mic = join(tmp, 'mic.wav');
  writeFileSync(mic, wav([[0.6, 0], [0.9, 440], [0.5, 0]]));
  server = await startServer(['--auth-rate-per-address', '0', '--send-rate-per-user', '0']);
  browser = await launchBrowser([`--use-file-for-fake-audio-capture=${mic}`]);
});

after(async () => {
  for (const p of people) await p.context.close().catch(() => {});
  await browser?.close();
  if (server) {
    const { code } = await server.stop();
    assert.equal(code, 0, 'server shuts down cleanly on SIGTERM');
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Someone signed up through the UI, with what their page sends about plays counted:
 *  `played` frames on the socket and `POST …/played` requests, across reloads. */
async function person(name, displayName) {
  const sent = { frames: 0, rest: 0 };
  const p = await register(browser, server.base, name, {
    displayName,
    prepare: async (context) => {
      context.on('request', (r) => {
        if (r.method() === 'POST' && /\/api\/conversations\/\d+\/messages\/\d+\/played$/.test(new URL(r.url()).pathname)) sent.rest += 1;
      });
      context.on('page', (page) =>
        page.on('websocket', (ws) =>
          ws.on('framesent', ({ payload }) => {
            try {
              if (JSON.parse(String(payload)).type === 'played') sent.frames += 1;
            } catch {
              // not JSON
            }
          }),
        ),
      );
    },
  });
  const login = await api(server.base, 'POST', '/api/auth/login', { login: name, password: `password-${name}` });
  assert.equal(login.status, 200);
  const me = { ...p, sent, token: login.body.token, id: login.body.user.id, displayName };
  people.push(me);
  return me;
}

/** The voice message row (stored, not pending) of the open conversation. */
function voiceRow(page) {
  return page.locator('.timeline .msg-row[data-seq]', { has: page.locator('.voice-player') }).last();
}

/** Plays the (muted) voice message of the open conversation for a moment, then pauses it. */
async function play(page) {
  const row = voiceRow(page);
  await row.locator('audio').evaluate((a) => { a.muted = true; });
  await row.locator('.voice-toggle').click();
  await row.locator('audio').evaluate(async (a) => {
    for (let i = 0; i < 100 && a.currentTime < 0.3; i++) await new Promise((r) => setTimeout(r, 50));
  });
  assert.ok(await row.locator('audio').evaluate((a) => a.currentTime >= 0.3), 'the voice message plays');
  await row.locator('.voice-toggle').click(); // pause
}

test('played receipts: the microphone turns blue live in a direct conversation, "played by N" in a group', async () => {
  const ann = await person('ann', 'Ann Lee');
  const ben = await person('ben', 'Ben Okafor');
  const cat = await person('cat', 'Cat');

  // Ann records a voice message in the web UI (the fake microphone plays mic.wav).
  await startDirect(ann.page, 'ben');
  await ann.page.click('#record');
  await ann.page.locator('#voice-pause').waitFor();
  await ann.page.waitForTimeout(2600);
  await ann.page.click('#voice-stop');
  await ann.page.locator('#voice-preview').waitFor({ state: 'attached' });
  await ann.page.click('#voice-send');
  const annVoice = voiceRow(ann.page);
  await annVoice.waitFor();
  const mic = annVoice.locator('.played-state');
  assert.equal(await mic.getAttribute('data-played'), 'false');
  assert.equal(await mic.locator('svg title').textContent(), 'Not played yet');
  await screenshots(ann.page, 'played-not-yet');

  // On Ben's screen: the server's waveform of the browser's Opus, 64 peaks, not the bar.
  await openConversation(ben.page, 'Ann Lee');
  const benVoice = voiceRow(ben.page);
  await benVoice.waitFor();
  assert.equal(await benVoice.locator('.waveform .bar').count(), 64, '64 peaks drawn');
  assert.equal(await benVoice.locator('.waveform .plain').count(), 0, 'not the plain bar');
  const heights = await benVoice.locator('.waveform .bar').evaluateAll((bars) => bars.map((b) => parseFloat(b.style.height)));
  assert.ok(Math.max(...heights) - Math.min(...heights) > 30, `silence and tone told apart: ${heights.join(' ')}`);
  assert.equal(await ben.page.locator('.played-state, .played-by').count(), 0, 'nothing extra on someone else\'s voice message');
  await screenshots(ben.page, 'played-waveform');

  // Ben plays it: the microphone on Ann's screen turns played, live.
  await play(ben.page);
  await annVoice.locator('.played-state[data-played="true"]').waitFor();
  assert.equal(await mic.locator('svg title').textContent(), 'Played');
  const colour = await mic.locator('svg').evaluate((s) => getComputedStyle(s).color);
  await play(ben.page); // again: said once
  await ben.page.waitForTimeout(300);
  assert.deepEqual(ben.sent, { frames: 1, rest: 0 }, 'said played once, over the socket');
  await checkA11y(ann.page, 'played voice message');
  await screenshots(ann.page, 'played-direct');

  // After a reload it is still played.
  await ann.page.reload();
  await waitLive(ann.page);
  await openConversation(ann.page, 'Ben Okafor');
  await voiceRow(ann.page).locator('.played-state[data-played="true"]').waitFor();
  assert.equal(await voiceRow(ann.page).locator('.played-state svg').evaluate((s) => getComputedStyle(s).color), colour);
  assert.notEqual(colour, await ann.page.evaluate(() => {
    const probe = document.createElement('span');
    probe.innerHTML = '<span data-played="false"><svg class="played-mic"></svg></span>';
    document.querySelector('.msg-row.mine .msg-meta').append(probe);
    const c = getComputedStyle(probe.querySelector('svg')).color;
    probe.remove();
    return c;
  }), 'played and not played look different');

  // Ann playing her own sends nothing.
  await play(ann.page);
  await ann.page.waitForTimeout(500);
  assert.deepEqual(ann.sent, { frames: 0, rest: 0 }, 'no played frame or request for your own');

  // A group: Ann's voice message (a WAV uploaded through the API), played by Ben and Cat.
  const group = await api(server.base, 'POST', '/api/conversations', { kind: 'group', title: 'Band', member_ids: [ben.id, cat.id] }, ann.token);
  assert.equal(group.status, 201);
  const form = new FormData();
  form.append('client_id', 'band-voice-1');
  form.append('file', new Blob([wav([[0.4, 0], [1.2, 660], [0.4, 0]])], { type: 'audio/wav' }), 'band.wav');
  const upload = await fetch(`${server.base}/api/conversations/${group.body.id}/voice`, { method: 'POST', headers: { authorization: `Bearer ${ann.token}` }, body: form });
  assert.equal(upload.status, 201, await upload.clone().text());
  await openConversation(ann.page, 'Band');
  const bandVoice = voiceRow(ann.page);
  await bandVoice.waitFor();
  assert.equal(await bandVoice.locator('.played-state[data-played="false"] svg title').textContent(), 'Not played yet');

  const playedBy = bandVoice.locator('.played-by');
  for (const [p, n] of [[ben, 1], [cat, 2]]) {
    await openConversation(p.page, 'Band');
    await voiceRow(p.page).waitFor();
    await play(p.page);
    await playedBy.filter({ hasText: `played by ${n}` }).waitFor();
  }
  assert.equal(await playedBy.getAttribute('title'), '\u2068Ben Okafor\u2069, \u2068Cat\u2069');
  const described = await playedBy.evaluate((b) => document.getElementById(b.getAttribute('aria-describedby')).textContent);
  assert.equal(described, 'Played by \u2068Ben Okafor\u2069, \u2068Cat\u2069');
  assert.equal(await ann.page.locator('.played-who:visible').count(), 0, 'who is listed only when asked');
  // Keyboard focus lists who; so does a tap (touch screens have no hover).
  await ann.page.keyboard.press('Shift');
  await playedBy.focus();
  await ann.page.locator('.played-who:visible').waitFor();
  await playedBy.blur();
  await ann.page.locator('.played-who').waitFor({ state: 'hidden' });
  await playedBy.click();
  await ann.page.locator('.played-who:visible', { hasText: 'Played by' }).waitFor();
  assert.equal(await playedBy.getAttribute('aria-expanded'), 'true');
  await checkA11y(ann.page, 'played by 2');
  await screenshots(ann.page, 'played-group');

  await play(ann.page);
  await ann.page.waitForTimeout(500);
  assert.deepEqual(ann.sent, { frames: 0, rest: 0 }, 'still nothing for your own');
  assert.deepEqual(ben.sent, { frames: 2, rest: 0 }, 'Ben: one frame per voice message (direct, group)');
  assert.deepEqual(cat.sent, { frames: 1, rest: 0 }, 'Cat: one frame');

  // Cat deletes her account: Ann sees "Deleted user" among those who played it.
  const gone = await api(server.base, 'DELETE', '/api/me', { password: 'password-cat' }, cat.token);
  assert.equal(gone.status, 204);
  await ann.page.waitForFunction(() => /Deleted user/.test(document.querySelector('.played-by')?.getAttribute('title') ?? ''));
  assert.equal(await playedBy.getAttribute('title'), '\u2068Ben Okafor\u2069, \u2068Deleted user\u2069');

  for (const p of [ann, ben]) assert.deepEqual(p.problems, [], `${p.username}: no page errors`);
});

test('a voice message that cannot be loaded says so, is not marked played, and plays on a later tap', async () => {
  const dan = await person('dan', 'Dan');
  const eve = await person('eve', 'Eve');
  const direct = await api(server.base, 'POST', '/api/conversations', { kind: 'direct', user_id: eve.id }, dan.token);
  assert.equal(direct.status, 201);
  const form = new FormData();
  form.append('file', new Blob([wav([[0.3, 0], [1.2, 440]])], { type: 'audio/wav' }), 'dan.wav');
  const sent = await fetch(`${server.base}/api/conversations/${direct.body.id}/voice`, {
    method: 'POST',
    headers: { authorization: `Bearer ${dan.token}` },
    body: form,
  });
  assert.equal(sent.status, 201);

  // Eve's page cannot fetch the file (a network that drops it): the player says so.
  const refuse = (route) => route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"down"}}' });
  await eve.page.route('**/api/files/**', refuse);
  await openConversation(eve.page, 'Dan');
  const row = voiceRow(eve.page);
  await row.waitFor();
  await row.locator('audio').evaluate((a) => { a.muted = true; });
  await row.locator('.voice-toggle').click();
  await row.locator('.voice-error[role="alert"]').waitFor();
  assert.match(await row.locator('.voice-error').textContent(), /^Could not (load|play) it$/);
  await eve.page.waitForTimeout(300);
  assert.deepEqual(eve.sent, { frames: 0, rest: 0 }, 'not played: nothing said');
  await screenshots(eve.page, 'voice-unplayable');

  // The network is back: a tap loads it again and plays it; the time is shown again.
  await eve.page.unroute('**/api/files/**', refuse);
  await play(eve.page);
  assert.equal(await row.locator('.voice-error').count(), 0);
  assert.match(await row.locator('.voice-time').textContent(), /\d:\d\d \/ \d:\d\d/);
  for (let i = 0; i < 50 && eve.sent.frames + eve.sent.rest === 0; i++) await eve.page.waitForTimeout(100);
  assert.deepEqual(eve.sent, { frames: 1, rest: 0 }, 'played once it played');
});
