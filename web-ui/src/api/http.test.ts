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

/** Stands in for XMLHttpRequest (uploads): records the request and its form, reports
 *  upload progress, then answers with `status` and `body`. */
function fakeXhr(status: number, body: unknown) {
  const sent: { method: string; url: string; headers: Record<string, string>; form: FormData }[] = [];
  class FakeXhr {
    status = 0;
    statusText = '';
    responseText = '';
    withCredentials = false;
    upload: { onprogress: ((e: { lengthComputable: boolean; loaded: number; total: number }) => void) | null } = { onprogress: null };
    onload: (() => void) | null = null;
    onerror: (() => void) | null = null;
    private req = { method: '', url: '', headers: {} as Record<string, string> };
    open(method: string, url: string) {
      this.req.method = method;
      this.req.url = url;
    }
    setRequestHeader(k: string, v: string) {
      this.req.headers[k] = v;
    }
    getResponseHeader() {
      return null;
    }
    send(form: FormData) {
      sent.push({ ...this.req, form });
      this.upload.onprogress?.({ lengthComputable: true, loaded: 50, total: 100 });
      this.status = status;
      this.responseText = JSON.stringify(body);
      this.onload?.();
    }
  }
  vi.stubGlobal('XMLHttpRequest', FakeXhr);
  return sent;
}

describe('FetchApiClient: photos', () => {
  it('posts the photo as multipart with its caption, client_id and reply_to_id, reporting progress', async () => {
    const sent = fakeXhr(201, { id: 9, kind: 'photo' });
    const progress: number[] = [];
    const file = new File([new Uint8Array([0x89, 0x50])], 'cat.png', { type: 'image/png' });
    const m = await new FetchApiClient().sendPhoto(7, file, 'A cat', 'cid-1', 12, (f) => progress.push(f));
    expect(m).toEqual({ id: 9, kind: 'photo' });
    expect(progress).toEqual([0.5]);
    expect(sent[0]!.method).toBe('POST');
    expect(sent[0]!.url).toBe('/api/conversations/7/photos');
    const form = sent[0]!.form;
    expect(form.get('caption')).toBe('A cat');
    expect(form.get('client_id')).toBe('cid-1');
    expect(form.get('reply_to_id')).toBe('12');
    expect((form.get('file') as File).name).toBe('cat.png');
  });

  it('sends no caption field for a photo alone, and passes the server\'s refusal on', async () => {
    const sent = fakeXhr(415, { error: { code: 'unsupported_media_type', message: 'the image does not decode' } });
    const err = await new FetchApiClient().sendPhoto(7, new Blob([new Uint8Array([1])]), '', 'cid-2', null).catch((e: unknown) => e);
    expect([...sent[0]!.form.keys()]).toEqual(['client_id', 'file']);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 415, code: 'unsupported_media_type', message: 'the image does not decode' });
  });
});
