// Photo messages (issue 18, item 3), in Chromium against the real server. Ann sends a
// photo through the file input: its preview takes a caption (Enter sends), the upload
// shows its progress, and Ben gets the thumbnail in a box of the right size before a byte
// of it has loaded, the caption below; a click opens it at full size, Escape closes it and
// gives the focus back. A paste and a drop open the preview too; a file that is not an
// image is refused before anything is uploaded, one the server refuses says why, and a
// failed upload is retried with the same client_id (stored once). Captions are edited like
// text; quotes and the conversation list say "Photo". Screenshots go to ./artifacts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { api, launchBrowser, startServer } from './harness.mjs';
import { checkA11y, openConversation, register, screenshots, send, startDirect, waitForText } from './ui.mjs';

let server;
let browser;
let tmp;
const people = [];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'chatapp-photos-'));
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
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A real RGB PNG of `width` × `height`: colour gradients with diagonal stripes. */
function png(width, height) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      const stripe = Math.floor((x + y) / 24) % 2 ? 40 : 0;
      rows[o + 1 + x * 3] = Math.round((x / width) * 215) + stripe;
      rows[o + 2 + x * 3] = Math.round((y / height) * 180) + stripe;
      rows[o + 3 + x * 3] = 200 - Math.round((x / width) * 120);
    }
  }
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** A 640×480 JPEG of ffmpeg's test pattern (a PNG of the same size where ffmpeg is missing). */
function jpeg() {
  const out = join(tmp, 'lake.jpg');
  try {
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=640x480', '-frames:v', '1', out]);
    return { name: 'lake.jpg', mimeType: 'image/jpeg', buffer: readFileSync(out) };
  } catch {
    return { name: 'lake.png', mimeType: 'image/png', buffer: png(640, 480) };
  }
}

async function person(name, displayName) {
  const p = await register(browser, server.base, name, { displayName });
  const login = await api(server.base, 'POST', '/api/auth/login', { login: name, password: `password-${name}` });
  assert.equal(login.status, 200);
  const me = { ...p, token: login.body.token, id: login.body.user.id, uploads: [] };
  // Every photo upload the page makes, with the client_id of its form (where the browser
  // shows the form: to an intercepted request).
  p.context.on('request', (r) => {
    if (r.method() !== 'POST' || !/\/api\/conversations\/\d+\/photos$/.test(new URL(r.url()).pathname)) return;
    const body = r.postDataBuffer()?.toString('latin1') ?? '';
    me.uploads.push(/name="client_id"\r\n\r\n([^\r]*)\r\n/.exec(body)?.[1] ?? null);
  });
  people.push(me);
  return me;
}

/** The stored photo messages of the open conversation. */
const photoRows = (page) => page.locator('.timeline .msg-row.photo[data-seq]');

/** The newest messages of a conversation, through the API (the test's side channel). */
async function latest(conv, token) {
  const r = await api(server.base, 'GET', `/api/conversations/${conv}/messages?limit=50`, undefined, token);
  assert.equal(r.status, 200);
  return r.body.messages;
}

/** Hands `files` ([{name, type, bytes}]) to a page event built in the page: paste on the
 *  composer, or a drag (enter, over, drop) onto the element matching `selector`. */
async function dispatchFiles(page, kind, selector, files, { drop = true } = {}) {
  return page.evaluate(
    ({ kind, selector, files, drop }) => {
      const make = () => {
        const dt = new DataTransfer();
        for (const f of files) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: f.type }));
        return dt;
      };
      const target = document.querySelector(selector);
      if (kind === 'paste') return target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: make(), bubbles: true, cancelable: true }));
      const types = drop ? ['dragenter', 'dragover', 'drop'] : ['dragenter', 'dragover'];
      const dt = make();
      return types.map((type) => target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true })));
    },
    { kind, selector, files: files.map((f) => ({ name: f.name, type: f.type, bytes: [...f.bytes] })), drop },
  );
}

test('a photo through the file input: caption, progress, a thumbnail sized before it loads, the full view', async () => {
  const ann = await person('ann', 'Ann Lee');
  const ben = await person('ben', 'Ben Okafor');
  await startDirect(ann.page, 'ben');
  const conv = Number(await ann.page.locator('li[data-conversation-id]').first().getAttribute('data-conversation-id'));
  await send(ann.page, 'Look what I saw this morning');
  await openConversation(ben.page, 'Ann Lee');
  await waitForText(ben.page, 'Look what I saw');

  // Ann chooses a photo: the preview opens with the caption field focused.
  assert.equal(await ann.page.getAttribute('#attach-photo', 'aria-label'), 'Attach a photo');
  assert.equal(await ann.page.getAttribute('#photo-input', 'accept'), 'image/png,image/jpeg,image/gif,image/webp');
  await ann.page.setInputFiles('#photo-input', jpeg());
  await ann.page.locator('#photo-preview').waitFor();
  await ann.page.waitForFunction(() => document.activeElement?.id === 'photo-caption');
  await ann.page.locator('#photo-preview-image').evaluate((img) => img.decode());
  await checkA11y(ann.page, 'photo preview');
  await screenshots(ann.page, 'photos-preview');

  // The upload is held (an interception) until the pending photo and its progress are seen.
  let heldRoute;
  const held = new Promise((resolve) => (heldRoute = resolve));
  await ann.page.route('**/api/conversations/*/photos', (route) => heldRoute(route));
  // Ben's files are held too: his thumbnail's box is measured before it loads.
  const benFiles = [];
  await ben.page.route('**/api/files/**', (route) => void benFiles.push(route));

  await ann.page.fill('#photo-caption', 'The lake at dawn');
  await ann.page.press('#photo-caption', 'Enter');
  await ann.page.locator('#photo-preview').waitFor({ state: 'detached' });
  const upload = await held;
  const pendingRow = ann.page.locator('.timeline .msg-row[data-upload-id]');
  const bar = pendingRow.locator('[role="progressbar"]');
  await bar.waitFor();
  const now = Number(await bar.getAttribute('aria-valuenow'));
  assert.ok(now >= 0 && now <= 100, `progress is a percentage: ${now}`);
  assert.equal(await pendingRow.locator('.photo-caption').textContent(), 'The lake at dawn');
  assert.ok(await pendingRow.locator('img.photo-pending').evaluate((img) => img.src.startsWith('blob:')), 'the local image is shown');
  await upload.continue();
  await ann.page.unroute('**/api/conversations/*/photos');
  await photoRows(ann.page).first().waitFor();
  await pendingRow.waitFor({ state: 'detached' });
  assert.equal(ann.uploads.length, 1);

  // Ben: the thumbnail's box has its size while the image is still held back.
  const benPhoto = photoRows(ben.page).first();
  await benPhoto.waitFor();
  const stored = (await latest(conv, ben.token)).find((m) => m.kind === 'photo');
  assert.equal(stored.body, 'The lake at dawn');
  assert.deepEqual([stored.attachment.width, stored.attachment.height], [640, 480]);
  const thumb = stored.attachment.thumbnail;
  assert.deepEqual([thumb.width, thumb.height], [480, 360]);
  const img = benPhoto.locator('.photo-thumb img');
  for (let i = 0; i < 100 && !benFiles.some((r) => r.request().url().endsWith(thumb.url)); i++) await ben.page.waitForTimeout(50);
  assert.ok(benFiles.some((r) => r.request().url().endsWith(thumb.url)), 'the thumbnail (not the full image) is asked for');
  assert.ok(!benFiles.some((r) => r.request().url().endsWith(stored.attachment.url)), 'the full image is not loaded for the timeline');
  assert.equal(await img.evaluate((i) => i.naturalWidth), 0, 'not loaded yet');
  const before = await img.boundingBox();
  assert.ok(Math.abs(before.width - 320) <= 1 && Math.abs(before.height - 240) <= 1, `a 320×240 box before loading: ${before.width}×${before.height}`);
  for (const r of benFiles) await r.continue();
  await ben.page.unroute('**/api/files/**');
  await ben.page.waitForFunction(() => {
    const i = document.querySelector('.timeline .msg-row.photo[data-seq] .photo-thumb img');
    return i && i.complete && i.naturalWidth > 0;
  });
  const loaded = await img.boundingBox();
  assert.deepEqual([loaded.width, loaded.height], [before.width, before.height], 'nothing moves when it loads');
  assert.equal(await benPhoto.locator('.photo-caption .msg-text').textContent(), 'The lake at dawn');
  assert.equal(await benPhoto.locator('.photo-thumb').getAttribute('aria-label'), 'View photo');

  // On a phone the box is narrower, the aspect ratio the same.
  await ben.page.setViewportSize({ width: 390, height: 844 });
  const phone = await img.boundingBox();
  assert.ok(phone.width < 320 && phone.width > 200, `narrower on a phone: ${phone.width}`);
  assert.ok(Math.abs(phone.width / phone.height - 4 / 3) < 0.02, `same aspect ratio: ${phone.width}×${phone.height}`);
  await ben.page.setViewportSize({ width: 1280, height: 800 });

  // The list says what came in; so does Ann's.
  const benItem = ben.page.locator(`li[data-conversation-id="${conv}"] .conv-preview`);
  await benItem.filter({ hasText: 'Photo: The lake at dawn' }).waitFor();
  await ann.page.locator(`li[data-conversation-id="${conv}"] .conv-preview`, { hasText: 'You: Photo: The lake at dawn' }).waitFor();

  // The full view: the stored image at its own size; Escape closes, the focus comes back.
  await benPhoto.locator('.photo-thumb').click();
  const full = ben.page.locator('#photo-viewer #photo-full');
  await full.waitFor();
  await ben.page.waitForFunction(() => {
    const i = document.querySelector('#photo-full');
    return i && i.complete && i.naturalWidth > 0;
  });
  assert.equal(await full.evaluate((i) => i.naturalWidth), stored.attachment.width, 'the full image, not the thumbnail');
  assert.ok(await full.evaluate((i, url) => i.src.endsWith(url), stored.attachment.url));
  assert.equal(await ben.page.evaluate(() => document.activeElement?.id), 'photo-viewer-close');
  assert.equal(await ben.page.locator('#photo-viewer .photo-viewer-caption').textContent(), 'The lake at dawn');
  await checkA11y(ben.page, 'photo viewer');
  await screenshots(ben.page, 'photos-viewer');
  await ben.page.keyboard.press('Escape');
  await ben.page.locator('#photo-viewer').waitFor({ state: 'detached' });
  assert.ok(await benPhoto.locator('.photo-thumb').evaluate((b) => b === document.activeElement), 'the focus is back on the thumbnail');
  // A click beside the photo closes it too; one on the photo does not.
  await benPhoto.locator('.photo-thumb').click();
  await full.waitFor();
  await full.click();
  assert.equal(await ben.page.locator('#photo-viewer').count(), 1);
  await ben.page.mouse.click(8, 400);
  await ben.page.locator('#photo-viewer').waitFor({ state: 'detached' });

  // A reply quotes it as a photo.
  await benPhoto.hover();
  await benPhoto.locator('.msg-actions .reply').click();
  await ben.page.locator('#compose-context', { hasText: '📷 Photo: The lake at dawn' }).waitFor();
  await send(ben.page, 'Beautiful!');
  const reply = ann.page.locator('.timeline .msg-row[data-seq]', { has: ann.page.locator('.msg-text', { hasText: 'Beautiful!' }) });
  await reply.waitFor();
  assert.match(await reply.locator('.msg-quote').textContent(), /Ann Lee\s*📷 Photo: The lake at dawn/);

  // Ann edits the caption, as she would a text; Ben sees it live.
  const annPhoto = photoRows(ann.page).first();
  await annPhoto.hover();
  await annPhoto.locator('.msg-actions .edit').click();
  await ann.page.locator('#compose-context', { hasText: 'Editing the caption' }).waitFor();
  assert.equal(await ann.page.inputValue('#composer-input'), 'The lake at dawn');
  await ann.page.fill('#composer-input', 'The lake at dawn, 6 am');
  await ann.page.press('#composer-input', 'Enter');
  await benPhoto.locator('.photo-caption .msg-text', { hasText: 'The lake at dawn, 6 am' }).waitFor();
  await benPhoto.locator('.edited').waitFor();
  // Emptied, the caption goes and the photo stays; given again, it is back.
  const editCaption = async (text) => {
    await annPhoto.hover();
    await annPhoto.locator('.msg-actions .edit').click();
    await ann.page.locator('#compose-context', { hasText: 'Editing the caption' }).waitFor();
    await ann.page.fill('#composer-input', text);
    await ann.page.click('#send');
    await ann.page.locator('#compose-context').waitFor({ state: 'detached' });
  };
  await editCaption('');
  await benPhoto.locator('.photo-caption').waitFor({ state: 'detached' });
  assert.equal(await benPhoto.locator('.photo-thumb img').count(), 1, 'the photo stays');
  await editCaption('The lake at dawn, 6 am');
  await benPhoto.locator('.photo-caption .msg-text', { hasText: 'The lake at dawn, 6 am' }).waitFor();
  assert.equal(ben.uploads.length, 0);

  // Ben answers with a tall photo of his own, without a caption.
  await ben.page.setInputFiles('#photo-input', { name: 'tower.png', mimeType: 'image/png', buffer: png(300, 500) });
  await ben.page.locator('#photo-preview').waitFor();
  await ben.page.click('#photo-send');
  await photoRows(ann.page).nth(1).waitFor();
  const tall = await photoRows(ann.page).nth(1).locator('.photo-thumb img').boundingBox();
  assert.ok(Math.abs(tall.width - 192) <= 1 && Math.abs(tall.height - 320) <= 1, `a tall photo fits 320 high: ${tall.width}×${tall.height}`);
  assert.equal(await photoRows(ann.page).nth(1).locator('.photo-caption').count(), 0, 'no caption, none shown');
  await ann.page.waitForFunction(() => [...document.querySelectorAll('.timeline .photo-thumb img')].every((i) => i.complete && i.naturalWidth > 0));
  await ann.page.locator('.timeline').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await ann.page.mouse.move(600, 20); // off the messages: no actions shown on hover
  await checkA11y(ann.page, 'timeline with photos');
  await screenshots(ann.page, 'photos-timeline');

  for (const p of [ann, ben]) assert.deepEqual(p.problems, [], `${p.username}: no page errors`);
});

test('paste and drop open the preview; a wrong file is refused before upload; a failed upload is retried once', async () => {
  const cat = await person('cat', 'Cat');
  const dan = await person('dan', 'Dan');
  await startDirect(cat.page, 'dan');
  const conv = Number(await cat.page.locator('li[data-conversation-id]').first().getAttribute('data-conversation-id'));
  await send(cat.page, 'photos coming');
  await openConversation(dan.page, 'Cat');
  await waitForText(dan.page, 'photos coming');
  const image = { name: 'pasted.png', type: 'image/png', bytes: png(400, 300) };

  // A paste of an image opens the preview, with what the composer held as its caption;
  // Escape cancels and leaves the composer as it was.
  await cat.page.fill('#composer-input', 'from the clipboard');
  const notCancelled = await dispatchFiles(cat.page, 'paste', '#composer-input', [image]);
  assert.equal(notCancelled, false, 'the paste of an image is taken over');
  await cat.page.locator('#photo-preview').waitFor();
  assert.equal(await cat.page.inputValue('#photo-caption'), 'from the clipboard');
  await cat.page.waitForFunction(() => document.activeElement?.id === 'photo-caption');
  await cat.page.keyboard.press('Escape');
  await cat.page.locator('#photo-preview').waitFor({ state: 'detached' });
  assert.equal(await cat.page.inputValue('#composer-input'), 'from the clipboard');
  // Text pastes are left alone (the browser inserts them).
  const textPaste = await cat.page.evaluate(() => {
    const dt = new DataTransfer();
    dt.setData('text/plain', 'some text');
    return document.querySelector('#composer-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  });
  assert.equal(textPaste, true, 'a text paste is not cancelled');
  assert.equal(await cat.page.locator('#photo-preview').count(), 0);
  // Sent from the pasted preview: the caption leaves the composer with it.
  await dispatchFiles(cat.page, 'paste', '#composer-input', [image]);
  await cat.page.locator('#photo-preview').waitFor();
  await cat.page.press('#photo-caption', 'Enter');
  await photoRows(dan.page).filter({ hasText: 'from the clipboard' }).waitFor();
  assert.equal(await cat.page.inputValue('#composer-input'), '');

  // A drag over the conversation shows where to drop; the drop opens the preview.
  await dispatchFiles(cat.page, 'drag', '.timeline', [{ ...image, name: 'dropped.png' }], { drop: false });
  const overlay = cat.page.locator('#photo-drop');
  await overlay.waitFor();
  assert.equal((await overlay.textContent()).trim(), 'Drop to send a photo');
  await screenshots(cat.page, 'photos-drop');
  await dispatchFiles(cat.page, 'drag', '.timeline', [{ ...image, name: 'dropped.png' }]);
  await overlay.waitFor({ state: 'detached' });
  await cat.page.locator('#photo-preview').waitFor();
  await cat.page.fill('#photo-caption', 'dropped in');
  await cat.page.click('#photo-send');
  await photoRows(dan.page).filter({ hasText: 'dropped in' }).waitFor();
  assert.equal(cat.uploads.length, 2);

  // Text bytes named x.png: refused here, with the reason, and nothing is uploaded.
  await cat.page.setInputFiles('#photo-input', { name: 'x.png', mimeType: 'image/png', buffer: Buffer.from('this is only text, not a picture') });
  const refusal = cat.page.locator('#photo-error');
  await refusal.waitFor();
  assert.equal((await refusal.textContent()).trim(), '“x.png” is not a photo: only PNG, JPEG, GIF and WebP images can be sent.');
  assert.equal(await refusal.getAttribute('role'), 'alert');
  assert.equal(await cat.page.locator('#photo-preview').count(), 0, 'no preview for it');
  await dispatchFiles(cat.page, 'drag', '.timeline', [{ name: 'notes.txt', type: 'text/plain', bytes: Buffer.from('hello') }]);
  await refusal.filter({ hasText: '“notes.txt” is not a photo' }).waitFor();
  await cat.page.waitForTimeout(300);
  assert.equal(cat.uploads.length, 2, 'nothing was uploaded');
  await refusal.locator('.btn-close').click();
  await refusal.waitFor({ state: 'detached' });

  // A PNG that does not decode passes here; the server refuses it, and says why.
  const broken = Buffer.concat([png(40, 40).subarray(0, 33), Buffer.from('garbage that is no image data at all')]);
  await cat.page.setInputFiles('#photo-input', { name: 'broken.png', mimeType: 'image/png', buffer: broken });
  await cat.page.locator('#photo-preview').waitFor();
  await cat.page.click('#photo-send');
  const failed = cat.page.locator('.timeline .msg-row[data-upload-id][data-state="failed"]');
  await failed.waitFor();
  const reason = (await failed.locator('.photo-failed').textContent()).trim();
  assert.match(reason, /^Not sent: .+/);
  assert.doesNotMatch(reason, /answered 415/, `the server's own words: ${reason}`);
  assert.equal(await failed.locator('.retry-photo').count(), 0, 'no retry for a file the server refused');
  await failed.locator('.discard-photo').click();
  await failed.waitFor({ state: 'detached' });

  // The connection fails during an upload: Retry sends it again with the same client_id.
  let aborted = 0;
  await cat.page.route('**/api/conversations/*/photos', (route) => {
    aborted += 1;
    void route.abort('connectionreset');
  });
  await cat.page.setInputFiles('#photo-input', { name: 'retry.png', mimeType: 'image/png', buffer: png(320, 320) });
  await cat.page.locator('#photo-preview').waitFor();
  await cat.page.fill('#photo-caption', 'second try');
  await cat.page.press('#photo-caption', 'Enter');
  await failed.waitFor();
  assert.match(await failed.locator('.photo-failed').textContent(), /Cannot reach the server/);
  assert.equal(await failed.locator('.photo-caption').textContent(), 'second try');
  await checkA11y(cat.page, 'failed photo upload');
  await screenshots(cat.page, 'photos-failed');
  await cat.page.unroute('**/api/conversations/*/photos');
  await failed.locator('.retry-photo').click();
  await photoRows(dan.page).filter({ hasText: 'second try' }).waitFor();
  await failed.waitFor({ state: 'detached' });
  assert.equal(aborted, 1);
  const photos = (await latest(conv, dan.token)).filter((m) => m.kind === 'photo');
  const firstTry = cat.uploads.at(-2);
  assert.ok(firstTry, 'the cut attempt had a client_id');
  assert.equal(photos.at(-1).client_id, firstTry, 'the retry was stored under the first attempt\'s client_id');
  assert.deepEqual(photos.map((m) => m.body), ['from the clipboard', 'dropped in', 'second try'], 'each photo stored once');
  assert.equal(await photoRows(cat.page).count(), 3);

  // The refused and the cut upload are logged by the browser; nothing else is.
  const expected = /status of 415|ERR_CONNECTION_RESET/;
  for (const p of [cat, dan]) assert.deepEqual(p.problems.filter((m) => !expected.test(m)), [], `${p.username}: no page errors`);
});
