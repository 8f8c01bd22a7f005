// Messages that change after they are sent, in Chromium against the real server: edit,
// delete, reply (and jumping to a quoted message older than the loaded page), reactions
// and mute, each seen live on the other person's screen. Screenshots go to ./artifacts.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, launchBrowser, startServer } from './harness.mjs';
import { ARTIFACTS, openConversation, register, screenshots, send, startDirect, waitForText, waitLive } from './ui.mjs';

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

/** The row of the (stored) message whose text contains `text`. */
function row(page, text) {
  return page.locator('.timeline .msg-row[data-seq]', { has: page.locator('.msg-text', { hasText: text }) }).first();
}

/** Hovers a message and clicks one of its actions. */
async function action(page, text, selector) {
  const r = row(page, text);
  await r.hover();
  await r.locator(`.msg-actions ${selector}`).click();
}

test('edit, delete, reply and jump, react and mute, live on the other screen', async () => {
  const ann = await register(browser, server.base, 'ann', { displayName: 'Ann Lee' });
  people.push(ann);
  const ben = await register(browser, server.base, 'ben', { displayName: 'Ben Okafor' });
  people.push(ben);
  for (const p of [ann, ben]) p.page.on('dialog', (d) => void d.accept());
  const benApi = (await api(server.base, 'POST', '/api/auth/login', { login: 'ben', password: 'password-ben' })).body.token;

  await startDirect(ann.page, 'ben');
  const conv = Number(await ann.page.locator('li[data-conversation-id]').first().getAttribute('data-conversation-id'));
  const first = await api(server.base, 'POST', `/api/conversations/${conv}/messages`, { body: 'the very first message' }, benApi);
  assert.equal(first.status, 201);
  for (let i = 1; i <= 79; i++) {
    const r = await api(server.base, 'POST', `/api/conversations/${conv}/messages`, { body: `filler ${i}` }, benApi);
    assert.equal(r.status, 201);
  }
  const answer = await api(server.base, 'POST', `/api/conversations/${conv}/messages`, { body: 'answering the first', reply_to_id: first.body.id }, benApi);
  assert.equal(answer.status, 201);
  // Ann comes back to it later: only the newest page is loaded.
  await ann.page.reload();
  await waitLive(ann.page);
  await openConversation(ann.page, 'Ben Okafor');
  await waitForText(ann.page, 'answering the first');
  await openConversation(ben.page, 'Ann Lee');
  await waitForText(ben.page, 'answering the first');

  // The quote names who said what; the quoted message is not loaded until clicked.
  const quote = row(ann.page, 'answering the first').locator('.msg-quote');
  assert.match(await quote.textContent(), /Ben Okafor\s*the very first message/);
  assert.equal(await ann.page.locator('.msg-row[data-seq="1"]').count(), 0);
  await quote.click();
  const original = ann.page.locator('.msg-row[data-seq="1"]');
  await original.waitFor();
  assert.ok(await original.isVisible(), 'scrolled into view');
  const shown = await ann.page.$$eval('.timeline .msg-row[data-seq]', (els) => els.map((e) => Number(e.getAttribute('data-seq'))));
  assert.deepEqual(shown, Array.from({ length: 81 }, (_, i) => i + 1), 'loaded back to it, each message once, no holes');

  // A reaction, live; clicking it again takes it back.
  await action(ann.page, 'answering the first', '.quick-react[aria-label="React with 👍"]');
  const benReaction = row(ben.page, 'answering the first').locator('.reaction');
  await benReaction.waitFor();
  assert.match(await benReaction.textContent(), /👍\s*1/);
  assert.match(await benReaction.getAttribute('title'), /Ann Lee/);
  await benReaction.click();
  await row(ann.page, 'answering the first').locator('.reaction', { hasText: '2' }).waitFor();

  // Any emoji, from the picker: searched by name, live on the other side.
  await action(ann.page, 'answering the first', '.more-react');
  await ann.page.locator('#emoji-picker .emoji-option').first().waitFor();
  await screenshots(ann.page, 'emoji-picker');
  await ann.page.fill('#emoji-search', 'party pop');
  const party = ann.page.locator('#emoji-picker .emoji-option[data-emoji="🎉"]');
  await party.waitFor();
  assert.equal(await ann.page.locator('#emoji-picker .emoji-option').count(), 1, 'only the party popper is named so');
  await party.click();
  assert.equal(await ann.page.locator('#emoji-picker').count(), 0, 'the picker closes with the pick');
  await row(ben.page, 'answering the first').locator('.reaction', { hasText: '🎉' }).waitFor();
  // The picker's 👍 (with the variation selector) is the same reaction as the quick 👍.
  await action(ann.page, 'answering the first', '.more-react');
  await ann.page.fill('#emoji-search', 'thumbs up');
  await ann.page.locator('#emoji-picker .emoji-option').first().click();
  await row(ben.page, 'answering the first').locator('.reaction', { hasText: /👍\s*1/ }).waitFor();
  await action(ann.page, 'answering the first', '.quick-react[aria-label="React with 👍"]');
  await row(ben.page, 'answering the first').locator('.reaction', { hasText: /👍\s*2/ }).waitFor();

  // An edit, live, marked edited; Escape cancels an edit in progress.
  await send(ann.page, 'helo everyone');
  await waitForText(ben.page, 'helo everyone');
  await action(ann.page, 'helo everyone', '.edit');
  assert.equal(await ann.page.inputValue('#composer-input'), 'helo everyone');
  await ann.page.locator('#compose-context', { hasText: 'Editing' }).waitFor();
  await ann.page.fill('#composer-input', 'hello everyone');
  await ann.page.press('#composer-input', 'Enter');
  await waitForText(ben.page, 'hello everyone');
  await row(ben.page, 'hello everyone').locator('.edited').waitFor();
  assert.equal(await ben.page.locator('.msg-text', { hasText: 'helo everyone' }).count(), 0);

  // A deletion, live: a tombstone in its place.
  await send(ann.page, 'oops, wrong chat');
  await waitForText(ben.page, 'oops, wrong chat');
  const seq = await row(ann.page, 'oops, wrong chat').getAttribute('data-seq');
  await action(ann.page, 'oops, wrong chat', '.delete');
  await ben.page.locator(`.msg-row[data-seq="${seq}"] .tombstone`).waitFor();
  assert.equal(await ben.page.locator('.msg-text', { hasText: 'oops' }).count(), 0);

  // A reply from the composer, quoted on the other side.
  await action(ben.page, 'hello everyone', '.reply');
  await ben.page.locator('#compose-context', { hasText: 'Replying to' }).waitFor();
  await send(ben.page, 'hi Ann');
  const reply = row(ann.page, 'hi Ann');
  await reply.waitFor();
  assert.match(await reply.locator('.msg-quote').textContent(), /Ann Lee\s*hello everyone/);
  assert.equal(await ben.page.locator('#compose-context').count(), 0, 'the reply state ends with the send');

  // Mute, for Ann alone.
  await ann.page.click('#mute-toggle');
  await ann.page.locator('#mute-toggle[aria-pressed="true"]').waitFor();
  assert.equal(await ben.page.locator('#mute-toggle[aria-pressed="true"]').count(), 0);

  await ann.page.locator('.timeline').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await screenshots(ann.page, 'changes');
  await screenshots(ben.page, 'changes-other');

  // Search: the words marked, the conversation named; a result older than the loaded page
  // opens in its place.
  await ann.page.reload();
  await waitLive(ann.page);
  await ann.page.fill('#message-search', 'very fir');
  const result = ann.page.locator('#message-results .result-item').first();
  await result.waitFor();
  assert.match(await result.textContent(), /Ben Okafor/);
  assert.deepEqual(await result.locator('mark').allTextContents(), ['very', 'first']);
  await screenshots(ann.page, 'search');
  await result.click();
  const found = ann.page.locator('.msg-row[data-seq="1"]');
  await found.waitFor();
  assert.ok(await found.isVisible(), 'the result is shown in its place');
  await ann.page.fill('#message-search', 'oops');
  await ann.page.locator('#search-empty').waitFor(); // deleted: never found
  await ann.page.fill('#message-search', '');

  // A mention with the @ picker: the "@" badge on the other side, and the highlight.
  const annId = (await api(server.base, 'GET', '/api/users?q=ann', undefined, benApi)).body[0].id;
  const club = await api(server.base, 'POST', '/api/conversations', { kind: 'group', title: 'Club', member_ids: [annId] }, benApi);
  assert.equal(club.status, 201);
  await openConversation(ben.page, 'Club');
  await ben.page.locator('#composer-input').pressSequentially('see this @An', { delay: 20 });
  await ben.page.locator('#mention-picker .mention-option[data-username="ann"]').waitFor();
  await ben.page.press('#composer-input', 'Enter');
  assert.equal(await ben.page.inputValue('#composer-input'), 'see this @ann ');
  await ben.page.press('#composer-input', 'Enter');
  const clubItem = ann.page.locator('li[data-conversation-id]', { hasText: 'Club' });
  await clubItem.locator('.mention-badge').waitFor();
  await openConversation(ann.page, 'Club');
  await row(ann.page, 'see this @ann').locator('.bubble.mentions-me').waitFor();
  await screenshots(ann.page, 'mention');

  // On a phone there is no hover: a tap on the bubble shows the message's actions.
  await ann.page.setViewportSize({ width: 390, height: 844 });
  const tapped = row(ann.page, 'see this @ann');
  await tapped.locator('.bubble').click({ position: { x: 10, y: 10 } });
  await tapped.locator('.msg-actions .reply').waitFor();
  await ann.page.screenshot({ path: `${ARTIFACTS}/changes-phone-actions-390.png` });
  await tapped.locator('.msg-actions .reply').click();
  await ann.page.locator('#compose-context', { hasText: 'Replying to' }).waitFor();

  // A voice message as the reply: recorded (the fake microphone), quoted on the other side.
  await ann.page.click('#record');
  await ann.page.locator('#compose-context', { hasText: 'Replying to' }).waitFor();
  await ann.page.locator('#voice-pause').waitFor();
  await ann.page.waitForTimeout(800);
  await ann.page.click('#voice-stop');
  await ann.page.click('#voice-send');
  const voiceReply = ben.page.locator('.timeline .msg-row', { has: ben.page.locator('.voice-player') }).last();
  await voiceReply.waitFor();
  assert.match(await voiceReply.locator('.msg-quote').textContent(), /see this @ann/);
  assert.equal(await ann.page.locator('#compose-context').count(), 0, 'the reply state ends with the send');

  // A long press on a reaction lists who reacted (a touch screen has no hover), and does
  // not toggle it.
  const clubId = club.body.id;
  const mentionSeq = Number(await tapped.getAttribute('data-seq'));
  const reacted = await api(server.base, 'PUT', `/api/conversations/${clubId}/messages/${mentionSeq}/reactions/${encodeURIComponent('🎉')}`, undefined, benApi);
  assert.equal(reacted.status, 200);
  const chip = tapped.locator('.reaction', { hasText: '🎉' });
  await chip.waitFor();
  const box = await chip.boundingBox();
  const touch = await ann.page.context().newCDPSession(ann.page);
  await touch.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 1 });
  const point = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  await touch.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [point] });
  await ann.page.waitForTimeout(700);
  await touch.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  const whoList = tapped.locator('.reaction-who');
  await whoList.waitFor();
  assert.match(await whoList.textContent(), /🎉\s*Ben Okafor/);
  await ann.page.waitForTimeout(300);
  assert.equal(await chip.getAttribute('aria-pressed'), 'false', 'the long press did not add Ann');
  await ann.page.screenshot({ path: `${ARTIFACTS}/changes-phone-who-reacted-390.png` });
  await whoList.click();
  assert.equal(await whoList.count(), 0);
  for (const p of [ann, ben]) assert.deepEqual(p.problems, [], `${p.username}: no page errors`);
});
