// Running a server for others, through the web UI (issue 19): on a server started with
// `--registration invite` the first account signs up with the operator's invite (made on
// the command line) and is its admin; anyone else needs an invite link, which the admin makes and copies in the admin view and
// which opens sign-up with its code filled in. The admin disables an account (its page is
// signed out at once: the socket closes with 4001), enables it, makes it admin and takes
// that back, resets its password (shown once), creates an account, and finds all of it in
// the activity log. Deleting your account from the profile returns to sign-in, and the
// others then see "Deleted user" on your messages. A `--registration closed` server offers
// no sign-up at all.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { launchBrowser, serverBinary, startServer } from './harness.mjs';
import { checkA11y, openConversation, screenshots, send, waitForText, waitLive } from './ui.mjs';

let server;
let browser;
const contexts = [];
/** The people of the invite-mode server, as the tests meet them. */
const people = {};
/** Ben's password once the admin reset it. */
let benPassword = 'password-ben';

before(async () => {
  server = await startServer(['--registration', 'invite', '--auth-rate-per-address', '0', '--auth-rate-per-account', '0']);
  browser = await launchBrowser();
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  if (server) {
    const { code } = await server.stop();
    assert.equal(code, 0, 'server shuts down cleanly on SIGTERM');
  }
});

/** A browser context of its own with one page at `url`; script errors are collected
 *  (refused requests are expected here, so console errors are not). */
async function visit(url, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { context, page, errors };
}

/** Fills the sign-up form (open already) as `username` and sends it. */
async function fillSignUp(page, username, displayName = '') {
  await page.locator('#register-form').waitFor();
  await page.fill('#reg-username', username);
  await page.fill('#reg-email', `${username}@example.org`);
  await page.fill('#reg-password', `password-${username}`);
  if (displayName) await page.fill('#reg-display-name', displayName);
  await page.click('#register');
}

async function signIn(page, username, password) {
  await page.locator('#sign-in-form').waitFor();
  await page.fill('#login', username);
  await page.fill('#password', password);
  await page.click('#sign-in');
}

/** An account's row in the admin view's list. */
const userRow = (page, username) => page.locator(`#admin-users tr[data-username="${username}"]`);

const trimmed = async (locator) => (await locator.textContent()).trim();

async function clipboard(page) {
  return page.evaluate(() => navigator.clipboard.readText());
}

test('invite mode: the operator\'s first invite (from the command line) makes the admin; anyone else needs one', async () => {
  // As the README says: on a fresh invite-mode server the operator prints an invite for
  // themself with `chatapp-server invites create`, against the running server's data.
  const made = execFileSync(serverBinary(), ['--data-dir', server.dataDir, 'invites', 'create', '--json'], {
    env: { ...process.env, DATABASE_URL: '' },
  });
  const [{ code }] = JSON.parse(made.toString());
  const ada = await visit(`${server.base}/#/invite/${code}`);
  people.ada = ada;
  await ada.page.locator('#reg-invite').waitFor();
  assert.equal(await ada.page.inputValue('#reg-invite'), code, 'the link fills in the invite');
  assert.match(await ada.page.textContent('#invite-needed'), /You were invited/);
  await fillSignUp(ada.page, 'ada', 'Ada');
  await ada.page.locator('#me-name').waitFor();
  await waitLive(ada.page);
  await ada.page.locator('#admin-button').waitFor();

  // Someone without an invite: told an invite is needed, beside the invite field.
  const eve = await visit(server.base + '/');
  people.eve = eve;
  await eve.page.click('#show-register');
  await fillSignUp(eve.page, 'eve', 'Eve');
  await eve.page.locator('#reg-invite-error').waitFor();
  assert.match(await eve.page.textContent('#reg-invite-error'), /invite only.*invite link/s);
  assert.equal(await eve.page.locator('#me-name').count(), 0, 'not signed in');
  await checkA11y(eve.page, 'sign-up with an invite needed');
  await screenshots(eve.page, 'invite-required');
  assert.deepEqual([...ada.errors, ...eve.errors], []);
});

test('an admin makes invites; a link opens sign-up with its code (kept after a reload) and counts its use; a revoked one is refused', async () => {
  const { ada, eve } = people;
  await ada.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
  await ada.page.click('#admin-button');
  await ada.page.locator('#admin-view #admin-users').waitFor();
  await ada.page.click('#admin-tab-invites');
  await ada.page.locator('#invite-form').waitFor();
  await ada.page.fill('#invite-uses', '2');
  await ada.page.fill('#invite-hours', '48');
  await ada.page.click('#invite-create');
  const row = ada.page.locator('#admin-invites tr[data-new]');
  await row.waitFor();
  const link = await trimmed(row.locator('.invite-link'));
  const escaped = server.base.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  assert.match(link, new RegExp(`^${escaped}/#/invite/[A-Za-z0-9_-]{22}$`), 'the whole link, on the server\'s origin');
  const code = link.slice(link.lastIndexOf('/') + 1);
  assert.equal(await trimmed(row.locator('.invite-uses')), '0 / 2');
  assert.equal(await trimmed(row.locator('.invite-state')), 'Active');
  assert.match(await trimmed(row.locator('.invite-expiry')), /^expires in (2 days|47 hours)$/);
  await row.locator('.invite-copy').click();
  await row.locator('.invite-copy[data-copied]').waitFor();
  assert.equal(await clipboard(ada.page), link, 'the copy button copies the whole link');
  await checkA11y(ada.page, 'admin invites');
  await screenshots(ada.page, 'admin-invites');

  // Ben opens the link: sign-up, with the code filled in, also after a reload.
  const ben = await visit(link);
  people.ben = ben;
  await ben.page.locator('#register-form').waitFor();
  assert.equal(await ben.page.inputValue('#reg-invite'), code);
  assert.match(await ben.page.textContent('#invite-needed'), /You were invited/);
  await ben.page.reload();
  await ben.page.locator('#register-form').waitFor();
  assert.equal(await ben.page.inputValue('#reg-invite'), code, 'the link\'s code is kept after a reload');
  await checkA11y(ben.page, 'sign-up from an invite link');
  await screenshots(ben.page, 'invite-signup');
  await fillSignUp(ben.page, 'ben', 'Ben');
  await ben.page.locator('#me-name').waitFor();
  await waitLive(ben.page);
  assert.equal(await ben.page.evaluate(() => location.hash), '#/', 'signed in, the invite link leads to the list');

  // Not an admin: no way in, and the address alone shows nothing of it.
  assert.equal(await ben.page.locator('#admin-button').count(), 0);
  await ben.page.goto(server.base + '/#/admin');
  await ben.page.waitForFunction(() => location.hash === '#/');
  assert.equal(await ben.page.locator('#admin-view').count(), 0);

  // The invite counts Ben.
  await ada.page.click('#admin-refresh');
  await ada.page.locator(`#admin-invites tr[data-invite-id] .invite-link`, { hasText: code }).waitFor();
  const used = ada.page.locator('#admin-invites tr[data-invite-id]').filter({ hasText: code });
  await used.locator('.invite-uses', { hasText: '1 / 2' }).waitFor();

  // A second invite, revoked: its link no longer signs anyone up.
  await ada.page.fill('#invite-uses', '1');
  await ada.page.click('#invite-create');
  const second = ada.page.locator('#admin-invites tr[data-new]').filter({ hasNotText: code });
  await second.waitFor();
  const revokedLink = await trimmed(second.locator('.invite-link'));
  await second.locator('.invite-revoke').click();
  await ada.page.locator('#admin-invites tr[data-state="revoked"]').filter({ hasText: revokedLink }).waitFor();
  assert.equal(await trimmed(second.locator('.invite-state')), 'Revoked');
  assert.equal(await second.locator('.invite-revoke').count(), 0, 'nothing left to revoke');

  await eve.page.goto(revokedLink);
  await eve.page.waitForFunction((c) => document.querySelector('#reg-invite')?.value === c, revokedLink.slice(revokedLink.lastIndexOf('/') + 1));
  await fillSignUp(eve.page, 'eve', 'Eve');
  await eve.page.locator('#reg-invite-error', { hasText: 'cannot be used' }).waitFor();
  assert.equal(await eve.page.locator('#me-name').count(), 0);
  assert.deepEqual([...ada.errors, ...ben.errors, ...eve.errors], []);
});

test('the admin sees the new account; disabling signs it out at once, enabling lets it back; admin given and taken back', async () => {
  const { ada, ben } = people;
  await ada.page.click('#admin-tab-users');
  const row = userRow(ada.page, 'ben');
  await row.waitFor();
  assert.match(await row.textContent(), /Ben.*@ben.*ben@example\.org/s);
  assert.equal(await row.locator('.badge-admin').count(), 0);
  const own = userRow(ada.page, 'ada');
  await own.locator('.badge-you').waitFor();
  await own.locator('.badge-admin').waitFor();
  assert.equal(await own.locator('.toggle-admin, .toggle-disabled, .reset-password').count(), 0, 'no buttons on your own account');
  await checkA11y(ada.page, 'admin users');
  await screenshots(ada.page, 'admin-users');

  // Disable: Ben's page goes back to sign-in (its socket closed with 4001) and may not sign in.
  await row.locator('.toggle-disabled', { hasText: 'Disable' }).click();
  await row.locator('.badge-disabled').waitFor();
  await ben.page.locator('#sign-in-form').waitFor({ timeout: 15_000 });
  await ben.page.locator('#session-ended').waitFor();
  await signIn(ben.page, 'ben', benPassword);
  await ben.page.locator('#auth-error', { hasText: 'disabled' }).waitFor();

  // Enable: Ben signs in again.
  await row.locator('.toggle-disabled', { hasText: 'Enable' }).click();
  await row.locator('.badge-disabled').waitFor({ state: 'detached' });
  await signIn(ben.page, 'ben', benPassword);
  await ben.page.locator('#me-name').waitFor();
  await waitLive(ben.page);

  // Admin, and back.
  await row.locator('.toggle-admin', { hasText: 'Make admin' }).click();
  await row.locator('.badge-admin').waitFor();
  await row.locator('.toggle-admin', { hasText: 'Remove admin' }).click();
  await row.locator('.badge-admin').waitFor({ state: 'detached' });
  assert.equal(await row.locator('.admin-row-error').count(), 0);
  assert.deepEqual([...ada.errors, ...ben.errors], []);
});

test('a password reset shows the new password once and ends that person\'s sessions', async () => {
  const { ada, ben } = people;
  const row = userRow(ada.page, 'ben');
  await row.locator('.reset-password').click();
  await ada.page.locator('#reset-password-sheet').waitFor();
  await ada.page.click('#reset-password-confirm');
  await ada.page.locator('#password-once-sheet').waitFor();
  benPassword = await ada.page.inputValue('#password-once-value');
  assert.match(benPassword, /^[A-Za-z0-9_-]{16}$/);
  await ada.page.click('#password-once-copy');
  await ada.page.locator('#password-once-copy[data-copied]').waitFor();
  assert.equal(await clipboard(ada.page), benPassword);
  await screenshots(ada.page, 'admin-password-once');
  await ada.page.click('#password-once-done');
  await ada.page.locator('#password-once-sheet').waitFor({ state: 'detached' });

  await ben.page.locator('#sign-in-form').waitFor({ timeout: 15_000 });
  await signIn(ben.page, 'ben', 'password-ben');
  await ben.page.locator('#auth-error').waitFor();
  await signIn(ben.page, 'ben', benPassword);
  await ben.page.locator('#me-name').waitFor();
  await waitLive(ben.page);
  assert.deepEqual([...ada.errors, ...ben.errors], []);
});

test('an admin creates an account: refusals inline, the generated password shown once and working', async () => {
  const { ada } = people;
  await ada.page.click('#create-user-open');
  await ada.page.locator('#create-user-sheet').waitFor();
  await ada.page.fill('#new-user-username', 'ben');
  await ada.page.fill('#new-user-email', 'someone@example.org');
  await ada.page.click('#create-user-submit');
  await ada.page.locator('#new-user-username-error', { hasText: 'taken' }).waitFor();
  await ada.page.fill('#new-user-username', 'cat');
  await ada.page.fill('#new-user-email', 'cat@example.org');
  await ada.page.fill('#new-user-display-name', 'Cat');
  await ada.page.click('#create-user-submit');
  await ada.page.locator('#password-once-sheet').waitFor();
  const catPassword = await ada.page.inputValue('#password-once-value');
  await ada.page.click('#password-once-done');
  await userRow(ada.page, 'cat').waitFor();

  const cat = await visit(server.base + '/');
  await signIn(cat.page, 'cat', catPassword);
  await cat.page.locator('#me-name', { hasText: 'Cat' }).waitFor();
  assert.deepEqual([...ada.errors, ...cat.errors], []);
});

test('the activity log lists who did what to whom', async () => {
  const { ada } = people;
  await ada.page.click('#admin-tab-log');
  await ada.page.locator('#admin-log tr[data-action]').first().waitFor();
  const actions = await ada.page.$$eval('#admin-log tr[data-action]', (rows) => rows.map((r) => r.dataset.action));
  for (const a of ['create_invite', 'revoke_invite', 'disable', 'enable', 'grant_admin', 'revoke_admin', 'reset_password', 'create_user']) {
    assert.ok(actions.includes(a), `${a} is in the log: ${actions.join(', ')}`);
  }
  assert.equal(actions[0], 'create_user', 'newest first');
  const disabled = ada.page.locator('#admin-log tr[data-action="disable"]').first();
  assert.match(await disabled.locator('.log-actor').textContent(), /Ada/);
  assert.match(await disabled.locator('.log-target').textContent(), /Ben/);
  assert.equal(await trimmed(disabled.locator('.log-action')), 'Disabled');
  assert.match(await ada.page.locator('#admin-log tr[data-action="create_invite"] .log-detail').first().textContent(), /Invite #\d+, for 1 account/);
  await checkA11y(ada.page, 'admin activity log');
  await screenshots(ada.page, 'admin-log');
  assert.deepEqual(ada.errors, []);
});

test('deleting your account from the profile returns to sign-in; the others see "Deleted user" on your messages', async () => {
  const { ada, ben } = people;
  // Ben writes to a group with Ada.
  await ben.page.click('#new-group');
  await ben.page.fill('#group-title', 'Ops');
  await ben.page.fill('#group-member-search', 'ada');
  await ben.page.locator('#new-group-sheet button[data-pick-user]').first().click();
  await ben.page.click('#create-group');
  await ben.page.locator('#conversation-title', { hasText: 'Ops' }).waitFor();
  await send(ben.page, 'hello from ben');
  await openConversation(ada.page, 'Ops');
  await waitForText(ada.page, 'hello from ben');
  const bensMessage = ada.page.locator('.timeline .msg-row[data-seq]').filter({ hasText: 'hello from ben' });
  assert.equal(await trimmed(bensMessage.locator('.msg-sender')), 'Ben');

  // The only admin may not leave the server without one.
  await ada.page.click('#profile-button');
  await ada.page.click('#delete-account-open');
  await ada.page.fill('#delete-account-password', 'password-ada');
  await ada.page.click('#delete-account-confirm');
  await ada.page.locator('#delete-account-error', { hasText: 'only admin' }).waitFor();
  await ada.page.click('#delete-account-cancel');
  await openConversation(ada.page, 'Ops');

  // Ben deletes his account: a wrong password first, then his own.
  await ben.page.click('#profile-button');
  await ben.page.locator('#delete-account-section').scrollIntoViewIfNeeded();
  await ben.page.click('#delete-account-open');
  await ben.page.locator('#delete-account-sheet').waitFor();
  await ben.page.fill('#delete-account-password', 'not my password');
  await ben.page.click('#delete-account-confirm');
  await ben.page.locator('#delete-account-password-error', { hasText: 'wrong' }).waitFor();
  await checkA11y(ben.page, 'delete account');
  await screenshots(ben.page, 'delete-account');
  await ben.page.fill('#delete-account-password', benPassword);
  await ben.page.click('#delete-account-confirm');
  await ben.page.locator('#sign-in-form').waitFor();
  await ben.page.locator('#session-ended', { hasText: 'account was deleted' }).waitFor();
  await signIn(ben.page, 'ben', benPassword);
  await ben.page.locator('#auth-error').waitFor();
  assert.equal(await ben.page.locator('#me-name').count(), 0);

  // Ada sees his message under "Deleted user", muted, with a placeholder avatar.
  await bensMessage.locator('.msg-sender.user-deleted', { hasText: 'Deleted user' }).waitFor();
  assert.equal(await trimmed(bensMessage.locator('.msg-sender')), 'Deleted user');
  assert.equal(await trimmed(bensMessage.locator('.msg-text')), 'hello from ben', 'the message stays');
  assert.equal(await bensMessage.locator('.avatar-deleted').count(), 1);
  await screenshots(ada.page, 'deleted-user');

  // Nobody can start a conversation with him; the admin view marks the account deleted.
  await ada.page.fill('#user-search', 'ben');
  await ada.page.waitForTimeout(600);
  assert.equal(await ada.page.locator('.search-results button[data-user-id]').count(), 0);
  await ada.page.fill('#user-search', '');
  await ada.page.click('#admin-button');
  const row = userRow(ada.page, 'ben');
  await row.locator('.badge-deleted').waitFor();
  assert.equal(await row.locator('.toggle-admin, .toggle-disabled, .reset-password').count(), 0);
  assert.deepEqual([...ada.errors, ...ben.errors], []);
});

test('a closed server offers no sign-up, not even from an invite link', async () => {
  const closed = await startServer(['--registration', 'closed']);
  try {
    const { page, errors } = await visit(closed.base + '/');
    await page.locator('#registration-closed').waitFor();
    assert.match(await page.textContent('#registration-closed'), /does not take sign-ups.*admin/s);
    assert.equal(await page.locator('#show-register').count(), 0);
    await checkA11y(page, 'closed server sign-in');
    await screenshots(page, 'registration-closed');
    await page.goto(closed.base + '/#/invite/AAAAAAAAAAAAAAAAAAAAAA');
    await page.reload();
    await page.locator('#registration-closed').waitFor();
    assert.equal(await page.locator('#register-form').count(), 0);
    assert.deepEqual(errors, []);
  } finally {
    const { code } = await closed.stop();
    assert.equal(code, 0);
  }
});
