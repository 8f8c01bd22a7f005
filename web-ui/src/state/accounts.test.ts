import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { InviteState } from '../api/generated';
import {
  accountProblem,
  actionDetail,
  actionLabel,
  actorName,
  INVITE_NEEDED,
  INVITE_STATES,
  inviteCodeOf,
  inviteExpiry,
  inviteFormProblem,
  inviteLink,
  inviteUses,
  REGISTRATION_CLOSED,
} from './accounts';
import { parseRoute } from './router.svelte';

describe('invite links', () => {
  it('are the server origin, then #/invite/CODE, which the router reads back', () => {
    expect(inviteLink('https://chat.example.org', 'Zq3_x-9A')).toBe('https://chat.example.org/#/invite/Zq3_x-9A');
    expect(inviteLink('http://127.0.0.1:8080/', 'abc')).toBe('http://127.0.0.1:8080/#/invite/abc');
    const link = inviteLink('https://chat.example.org', 'Zq3_x-9A');
    expect(parseRoute(new URL(link).hash)).toEqual({ name: 'invite', code: 'Zq3_x-9A' });
  });

  it('give their code back when pasted whole, and a code stays itself', () => {
    expect(inviteCodeOf('  https://chat.example.org/#/invite/Zq3_x-9A ')).toBe('Zq3_x-9A');
    expect(inviteCodeOf('Zq3_x-9A')).toBe('Zq3_x-9A');
    expect(inviteCodeOf('')).toBe('');
  });
});

describe('invites in the list', () => {
  it('name every state with a badge', () => {
    const states: InviteState[] = ['active', 'used_up', 'expired', 'revoked'];
    expect(states.map((s) => INVITE_STATES[s].label)).toEqual(['Active', 'Used up', 'Expired', 'Revoked']);
    for (const s of states) expect(INVITE_STATES[s].badge).toMatch(/^text-bg-/);
  });

  it('show uses as n / max and when they expire, from now', () => {
    expect(inviteUses({ uses: 1, max_uses: 5 })).toBe('1 / 5');
    const now = Date.parse('2026-03-01T12:00:00Z');
    expect(inviteExpiry({ expires_at: '2026-03-08T12:00:00Z' }, now)).toBe('expires in 7 days');
    expect(inviteExpiry({ expires_at: '2026-03-01T15:00:00Z' }, now)).toBe('expires in 3 hours');
    expect(inviteExpiry({ expires_at: '2026-03-01T13:00:00Z' }, now)).toBe('expires in 1 hour');
    expect(inviteExpiry({ expires_at: '2026-03-01T12:20:00Z' }, now)).toBe('expires in 20 min');
    expect(inviteExpiry({ expires_at: '2026-02-28T12:00:00Z' }, now)).toMatch(/^expired \S/);
    expect(inviteExpiry({ expires_at: 'not a time' }, now)).toBe('');
  });

  it('are checked as the server checks them before it is asked', () => {
    expect(inviteFormProblem(1, 168)).toBeNull();
    expect(inviteFormProblem(1000, 8760)).toBeNull();
    expect(inviteFormProblem(0, 168)?.field).toBe('uses');
    expect(inviteFormProblem(1001, 168)?.field).toBe('uses');
    expect(inviteFormProblem(1.5, 168)?.field).toBe('uses');
    expect(inviteFormProblem(1, 0)?.field).toBe('hours');
    expect(inviteFormProblem(1, 8761)?.field).toBe('hours');
    expect(inviteFormProblem(1, Number.NaN)?.field).toBe('hours');
  });
});

describe('the activity log', () => {
  it('names each recorded action, and an unknown one in words', () => {
    expect(['create_user', 'grant_admin', 'revoke_admin', 'disable', 'enable', 'reset_password', 'create_invite', 'revoke_invite'].map(actionLabel)).toEqual([
      'Created account', 'Made admin', 'Removed admin', 'Disabled', 'Enabled', 'Reset password', 'Created invite', 'Revoked invite',
    ]);
    expect(actionLabel('delete_everything')).toBe('Delete everything');
  });

  it('says the detail in words', () => {
    expect(actionDetail({ action: 'create_invite', detail: 'invite 3 for 2' })).toBe('Invite #3, for 2 accounts');
    expect(actionDetail({ action: 'create_invite', detail: 'invite 4 for 1' })).toBe('Invite #4, for 1 account');
    expect(actionDetail({ action: 'revoke_invite', detail: 'invite 3' })).toBe('Invite #3');
    expect(actionDetail({ action: 'create_user', detail: 'admin' })).toBe('As an admin');
    expect(actionDetail({ action: 'disable', detail: '' })).toBe('');
    expect(actionDetail({ action: 'other', detail: 'as recorded' })).toBe('as recorded');
  });

  it('names the command line when no account did it', () => {
    expect(actorName(null)).toBe('Server operator (command line)');
    expect(actorName({ display_name: 'Ann', username: 'ann' })).toBe('Ann');
  });
});

describe('refusals', () => {
  it('say what to do for sign-up, sign-in, deletion and the admin routes', () => {
    const e = (status: number, code: string) => new ApiError(status, code, `server text for ${code}`);
    expect(accountProblem(e(403, 'registration_closed'))).toBe(REGISTRATION_CLOSED);
    expect(accountProblem(e(403, 'invite_required'))).toBe(INVITE_NEEDED);
    expect(accountProblem(e(403, 'invite_invalid'))).toMatch(/cannot be used.*used up, expired or revoked/);
    expect(accountProblem(e(403, 'account_disabled'))).toMatch(/disabled/);
    expect(accountProblem(e(409, 'last_admin'))).toMatch(/only admin/);
    expect(accountProblem(e(409, 'own_account'))).toMatch(/own/);
    expect(accountProblem(e(403, 'admin_only'))).toMatch(/Only an admin/);
    expect(accountProblem(e(400, 'invalid_uses'))).toMatch(/1 to 1000/);
    expect(accountProblem(e(409, 'username_taken'))).toBe('server text for username_taken');
    expect(accountProblem('boom')).toBe('Something went wrong. Please try again.');
  });
});
