import { describe, expect, it, vi } from 'vitest';
import { ApiError, type ApiClient } from '../api/client';
import { ServerAdmin } from './admin';

function fakeApi(overrides: Partial<ApiClient> = {}) {
  return {
    adminUsers: vi.fn(async () => []),
    adminUpdateUser: vi.fn(async () => ({})),
    createInvite: vi.fn(async () => ({})),
    ...overrides,
  } as unknown as ApiClient & { adminUsers: ReturnType<typeof vi.fn>; adminUpdateUser: ReturnType<typeof vi.fn>; createInvite: ReturnType<typeof vi.fn> };
}

describe('ServerAdmin', () => {
  it('asks for accounts by prefix (all for an empty search) and changes one thing at a time', async () => {
    const api = fakeApi();
    const admin = new ServerAdmin(api, { origin: () => 'https://chat.example.org', notAdmin: () => {} });
    await admin.users('  ann ');
    await admin.users('');
    expect(api.adminUsers.mock.calls).toEqual([[{ q: 'ann', limit: 100 }], [{ limit: 100 }]]);
    await admin.setAdmin(3, true);
    await admin.setDisabled(3, false);
    expect(api.adminUpdateUser.mock.calls).toEqual([[3, { is_admin: true }], [3, { disabled: false }]]);
    await admin.createInvite(2, 48);
    expect(api.createInvite.mock.calls).toEqual([[{ max_uses: 2, expires_in_hours: 48 }]]);
  });

  it('builds invite links on the origin it is told', () => {
    let origin = 'http://127.0.0.1:8080';
    const admin = new ServerAdmin(fakeApi(), { origin: () => origin, notAdmin: () => {} });
    expect(admin.inviteLink('abc')).toBe('http://127.0.0.1:8080/#/invite/abc');
    origin = 'https://chat.example.org';
    expect(admin.inviteLink('abc')).toBe('https://chat.example.org/#/invite/abc');
  });

  it('says when the server no longer counts this account an admin, and still rejects', async () => {
    const notAdmin = vi.fn();
    const api = fakeApi({ adminUsers: vi.fn(async () => Promise.reject(new ApiError(403, 'admin_only', 'only an admin'))) });
    const admin = new ServerAdmin(api, { origin: () => '', notAdmin });
    await expect(admin.users('')).rejects.toMatchObject({ code: 'admin_only' });
    expect(notAdmin).toHaveBeenCalledTimes(1);
    const other = new ServerAdmin(fakeApi({ adminUpdateUser: vi.fn(async () => Promise.reject(new ApiError(409, 'own_account', 'no'))) }), { origin: () => '', notAdmin });
    await expect(other.setDisabled(1, true)).rejects.toMatchObject({ code: 'own_account' });
    expect(notAdmin).toHaveBeenCalledTimes(1);
  });
});
