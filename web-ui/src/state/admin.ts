//! The server's administration as the admin view uses it: accounts, invites and the log,
//! through `ApiClient` (the screens never see it). It holds no state: the view keeps what
//! it shows. The store owns the one instance (`store.admin`) and tells it the server's
//! public origin (for invite links) and what to do when the server says this account is
//! no longer an admin (`admin_only`): read the account again, so the view goes away.

import { ApiError, type ApiClient } from '../api/client';
import type { AdminAction, AdminUser, CreateUserRequest, Invite, UserWithPassword } from '../api/generated';
import { inviteLink } from './accounts';

export interface AdminHooks {
  /** The server's public origin: the page's in a browser, the chosen server's on the desktop. */
  origin: () => string;
  /** The server answered `admin_only`: this account lost its admin role meanwhile. */
  notAdmin: () => void;
}

/** How many accounts the list asks for (the server's default). */
const USERS_LIMIT = 100;

export class ServerAdmin {
  readonly #api: ApiClient;
  readonly #hooks: AdminHooks;

  constructor(api: ApiClient, hooks: AdminHooks) {
    this.#api = api;
    this.#hooks = hooks;
  }

  /** Accounts whose username, display name or email starts with `query` (all for ""). */
  users(query: string): Promise<AdminUser[]> {
    const q = query.trim();
    return this.#call(() => this.#api.adminUsers(q ? { q, limit: USERS_LIMIT } : { limit: USERS_LIMIT }));
  }

  /** A new account with a generated password (shown once). */
  createUser(input: CreateUserRequest): Promise<UserWithPassword> {
    return this.#call(() => this.#api.adminCreateUser(input));
  }

  setAdmin(id: number, isAdmin: boolean): Promise<AdminUser> {
    return this.#call(() => this.#api.adminUpdateUser(id, { is_admin: isAdmin }));
  }

  /** Disabling ends every session of the account at once. */
  setDisabled(id: number, disabled: boolean): Promise<AdminUser> {
    return this.#call(() => this.#api.adminUpdateUser(id, { disabled }));
  }

  /** A new generated password (shown once); the account's sessions end. */
  resetPassword(id: number): Promise<UserWithPassword> {
    return this.#call(() => this.#api.adminResetPassword(id));
  }

  invites(): Promise<Invite[]> {
    return this.#call(() => this.#api.invites());
  }

  createInvite(maxUses: number, expiresInHours: number): Promise<Invite> {
    return this.#call(() => this.#api.createInvite({ max_uses: maxUses, expires_in_hours: expiresInHours }));
  }

  revokeInvite(id: number): Promise<Invite> {
    return this.#call(() => this.#api.revokeInvite(id));
  }

  actions(): Promise<AdminAction[]> {
    return this.#call(() => this.#api.adminActions());
  }

  /** The link that opens sign-up on this server with `code` filled in. */
  inviteLink(code: string): string {
    return inviteLink(this.#hooks.origin(), code);
  }

  async #call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'admin_only') this.#hooks.notAdmin();
      throw err;
    }
  }
}
