import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './client';
import { FetchApiClient } from './http';

/** Stands in for `fetch`: records each request and answers with `status` and `body`. */
function fakeFetch(status = 200, body: unknown = {}) {
  const requests: { url: string; method: string; body: unknown; contentType: string | null }[] = [];
  const fetch = vi.fn(async (url: string, init: RequestInit) => {
    const headers = new Headers(init.headers);
    requests.push({ url, method: init.method ?? 'GET', body: init.body === undefined ? undefined : JSON.parse(String(init.body)), contentType: headers.get('Content-Type') });
    return new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  });
  vi.stubGlobal('fetch', fetch);
  return requests;
}

afterEach(() => vi.unstubAllGlobals());

describe('FetchApiClient: registration, account deletion and the admin routes', () => {
  it('asks who may sign up without a session', async () => {
    const requests = fakeFetch(200, { registration: 'invite' });
    expect(await new FetchApiClient().serverInfo()).toEqual({ registration: 'invite' });
    expect(requests).toEqual([{ url: '/api/server', method: 'GET', body: undefined, contentType: null }]);
  });

  it('signs up with an invite code', async () => {
    const requests = fakeFetch(201, { user: {}, token: '', csrf_token: '' });
    await new FetchApiClient().register({ username: 'ben', email: 'b@x.org', password: 'pw-pw-pw-pw', invite: 'CODE' });
    expect(requests[0]).toMatchObject({ url: '/api/auth/register', method: 'POST', body: { username: 'ben', invite: 'CODE' }, contentType: 'application/json' });
  });

  it('deletes the account with DELETE /api/me and the password as JSON (204: nothing to read)', async () => {
    const requests = fakeFetch(204);
    await expect(new FetchApiClient().deleteAccount({ password: 'secret' })).resolves.toBeUndefined();
    expect(requests).toEqual([{ url: '/api/me', method: 'DELETE', body: { password: 'secret' }, contentType: 'application/json' }]);
  });

  it('reports a refused deletion with its status and code', async () => {
    fakeFetch(409, { error: { code: 'last_admin', message: 'you are the only admin' } });
    const err = await new FetchApiClient().deleteAccount({ password: 'secret' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 409, code: 'last_admin' });
  });

  it('calls each admin route with its method, path and body', async () => {
    const requests = fakeFetch(200, []);
    const api = new FetchApiClient();
    await api.adminUsers({ q: 'ann b', limit: 100 });
    await api.adminUsers({});
    await api.adminCreateUser({ username: 'cat', email: 'c@x.org', is_admin: true });
    await api.adminUpdateUser(7, { disabled: true });
    await api.adminResetPassword(7);
    await api.invites();
    await api.createInvite({ max_uses: 3, expires_in_hours: 48 });
    await api.revokeInvite(4);
    await api.adminActions();
    expect(requests.map((r) => [r.method, r.url, r.body])).toEqual([
      ['GET', '/api/admin/users?q=ann+b&limit=100', undefined],
      ['GET', '/api/admin/users', undefined],
      ['POST', '/api/admin/users', { username: 'cat', email: 'c@x.org', is_admin: true }],
      ['PATCH', '/api/admin/users/7', { disabled: true }],
      ['POST', '/api/admin/users/7/password', undefined],
      ['GET', '/api/admin/invites', undefined],
      ['POST', '/api/admin/invites', { max_uses: 3, expires_in_hours: 48 }],
      ['DELETE', '/api/admin/invites/4', undefined],
      ['GET', '/api/admin/actions', undefined],
    ]);
  });
});

describe('FetchApiClient: played receipts', () => {
  it('marks a voice message played with POST …/messages/{seq}/played and no body', async () => {
    const requests = fakeFetch(200, { id: 5, seq: 3, played_by: [{ user_id: 2, at: '2026-01-01T00:00:00Z' }] });
    const m = await new FetchApiClient().markPlayed(7, 3);
    expect(m.played_by).toEqual([{ user_id: 2, at: '2026-01-01T00:00:00Z' }]);
    expect(requests).toEqual([{ url: '/api/conversations/7/messages/3/played', method: 'POST', body: undefined, contentType: null }]);
  });

  it('reports a refusal (your own message) with its status and code', async () => {
    fakeFetch(400, { error: { code: 'own_message', message: 'you sent this message' } });
    const err = await new FetchApiClient().markPlayed(7, 3).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: 'own_message' });
  });
});
