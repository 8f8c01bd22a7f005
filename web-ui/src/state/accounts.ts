//! What the screens say about accounts and the server's administration, as pure functions:
//! invite links and their state, the limits of a new invite, the names of admin actions,
//! and the refusals of sign-up, sign-in, account deletion and the admin routes in words a
//! person can act on. No state and no calls: the store (`admin.ts`) does those.

import { ApiError, errorMessage } from '../api/client';
import type { AdminAction, Invite, InviteState, User } from '../api/generated';
import { dateTime } from './format';
import { routeHash } from './router.svelte';

/** As the server checks them (`admin::MAX_INVITE_USES`, `MAX_INVITE_HOURS`, the default). */
export const MAX_INVITE_USES = 1000;
export const MAX_INVITE_HOURS = 24 * 365;
export const DEFAULT_INVITE_HOURS = 24 * 7;

/** The link that opens sign-up with `code` filled in: `ORIGIN/#/invite/CODE`, where ORIGIN
 *  is the server's public address (the page's origin in a browser, the chosen server in
 *  the desktop app). */
export function inviteLink(origin: string, code: string): string {
  return `${origin.replace(/\/+$/, '')}/${routeHash({ name: 'invite', code })}`;
}

/** The code in what was pasted into the invite field: a whole link, or the code itself
 *  (as the server reads it: what follows the last `/invite/`). */
export function inviteCodeOf(text: string): string {
  const t = text.trim();
  const at = t.lastIndexOf('/invite/');
  const code = at < 0 ? t : t.slice(at + '/invite/'.length);
  try {
    return decodeURIComponent(code);
  } catch {
    return code;
  }
}

/** Each state's label and Bootstrap badge (a state added on the Rust side and missing
 *  here fails to compile). */
export const INVITE_STATES: Readonly<Record<InviteState, { label: string; badge: string }>> = {
  active: { label: 'Active', badge: 'text-bg-success' },
  used_up: { label: 'Used up', badge: 'text-bg-secondary' },
  expired: { label: 'Expired', badge: 'text-bg-warning' },
  revoked: { label: 'Revoked', badge: 'text-bg-danger' },
};

/** "n / max". */
export function inviteUses(invite: Pick<Invite, 'uses' | 'max_uses'>): string {
  return `${invite.uses} / ${invite.max_uses}`;
}

/** How long from now until `ms` later, roughly: "5 min", "3 hours", "6 days". */
function span(ms: number): string {
  const mins = Math.max(1, Math.round(ms / 60_000));
  if (mins < 60) return `${mins} min`;
  const hours = Math.round(mins / 60);
  if (hours < 48) return hours === 1 ? '1 hour' : `${hours} hours`;
  const days = Math.round(hours / 24);
  return `${days} days`;
}

/** When an invite stops working, said from `now`: "expires in 7 days" or "expired Jan 5, 14:03". */
export function inviteExpiry(invite: Pick<Invite, 'expires_at'>, now = Date.now()): string {
  const at = Date.parse(invite.expires_at);
  if (Number.isNaN(at)) return '';
  return at > now ? `expires in ${span(at - now)}` : `expired ${dateTime(invite.expires_at)}`;
}

/** What is wrong with a new invite's numbers (null: nothing), before asking the server. */
export function inviteFormProblem(uses: number, hours: number): { field: 'uses' | 'hours'; message: string } | null {
  if (!Number.isInteger(uses) || uses < 1 || uses > MAX_INVITE_USES) return { field: 'uses', message: USES_PROBLEM };
  if (!Number.isInteger(hours) || hours < 1 || hours > MAX_INVITE_HOURS) return { field: 'hours', message: HOURS_PROBLEM };
  return null;
}
const USES_PROBLEM = `Uses must be a whole number from 1 to ${MAX_INVITE_USES}.`;
const HOURS_PROBLEM = `Hours must be a whole number from 1 to ${MAX_INVITE_HOURS} (a year).`;

const ACTIONS: Readonly<Record<string, string>> = {
  create_user: 'Created account',
  grant_admin: 'Made admin',
  revoke_admin: 'Removed admin',
  disable: 'Disabled',
  enable: 'Enabled',
  reset_password: 'Reset password',
  create_invite: 'Created invite',
  revoke_invite: 'Revoked invite',
};

/** An admin action's name for the log (an unknown one, from a newer server, in words). */
export function actionLabel(action: string): string {
  const known = ACTIONS[action];
  if (known) return known;
  const words = action.replaceAll('_', ' ').trim();
  return words ? words[0]!.toUpperCase() + words.slice(1) : 'Something';
}

/** An action's detail in words: `invite 3 for 2` → "Invite #3, for 2 accounts". */
export function actionDetail(action: Pick<AdminAction, 'action' | 'detail'>): string {
  const d = action.detail.trim();
  if (action.action === 'create_user' && d === 'admin') return 'As an admin';
  const made = /^invite (\d+) for (\d+)$/.exec(d);
  if (made) return `Invite #${made[1]}, for ${made[2]} ${made[2] === '1' ? 'account' : 'accounts'}`;
  const invite = /^invite (\d+)$/.exec(d);
  if (invite) return `Invite #${invite[1]}`;
  return d;
}

/** Who did it: a person, or the operator at the command line (or an account since gone). */
export function actorName(actor: Pick<User, 'display_name' | 'username'> | null): string {
  return actor ? actor.display_name || actor.username : 'Server operator (command line)';
}

export const REGISTRATION_CLOSED =
  "This server does not take sign-ups. Accounts are created by the server's admin: ask them for one.";
export const INVITE_NEEDED =
  'This server takes new accounts by invite only. Open the invite link you were sent, or paste it (or its code) here.';

/** The refusals of sign-up, sign-in, account deletion and the admin routes, in words a
 *  person can act on; anything else as the server said it. */
export function accountProblem(err: unknown): string {
  if (err instanceof ApiError) {
    switch (err.code) {
      case 'registration_closed':
        return REGISTRATION_CLOSED;
      case 'invite_required':
        return INVITE_NEEDED;
      case 'invite_invalid':
        return 'This invite cannot be used: it is unknown, used up, expired or revoked. Ask whoever sent it for a new one.';
      case 'account_disabled':
        return 'This account is disabled. Ask an admin of this server to enable it again.';
      case 'last_admin':
        return "You are this server's only admin. Make someone else an admin first (Server administration → Users), then delete your account.";
      case 'own_account':
        return 'You cannot remove your own admin role or disable your own account; another admin can.';
      case 'admin_only':
        return 'Only an admin of this server can do this.';
      case 'invalid_uses':
        return USES_PROBLEM;
      case 'invalid_expiry':
        return HOURS_PROBLEM;
    }
  }
  return errorMessage(err);
}
