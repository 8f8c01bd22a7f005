//! The seam between the screens and the server: two interfaces (`ApiClient` for REST,
//! `RealtimeClient` for the event stream) and the error type. Nothing above this file may
//! assume a browser: the desktop app supplies its own implementations that call its Rust
//! side. Screens never build URLs, read cookies or open sockets; they talk to the store,
//! which talks to these interfaces.

import type {
  AddMembersRequest,
  AdminAction,
  AdminUser,
  AdminUserQuery,
  AdminUserUpdate,
  AuthResponse,
  ClientEvent,
  Conversation,
  ConversationSettings,
  CreateConversationRequest,
  CreateInviteRequest,
  CreateUserRequest,
  DeleteAccountRequest,
  EditMessageRequest,
  HistoryQuery,
  Invite,
  LoginRequest,
  Me,
  Message,
  MessagePage,
  ReadState,
  RegisterRequest,
  SearchQuery,
  SearchResults,
  SendMessageRequest,
  ServerEvent,
  ServerInfo,
  UpdateConversationRequest,
  UpdateMeRequest,
  User,
  UserSearchQuery,
  UserWithPassword,
} from './generated';

/** Called with the fraction (0–1) of an upload sent so far. */
export type Progress = (fraction: number) => void;

/** Which server the app talks to, where that is a choice (the desktop app; a browser
 *  page always talks to the server it came from). */
export interface ServerChoice {
  /** The chosen server's address, or null before the first choice. */
  get(): Promise<string | null>;
  /** Checks that a ChatApp server answers at `url`, keeps it, and returns it normalized.
   *  No scheme means https://; a redirect is refused with a message naming its target. */
  set(url: string): Promise<string>;
  /** Whether the chosen server is reached with encryption; `warning` is shown on the
   *  sign-in screen when the password would cross the network readable. */
  security(): Promise<ServerSecurity | null>;
}

export interface ServerSecurity {
  transport: 'encrypted' | 'local_cleartext' | 'cleartext';
  warning: string | null;
}

export interface ApiClient {
  /** Present where the person chooses the server (see `ServerChoice`). */
  readonly server?: ServerChoice;
  /** Who may sign up on the server (`GET /api/server`): works signed out. */
  serverInfo(): Promise<ServerInfo>;
  register(input: RegisterRequest): Promise<AuthResponse>;
  login(input: LoginRequest): Promise<AuthResponse>;
  /** Ends the session on the server. Rejects when the server did not confirm it (then the
   *  session still works here: the cookie or the stored token is kept). */
  logout(): Promise<void>;
  /** Present where this computer holds the session itself (the desktop's keychain token):
   *  forgets it and stops the live connection without asking the server, for when the
   *  server cannot be reached. The session stays valid on the server until it expires or
   *  a password change ends it. */
  forgetSession?(): Promise<void>;
  me(): Promise<Me>;
  updateMe(input: UpdateMeRequest): Promise<Me>;
  uploadAvatar(file: Blob, onProgress?: Progress): Promise<Me>;
  deleteAvatar(): Promise<Me>;
  /** Deletes the signed-in account (its password confirms it). The session ends with it:
   *  the browser's cookies expire, the desktop forgets its keychain token. */
  deleteAccount(input: DeleteAccountRequest): Promise<void>;
  searchUsers(query: UserSearchQuery): Promise<User[]>;
  user(id: number): Promise<User>;
  conversations(): Promise<Conversation[]>;
  conversation(id: number): Promise<Conversation>;
  createConversation(input: CreateConversationRequest): Promise<Conversation>;
  updateConversation(id: number, input: UpdateConversationRequest): Promise<Conversation>;
  addMembers(id: number, input: AddMembersRequest): Promise<Conversation>;
  removeMember(id: number, userId: number): Promise<void>;
  history(id: number, query: HistoryQuery): Promise<MessagePage>;
  sendMessage(id: number, input: SendMessageRequest): Promise<Message>;
  /** A voice message; `replyToId` makes it a reply to a message of the same conversation. */
  sendVoice(id: number, file: Blob, clientId: string, replyToId: number | null, onProgress?: Progress): Promise<Message>;
  /** A photo (png, jpeg, gif or webp, decided by its bytes; at most 16 MB) with a caption
   *  (may be empty); a retry with the same `clientId` answers with the message stored the
   *  first time. `replyToId` as for `sendVoice`. */
  sendPhoto(id: number, file: Blob, caption: string, clientId: string, replyToId: number | null, onProgress?: Progress): Promise<Message>;
  /** Present where the platform has its own file dialog (the desktop app): the image the
   *  person chose, or null when they cancelled. Elsewhere the screens use a file input. */
  pickPhoto?(): Promise<File | null>;
  markRead(id: number, seq: number): Promise<ReadState>;
  /** Replaces the text of your own text message, or the caption of your own photo. */
  editMessage(id: number, seq: number, input: EditMessageRequest): Promise<Message>;
  /** Deletes a message for everyone (a tombstone stays). */
  deleteMessage(id: number, seq: number): Promise<Message>;
  /** Adds (`on`) or takes back your reaction with one emoji. */
  react(id: number, seq: number, emoji: string, on: boolean): Promise<Message>;
  /** Says you played someone else's voice message (its `played_by` gains you; marking it
   *  again changes nothing). Refused for your own (`own_message`), for a text
   *  (`not_voice`) and for a deleted one (`message_deleted`). */
  markPlayed(id: number, seq: number): Promise<Message>;
  /** Your own settings of a conversation (muted). */
  updateSettings(id: number, input: ConversationSettings): Promise<Conversation>;
  /** Searches your conversations' messages, newest first. */
  searchMessages(query: SearchQuery): Promise<SearchResults>;
  // Admins only (everyone else gets 403 `admin_only`):
  /** Accounts whose username, display name or email starts with `q` (all without it). */
  adminUsers(query: AdminUserQuery): Promise<AdminUser[]>;
  /** Creates an account; its generated password comes back this once. */
  adminCreateUser(input: CreateUserRequest): Promise<UserWithPassword>;
  /** Grants or revokes admin, disables or re-enables an account (never your own). */
  adminUpdateUser(id: number, input: AdminUserUpdate): Promise<AdminUser>;
  /** Sets a new generated password (returned this once); ends that person's sessions. */
  adminResetPassword(id: number): Promise<UserWithPassword>;
  /** Invites, newest first. */
  invites(): Promise<Invite[]>;
  createInvite(input: CreateInviteRequest): Promise<Invite>;
  /** Revokes an invite; answers with it, revoked. */
  revokeInvite(id: number): Promise<Invite>;
  /** The record of admin actions, newest first. */
  adminActions(): Promise<AdminAction[]>;
  /** Something an `<img>` or `<audio>` can load for a server file path (`/api/files/…`). */
  mediaUrl(path: string): string;
  /** Where `<audio>` cannot stream `mediaUrl` (the desktop's WebKitGTK): the whole file
   *  as a `blob:` URL of type `mime`, fetched when asked. Absent: `mediaUrl` is used. */
  audioUrl?(path: string, mime: string): Promise<string>;
}

/** Where the event stream stands. `reconnecting` carries when the next attempt starts. */
export type ConnectionState =
  | { kind: 'connecting' }
  | { kind: 'syncing' }
  | { kind: 'live' }
  | { kind: 'reconnecting'; attempt: number; retryAt: number }
  /** The session was signed out elsewhere or revoked (e.g. a password change): sign in again. */
  | { kind: 'ended' }
  | { kind: 'stopped' };

export interface RealtimeClient {
  /** Starts (and keeps) the connection. On every (re)connect it first sends
   *  `resume {cursors: getCursors(), changes: getChanges()}`, so live events start after
   *  the missed ones (messages after the cursors, then changes after the change cursors). */
  start(getCursors: () => Record<string, number>, getChanges?: () => Record<string, number>): void;
  /** Ends the connection for good (sign-out). */
  stop(): void;
  /** Sends a frame if the connection is open; false when it is not (the caller keeps it). */
  send(event: ClientEvent): boolean;
  onEvent(listener: (event: ServerEvent) => void): () => void;
  onState(listener: (state: ConnectionState) => void): () => void;
}

/** A failed call: the server's `{"error":{"code","message"}}` plus the HTTP status.
 *  status 0 means the request never got an answer (network down, server gone).
 *  `retryAfter` (seconds) is set for 429 when the server said how long to wait. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, retryAfter: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Text a screen can show for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error && err.message) return err.message;
  return 'Something went wrong. Please try again.';
}
