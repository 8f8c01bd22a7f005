//! The one store of the client: the server chosen (and who may sign up there), who is
//! signed in (and signing out, or deleting the account), the
//! conversations, their messages, the people (presence, names, avatars, names told apart),
//! typing, read positions, the connection state, the outbox, the photos being uploaded and
//! the destination of the link pointed at. The realtime client feeds it; screens read it through getters (its
//! state is private) and change it only by calling its methods, handed the one instance
//! through Svelte context (`context.ts`). It talks to the server only through `ApiClient`
//! and `RealtimeClient`, which screens never see, so it runs the same in the browser, in the
//! desktop app and in unit tests.

import {
  ApiError,
  errorMessage,
  type ApiClient,
  type ConnectionState,
  type Progress,
  type RealtimeClient,
  type ServerSecurity,
} from '../api/client';
import type { ClientEvent, Conversation, LoginRequest, Me, Message, RegisterRequest, SearchResults, ServerEvent, ServerInfo, User } from '../api/generated';
import { newClientId, Outbox, type KeyValueStorage, type OutboxEntry } from '../api/outbox';
import type { RecorderFactory, VoiceRecorder } from '../api/recorder';
import { ServerAdmin } from './admin';
import { contiguousTop, firstGap, quoteOf, upsert, upsertAll } from './timeline';

const PAGE = 50;
const TYPING_MS = 5000;
const TYPING_SEND_EVERY_MS = 3000;
const RESEND_AFTER_MS = 10_000;
/** How long a `played` frame may stay unanswered (no change back with me among the
 *  players) before the REST call says it instead. */
const PLAYED_ANSWER_MS = 10_000;
/** Refusals that pass by themselves: the message is sent again later, not marked failed. */
const TRANSIENT = new Set(['rate_limited', 'storage_full', 'internal']);

export interface Timeline {
  items: Message[];
  /** Older messages exist on the server before items[0]. */
  hasMore: boolean;
  loadingOlder: boolean;
  /** The first unread seq when the conversation was opened ("new messages" divider). */
  firstUnread: number | null;
}

export interface StoreHooks {
  /** A message from someone else arrived live (for notifications). */
  onIncoming?: (message: Message, conversation: Conversation | undefined) => void;
  now?: () => number;
  /** Makes the voice recorder of this platform. */
  recorder?: RecorderFactory;
  /** The unread total changed (window title, tray). */
  onUnread?: (total: number) => void;
  /** Show a link's destination while it is hovered or focused (the desktop window has no
   *  status bar; a browser shows it itself). A touch long-press shows it everywhere. */
  linkTargetOnHover?: boolean;
}

/** A photo on its way to the server (in memory only: a file does not fit the outbox's
 *  storage, so a reload forgets it). `failed` waits for a retry (same `client_id`: never
 *  stored twice) or a discard; `retriable` says whether trying again can help (no for a
 *  refusal of the file itself: too large, not an image). */
export interface PhotoUpload {
  client_id: string;
  conversation_id: number;
  file: Blob;
  caption: string;
  reply_to_id: number | null;
  state: 'uploading' | 'failed';
  /** 0–1 */
  progress: number;
  error: string | null;
  retriable: boolean;
}

/** What sign-out does with messages not sent yet: kept in this computer's storage for the
 *  next sign-in of this account, or removed with the session. */
export interface SignOutChoice {
  keepUnsent: boolean;
}

/** Where start-up lands: choosing a server (desktop, first start), signing in, or the app. */
export type StartPhase = 'server' | 'signed-out' | 'signed-in';

export class ChatStore {
  // ---- state: private, read through the getters below; changed only by methods ------

  #me = $state<Me | null>(null);
  #connection = $state<ConnectionState>({ kind: 'stopped' });
  /** Everyone we know, by id: the one place presence, names and avatars are kept current. */
  #users = $state<Record<number, User>>({});
  #conversations = $state<Record<number, Conversation>>({});
  #timelines = $state<Record<number, Timeline>>({});
  /** conversation → user → until when (ms) they count as typing */
  #typing = $state<Record<number, Record<number, number>>>({});
  /** conversation → user → highest seq they have read (seen live) */
  #reads = $state<Record<number, Record<number, number>>>({});
  #outbox = $state<OutboxEntry[]>([]);
  /** Photos being uploaded or failed, oldest first (replaced, never changed in place). */
  #uploads = $state.raw<PhotoUpload[]>([]);
  /** Set when we were removed from the open conversation. */
  #notice = $state<string | null>(null);
  /** A sign-out is waiting for the server (its own session end is expected, not news). */
  #signingOut = $state(false);
  /** The destination of the link being hovered, focused or long-pressed (see `StoreHooks`). */
  #linkTarget = $state<string | null>(null);
  /** The chosen server's address where the platform lets the person choose (desktop). */
  #serverAddress = $state<string | null>(null);

  // ---- derived ------------------------------------------------------------------------

  /** Unread messages over every conversation; a muted one counts only its mentions. */
  #unreadTotal = $derived(
    Object.values(this.#conversations).reduce((n, c) => n + Math.max(0, c.muted ? c.unread_mentions : c.unread_count), 0),
  );
  /** Newest activity first. */
  #sortedConversations = $derived.by(() =>
    Object.values(this.#conversations).sort((a, b) => Date.parse(b.last_activity_at) - Date.parse(a.last_activity_at) || b.id - a.id),
  );
  /** Messages typed but not sent (pending or failed), which sign-out asks about. */
  #unsentCount = $derived(this.#outbox.length);
  /** conversation id → the last seq we hold without a hole (or know of, when not opened). */
  #cursors = $derived.by(() => {
    const out: Record<string, number> = {};
    for (const c of Object.values(this.#conversations)) {
      const t = this.#timelines[c.id];
      out[String(c.id)] = t && t.items.length > 0 ? contiguousTop(t.items) : c.last_seq;
    }
    return out;
  });

  /** conversation id → the last change number we hold every change up to (resume's
   *  `changes`): live `message_updated` events come in that order. */
  #changes = $derived.by(() => {
    const out: Record<string, number> = {};
    for (const c of Object.values(this.#conversations)) out[String(c.id)] = c.last_change;
    return out;
  });

  // ---- the rest of the inside --------------------------------------------------------

  readonly #api: ApiClient;
  readonly #realtime: RealtimeClient;
  readonly #storage: KeyValueStorage;
  readonly #hooks: StoreHooks;
  readonly #admin: ServerAdmin;
  #box: Outbox | null = null;
  #unsubscribe: (() => void)[] = [];
  #gapFetches = new Set<string>();
  #lastTypingSent = new Map<number, number>();
  #sentAt = new Map<string, number>();
  #resendTimer: ReturnType<typeof setInterval> | null = null;
  /** The conversation in view to its end on a visible page (see `watch`). */
  #watching: number | null = null;
  /** Voice messages (by id) this page said I played: each is said once (see `startedPlaying`). */
  #played = new Set<number>();
  /** `played` frames sent and not answered yet, by message id: the REST call follows if the
   *  connection drops or no answer comes in time. */
  #playedUnanswered = new Map<number, { conversationId: number; seq: number; timer: ReturnType<typeof setTimeout> }>();

  constructor(api: ApiClient, realtime: RealtimeClient, storage: KeyValueStorage, hooks: StoreHooks = {}) {
    this.#api = api;
    this.#realtime = realtime;
    this.#storage = storage;
    this.#hooks = hooks;
    this.#admin = new ServerAdmin(api, {
      origin: () => this.#serverAddress ?? (typeof location === 'undefined' ? '' : location.origin),
      notAdmin: () => void this.refreshMe(),
    });
  }

  get me(): Me | null {
    return this.#me;
  }
  get connection(): ConnectionState {
    return this.#connection;
  }
  get users(): Readonly<Record<number, User>> {
    return this.#users;
  }
  get conversations(): Readonly<Record<number, Conversation>> {
    return this.#conversations;
  }
  get timelines(): Readonly<Record<number, Timeline>> {
    return this.#timelines;
  }
  get typing(): Readonly<Record<number, Readonly<Record<number, number>>>> {
    return this.#typing;
  }
  get reads(): Readonly<Record<number, Readonly<Record<number, number>>>> {
    return this.#reads;
  }
  get outbox(): readonly OutboxEntry[] {
    return this.#outbox;
  }
  get uploads(): readonly PhotoUpload[] {
    return this.#uploads;
  }
  get notice(): string | null {
    return this.#notice;
  }
  get signingOut(): boolean {
    return this.#signingOut;
  }
  get linkTarget(): string | null {
    return this.#linkTarget;
  }
  get serverAddress(): string | null {
    return this.#serverAddress;
  }
  get unreadTotal(): number {
    return this.#unreadTotal;
  }
  get sortedConversations(): readonly Conversation[] {
    return this.#sortedConversations;
  }
  get unsentCount(): number {
    return this.#unsentCount;
  }
  /** What resume sends: see `#cursors`. */
  get cursors(): Readonly<Record<string, number>> {
    return this.#cursors;
  }

  #now(): number {
    return this.#hooks.now ? this.#hooks.now() : Date.now();
  }

  // ---- start-up and the server ---------------------------------------------------

  /** Whether this platform lets the person choose the server (the desktop app). */
  get choosesServer(): boolean {
    return this.#api.server !== undefined;
  }

  /** On start (and after choosing a server): which server, then whether a session is still
   *  open there, and if so loads the list and goes live. Throws what the server answered
   *  when it was neither the account nor a 401. */
  async start(): Promise<StartPhase> {
    try {
      const server = this.#api.server;
      if (server) {
        this.#serverAddress = await server.get();
        if (this.#serverAddress === null) return 'server';
      }
      await this.#begin(await this.#api.me());
      return 'signed-in';
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return 'signed-out';
      throw err;
    }
  }

  /** Checks that a ChatApp server answers at `url` and keeps it (see `ServerChoice.set`). */
  async chooseServer(url: string): Promise<string> {
    const server = this.#api.server;
    if (!server) throw new Error('The server cannot be changed here.');
    this.#serverAddress = await server.set(url);
    return this.#serverAddress;
  }

  /** Whether the chosen server is reached with encryption (null where there is no choice). */
  async serverSecurity(): Promise<ServerSecurity | null> {
    return this.#api.server ? this.#api.server.security() : null;
  }

  /** Who may sign up on the server (works signed out). */
  serverInfo(): Promise<ServerInfo> {
    return this.#api.serverInfo();
  }

  /** The server's administration (accounts, invites, the log), for the admin view; the
   *  server refuses it (`admin_only`) unless `me.is_admin`. */
  get admin(): ServerAdmin {
    return this.#admin;
  }

  /** Reads the account again (its admin role may have changed). */
  async refreshMe(): Promise<void> {
    try {
      const me = await this.#api.me();
      if (this.#me?.id === me.id) this.#setMe(me);
    } catch {
      // signed out meanwhile, or offline: the connection's state says so
    }
  }

  /** Whether the server says the session has ended (401). False when it is still valid or
   *  the server could not be asked. */
  async sessionEnded(): Promise<boolean> {
    try {
      await this.#api.me();
      return false;
    } catch (err) {
      return err instanceof ApiError && err.status === 401;
    }
  }

  // ---- session -------------------------------------------------------------------

  async signIn(input: LoginRequest): Promise<void> {
    await this.#begin((await this.#api.login(input)).user);
  }

  async register(input: RegisterRequest): Promise<void> {
    await this.#begin((await this.#api.register(input)).user);
  }

  /** After sign-in (or on start with a valid session): load the list, then go live. */
  async #begin(me: Me): Promise<void> {
    this.#setMe(me);
    this.#box = new Outbox(this.#storage, `chatapp.outbox.${me.id}`);
    this.#outbox = this.#box.all().slice();
    await this.refreshConversations().catch(() => {
      // offline at start: the realtime client retries, and the list is loaded on `synced`
    });
    this.#unsubscribe.push(this.#realtime.onEvent((e) => this.#handle(e)));
    this.#unsubscribe.push(
      this.#realtime.onState((s) => {
        this.#connection = s;
        if (s.kind !== 'live') this.#playedOverRest();
      }),
    );
    this.#realtime.start(
      () => this.cursors,
      () => this.#changes,
    );
    this.#resendTimer = setInterval(() => this.#resendStale(), RESEND_AFTER_MS / 2);
  }

  /** Stops everything and forgets the account's data (the outbox stays in storage: the
   *  session ended elsewhere, and what was typed is sent after the next sign-in). */
  end(): void {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    this.#realtime.stop();
    if (this.#resendTimer !== null) clearInterval(this.#resendTimer);
    this.#resendTimer = null;
    for (const w of this.#playedUnanswered.values()) clearTimeout(w.timer);
    this.#playedUnanswered.clear();
    this.#played.clear();
    this.#me = null;
    this.#users = {};
    this.#conversations = {};
    this.#timelines = {};
    this.#typing = {};
    this.#reads = {};
    this.#outbox = [];
    this.#uploads = [];
    this.#box = null;
    this.#connection = { kind: 'stopped' };
  }

  /** Ends the session on the server, then forgets it here. Local state goes only once the
   *  server confirmed (or answered 401: it had already ended); otherwise this throws and
   *  everything stays signed in, since the session (the browser's cookie, the desktop's
   *  keychain token) would still open the account after a reload. */
  async signOut(choice: SignOutChoice): Promise<void> {
    this.#signingOut = true;
    try {
      await this.#api.logout();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) throw err;
      // Already ended on the server: drop what this computer still holds of it.
      await this.#api.forgetSession?.().catch(() => {});
    } finally {
      this.#signingOut = false;
    }
    this.#forget(choice);
  }

  /** Whether `signOutHereOnly` is available (the desktop, which holds the session itself). */
  get canSignOutHereOnly(): boolean {
    return this.#api.forgetSession !== undefined;
  }

  /** Where the platform allows it (desktop): forgets the session on this computer only,
   *  without the server (which could not be reached), so it stays valid there until it
   *  expires or a password change ends it. */
  async signOutHereOnly(choice: SignOutChoice): Promise<void> {
    if (!this.#api.forgetSession) throw new Error('Signing out on this computer only is not available here.');
    await this.#api.forgetSession();
    this.#forget(choice);
  }

  /** Deletes the account (the password confirms it), then forgets it here as sign-out
   *  does, unsent messages included. Its own session's end (the socket closes with 4001)
   *  is expected meanwhile, as during a sign-out. Throws, changing nothing, when the server
   *  refused (a wrong password, `last_admin`). */
  async deleteAccount(password: string): Promise<void> {
    this.#signingOut = true;
    try {
      await this.#api.deleteAccount({ password });
    } finally {
      this.#signingOut = false;
    }
    this.#forget({ keepUnsent: false });
  }

  #forget(choice: SignOutChoice): void {
    if (!choice.keepUnsent) this.#box?.clear();
    this.end();
  }

  #setMe(me: Me): void {
    this.#me = me;
    this.#putUser({
      id: me.id,
      username: me.username,
      display_name: me.display_name,
      avatar_url: me.avatar_url,
      avatar_small_url: me.avatar_small_url ?? null,
      online: me.online,
      last_seen: me.last_seen,
      name_key: me.name_key,
      deleted: false,
    });
  }

  #putUser(u: User): void {
    this.#users[u.id] = u;
  }

  // ---- people and media ----------------------------------------------------------

  /** People whose name or username matches `query`. */
  searchUsers(query: string, limit: number): Promise<User[]> {
    return this.#api.searchUsers({ q: query, limit });
  }

  /** Something an `<img>` or `<audio>` can load for a server file path (`/api/files/…`). */
  mediaUrl(path: string): string {
    return this.#api.mediaUrl(path);
  }

  /** For a client whose `<audio>` cannot stream `mediaUrl` (the desktop): loads a voice
   *  file when it is first played, as a `blob:` URL. Absent: `mediaUrl` serves. */
  get audioLoader(): ((path: string, mime: string) => Promise<string>) | undefined {
    return this.#api.audioUrl?.bind(this.#api);
  }

  // ---- conversations -------------------------------------------------------------

  async refreshConversations(): Promise<void> {
    const list = await this.#api.conversations();
    const next: Record<number, Conversation> = {};
    for (const c of list) {
      next[c.id] = c;
      for (const m of c.members) this.#putUser(m);
    }
    this.#conversations = next;
    for (const c of list) this.#noteReadPositions(c);
    // Anything newer than what an open conversation holds: fetch it (gap filling).
    for (const c of list) {
      const t = this.#timelines[c.id];
      if (t && t.items.length > 0 && c.last_seq > contiguousTop(t.items)) void this.#fillUpTo(c.id, c.last_seq);
    }
  }

  /** A recorder for one voice message (the platform's: browser or native). */
  newRecorder(): VoiceRecorder {
    if (!this.#hooks.recorder) throw new Error('Recording is not available here.');
    return this.#hooks.recorder();
  }

  /** Screens call this when the unread total they show changes. */
  reportUnread(total: number): void {
    this.#hooks.onUnread?.(total);
  }

  /** Hides the notice (removed from a conversation). */
  dismissNotice(): void {
    this.#notice = null;
  }

  #upsertConversation(c: Conversation): void {
    for (const m of c.members) this.#putUser(m);
    const me = this.#me;
    if (me && !c.members.some((m) => m.id === me.id)) {
      // The title isolated, so its own bidi text cannot reorder the sentence.
      if (this.#conversations[c.id]) this.#notice = `You are no longer a member of “${c.title ? isolate(c.title) : 'this group'}”.`;
      delete this.#conversations[c.id];
      delete this.#timelines[c.id];
      return;
    }
    this.#conversations[c.id] = c;
    this.#noteReadPositions(c);
  }

  /** Read positions as the server knows them (live `read` events move them on). */
  #noteReadPositions(c: Conversation): void {
    for (const r of c.read_positions) this.#noteRead(c.id, r.user_id, r.last_read_seq);
  }

  async startDirect(userId: number): Promise<Conversation> {
    const c = await this.#api.createConversation({ kind: 'direct', user_id: userId });
    this.#upsertConversation(c);
    return c;
  }

  async createGroup(title: string, memberIds: number[]): Promise<Conversation> {
    const c = await this.#api.createConversation({ kind: 'group', title, member_ids: memberIds });
    this.#upsertConversation(c);
    return c;
  }

  async renameGroup(id: number, title: string): Promise<void> {
    this.#upsertConversation(await this.#api.updateConversation(id, { title }));
  }

  async addMembers(id: number, userIds: number[]): Promise<void> {
    this.#upsertConversation(await this.#api.addMembers(id, { user_ids: userIds }));
  }

  async removeMember(id: number, userId: number): Promise<void> {
    await this.#api.removeMember(id, userId);
    if (userId === this.#me?.id) {
      delete this.#conversations[id];
      delete this.#timelines[id];
    } else {
      this.#upsertConversation(await this.#api.conversation(id));
    }
  }

  // ---- history -------------------------------------------------------------------

  /** Loads the newest page the first time a conversation is opened. */
  async open(id: number): Promise<void> {
    if (this.#timelines[id]) return;
    const c = this.#conversations[id];
    const firstUnread = c && c.unread_count > 0 ? c.last_read_seq + 1 : null;
    const page = await this.#api.history(id, { limit: PAGE });
    const existing = this.#timelines[id] as Timeline | undefined;
    const items = upsertAll(existing?.items ?? [], page.messages);
    this.#timelines[id] = { items, hasMore: page.has_more, loadingOlder: false, firstUnread };
    const last = this.#conversations[id]?.last_seq ?? 0;
    if (last > contiguousTop(items)) void this.#fillUpTo(id, last);
  }

  /** Infinite scroll back: the page before the oldest message held. */
  async loadOlder(id: number): Promise<void> {
    const t = this.#timelines[id];
    if (!t || !t.hasMore || t.loadingOlder || t.items.length === 0) return;
    t.loadingOlder = true;
    try {
      const page = await this.#api.history(id, { before_seq: t.items[0]!.seq, limit: PAGE });
      const cur = this.#timelines[id];
      if (!cur) return;
      cur.items = upsertAll(cur.items, page.messages);
      cur.hasMore = page.has_more;
    } finally {
      const cur = this.#timelines[id];
      if (cur) cur.loadingOlder = false;
    }
  }

  /** Fetches the missing seqs between what we hold and `upTo`, each range once at a time. */
  async #fillUpTo(id: number, upTo: number): Promise<void> {
    for (let guard = 0; guard < 100; guard++) {
      const t = this.#timelines[id];
      if (!t) return;
      const gap = firstGap(t.items);
      const top = contiguousTop(t.items);
      const range = gap ?? (upTo > top ? { from: top + 1, to: upTo } : null);
      if (!range) return;
      const key = `${id}:${range.from}`;
      if (this.#gapFetches.has(key)) return;
      this.#gapFetches.add(key);
      try {
        const limit = Math.min(100, range.to - range.from + 1);
        const page = await this.#api.history(id, { before_seq: range.from + limit, limit });
        const cur = this.#timelines[id];
        if (!cur) return;
        cur.items = upsertAll(cur.items, page.messages);
        if (page.messages.length === 0) return;
      } catch {
        return;
      } finally {
        this.#gapFetches.delete(key);
      }
    }
  }

  // ---- events --------------------------------------------------------------------

  /** One frame of the event stream. Every type of the generated `ServerEvent` union has its
   *  case: a type added on the Rust side and not handled here fails to compile (see
   *  `exhaustive.check.ts`) instead of being dropped without a word. */
  #handle(e: ServerEvent): void {
    switch (e.type) {
      case 'hello':
        this.#setMe(e.user);
        break;
      case 'message':
        this.#receive(e.message, true);
        break;
      case 'ack':
        this.#box?.acked(e.client_id);
        this.#sentAt.delete(e.client_id);
        this.#syncOutbox();
        this.#receive(e.message, false);
        break;
      case 'synced':
        void this.refreshConversations().catch(() => {});
        this.#flushOutbox();
        break;
      case 'presence': {
        const u = this.#users[e.user_id];
        if (u) this.#users[e.user_id] = { ...u, online: e.online, last_seen: e.last_seen ?? u.last_seen };
        break;
      }
      case 'typing': {
        const forConv = (this.#typing[e.conversation_id] ??= {});
        forConv[e.user_id] = this.#now() + TYPING_MS;
        break;
      }
      case 'read':
        this.#noteRead(e.conversation_id, e.user_id, e.seq);
        break;
      case 'user_updated':
        this.#putUser(e.user);
        if (this.#me && e.user.id === this.#me.id) {
          this.#me = {
            ...this.#me,
            display_name: e.user.display_name,
            name_key: e.user.name_key,
            avatar_url: e.user.avatar_url,
            avatar_small_url: e.user.avatar_small_url ?? null,
          };
        }
        break;
      case 'conversation':
        this.#upsertConversation(e.conversation);
        break;
      // A play is a change like any other (same change numbers, and on resume it comes
      // as `message_updated`); `user_id` is who played it, also in `message.played_by`.
      case 'message_updated':
      case 'played':
        this.#changed(e.message);
        break;
      case 'error':
        if (e.client_id) {
          if (TRANSIENT.has(e.code)) {
            this.#sentAt.set(e.client_id, 0); // resend on the next sweep
          } else {
            this.#box?.fail(e.client_id, e.message);
            this.#syncOutbox();
          }
        }
        break;
      case 'pong':
        break;
      default: {
        // Unreachable while every type has its case above. At run time, a type this build
        // does not know (a newer server) is ignored.
        const _exhaustive: never = e;
        void _exhaustive;
      }
    }
  }

  #receive(m: Message, live: boolean): void {
    const c = this.#conversations[m.conversation_id];
    const mine = m.sender_id === this.#me?.id;
    if (c) {
      if (m.seq > c.last_seq) {
        c.last_seq = m.seq;
        c.last_message = m;
        c.last_activity_at = m.created_at;
        // In view (see `watch`): read as it arrives, never counted unread. Counting it and
        // then taking it back after the render cost a second render per message (badge,
        // window title, list) and a forced layout between the two.
        if (!mine && m.seq > c.last_read_seq && !(live && this.#watching === m.conversation_id)) {
          c.unread_count += 1;
          if (this.#mentionsMe(m)) c.unread_mentions += 1;
        }
        if (mine) {
          c.last_read_seq = Math.max(c.last_read_seq, m.seq);
          c.unread_count = 0;
          c.unread_mentions = 0;
        }
      }
    } else if (live) {
      // A conversation we do not know yet (created while we looked away): fetch it.
      void this.#api.conversation(m.conversation_id).then((conv) => this.#upsertConversation(conv), () => {});
    }
    // My photo, delivered before the answer to its upload: the upload is done.
    if (mine && m.client_id !== null && this.#uploads.some((u) => u.client_id === m.client_id)) {
      this.#uploads = this.#uploads.filter((u) => u.client_id !== m.client_id);
    }
    const typers = this.#typing[m.conversation_id];
    if (typers) delete typers[m.sender_id];
    const t = this.#timelines[m.conversation_id];
    if (t) {
      const { items, added } = upsert(t.items, m);
      t.items = items;
      if (added && firstGap(items)) void this.#fillUpTo(m.conversation_id, m.seq);
      if (added && live && !mine && this.#notifies(m, c)) this.#hooks.onIncoming?.(m, c);
      if (added && live && !mine && this.#watching === m.conversation_id) this.markRead(m.conversation_id);
    } else if (live && !mine && this.#notifies(m, c)) {
      this.#hooks.onIncoming?.(m, c);
    }
  }

  /** Whether `m` mentions me. */
  #mentionsMe(m: Message): boolean {
    return this.#me !== null && m.mentions.includes(this.#me.id);
  }

  /** A muted conversation notifies only of mentions. */
  #notifies(m: Message, c: Conversation | undefined): boolean {
    return !c?.muted || this.#mentionsMe(m);
  }

  /** A message we may hold changed (edited, deleted, reacted to): replaced where it is,
   *  never by an older state, and the replies quoting it follow. */
  #changed(m: Message): void {
    this.#playedAnswered(m);
    const c = this.#conversations[m.conversation_id];
    if (c) {
      c.last_change = Math.max(c.last_change, m.rev);
      if (c.last_message?.seq === m.seq) c.last_message = m;
    }
    const t = this.#timelines[m.conversation_id];
    if (!t) return;
    const held = t.items.find((x) => x.seq === m.seq);
    if (held && held.rev > m.rev) return;
    let items = held ? upsert(t.items, m).items : t.items;
    if (items.some((x) => x.reply_to?.id === m.id)) {
      items = items.map((x) => (x.reply_to?.id === m.id ? { ...x, reply_to: quoteOf(m) } : x));
    }
    t.items = items;
  }

  #noteRead(conversationId: number, userId: number, seq: number): void {
    const forConv = (this.#reads[conversationId] ??= {});
    forConv[userId] = Math.max(forConv[userId] ?? 0, seq);
    const c = this.#conversations[conversationId];
    if (c && userId === this.#me?.id && seq > c.last_read_seq) {
      c.last_read_seq = seq;
      c.unread_count = Math.max(0, c.last_seq - seq);
    }
  }

  typingNames(conversationId: number): string[] {
    const now = this.#now();
    const forConv = this.#typing[conversationId] ?? {};
    return Object.entries(forConv)
      .filter(([uid, until]) => until > now && Number(uid) !== this.#me?.id)
      .map(([uid]) => this.memberLabel(conversationId, Number(uid)));
  }

  /** How a person is named in a conversation: their display name, with `(@username)`
   *  added when another member (me included) has a name that looks the same, so that
   *  nobody can pass for someone else there by copying their name. The name is then
   *  isolated (FSI … PDI) so that right-to-left text in it cannot move the username. A
   *  deleted account is "Deleted user" alone (its username is not shown); someone who
   *  calls themselves that is shown with their username. */
  memberLabel(conversationId: number, userId: number): string {
    const members = this.#conversations[conversationId]?.members ?? [];
    const u = this.#users[userId] ?? members.find((m) => m.id === userId);
    const name = displayName(u);
    if (!u || u.deleted) return name;
    const key = nameKey(u);
    const alike = members.some((m) => m.id !== userId && nameKey(this.#users[m.id] ?? m) === key);
    return alike ? `${isolate(name)} (@${u.username})` : name;
  }

  /** Which current members (other than me) have read up to at least `seq`. */
  readers(conversationId: number, seq: number): number[] {
    const forConv = this.#reads[conversationId] ?? {};
    const members = new Set(this.#conversations[conversationId]?.members.map((m) => m.id) ?? []);
    return Object.entries(forConv)
      .map(([uid, s]) => [Number(uid), s] as const)
      .filter(([uid, s]) => s >= seq && uid !== this.#me?.id && members.has(uid))
      .map(([uid]) => uid);
  }

  // ---- sending -------------------------------------------------------------------

  /** Shows the message at once (pending) and sends it now or when the connection returns. */
  sendText(conversationId: number, body: string, replyToId: number | null = null): void {
    if (!this.#box || body.trim() === '') return;
    const entry = this.#box.add({ client_id: newClientId(), conversation_id: conversationId, body, reply_to_id: replyToId, created_at: this.#now() });
    this.#syncOutbox();
    this.#transmit(entry);
  }

  // ---- changing sent messages --------------------------------------------------------

  /** Replaces the text of one of my messages; the answer (and the live event) updates it. */
  async editMessage(conversationId: number, seq: number, body: string): Promise<void> {
    this.#changed(await this.#api.editMessage(conversationId, seq, { body }));
  }

  /** Deletes a message for everyone. */
  async deleteMessage(conversationId: number, seq: number): Promise<void> {
    this.#changed(await this.#api.deleteMessage(conversationId, seq));
  }

  /** Adds my reaction with `emoji`, or takes it back if I have it. */
  async toggleReaction(m: Message, emoji: string): Promise<void> {
    const me = this.#me?.id;
    // "👍" and "👍️" (with the emoji variation selector) are one reaction, as on the server.
    const bare = (e: string) => e.replaceAll('\uFE0F', '');
    const mine = m.reactions.some((r) => bare(r.emoji) === bare(emoji) && me !== undefined && r.user_ids.includes(me));
    this.#changed(await this.#api.react(m.conversation_id, m.seq, emoji, !mine));
  }

  /** Searches my conversations' messages, newest first. */
  searchMessages(q: string, beforeId: number | null = null): Promise<SearchResults> {
    return this.#api.searchMessages({ q, before_id: beforeId, limit: 20 });
  }

  #focus = $state<{ conversationId: number; seq: number } | null>(null);
  /** A message a screen should show in its place (a search result): the conversation view
   *  takes it (`takeFocus`) once it is open. */
  focusMessage(conversationId: number, seq: number): void {
    this.#focus = { conversationId, seq };
  }
  get focus(): { conversationId: number; seq: number } | null {
    return this.#focus;
  }
  takeFocus(conversationId: number): number | null {
    const f = this.#focus;
    if (!f || f.conversationId !== conversationId) return null;
    this.#focus = null;
    return f.seq;
  }

  /** Mutes or unmutes a conversation (for me, on all my devices). */
  async setMuted(conversationId: number, muted: boolean): Promise<void> {
    this.#upsertConversation(await this.#api.updateSettings(conversationId, { muted }));
  }

  /** Makes sure message `seq` is loaded (for a quote or a search result older than what
   *  is shown): the history from it up to what the timeline holds, in one request, so the
   *  timeline stays without holes. */
  async showMessage(conversationId: number, seq: number): Promise<void> {
    if (!this.#timelines[conversationId]) await this.open(conversationId);
    const t = this.#timelines[conversationId];
    if (!t || t.items.length === 0 || t.items[0]!.seq <= seq) return;
    const first = t.items[0]!.seq;
    // At most one page's limit per request: the newest pages first, until seq is in.
    for (let guard = 0; guard < 1000; guard++) {
      const cur = this.#timelines[conversationId];
      if (!cur || cur.items[0]!.seq <= seq) return;
      const before = cur.items[0]!.seq;
      const want = Math.min(100, before - Math.max(1, seq - 10));
      const page = await this.#api.history(conversationId, { before_seq: before, limit: Math.max(1, want) });
      const now = this.#timelines[conversationId];
      if (!now) return;
      now.items = upsertAll(now.items, page.messages);
      now.hasMore = page.has_more;
      if (page.messages.length === 0 || first === now.items[0]!.seq && !page.has_more) return;
    }
  }

  retry(clientId: string): void {
    const entry = this.#box?.retry(clientId);
    this.#syncOutbox();
    if (entry) this.#transmit(entry);
  }

  discard(clientId: string): void {
    this.#box?.remove(clientId);
    this.#syncOutbox();
  }

  #transmit(entry: OutboxEntry): void {
    if (this.#connection.kind !== 'live') return; // flushed on `synced`
    const frame: ClientEvent = { type: 'send', conversation_id: entry.conversation_id, client_id: entry.client_id, body: entry.body };
    if (entry.reply_to_id) frame.reply_to_id = entry.reply_to_id;
    const ok = this.#realtime.send(frame);
    if (ok) this.#sentAt.set(entry.client_id, this.#now());
  }

  #flushOutbox(): void {
    for (const e of this.#box?.pending() ?? []) this.#transmit(e);
  }

  /** A pending message with no answer for a while is sent again (same client_id). */
  #resendStale(): void {
    const now = this.#now();
    for (const e of this.#box?.pending() ?? []) {
      const at = this.#sentAt.get(e.client_id);
      if (at === undefined || now - at >= RESEND_AFTER_MS) this.#transmit(e);
    }
  }

  #syncOutbox(): void {
    this.#outbox = this.#box ? this.#box.all().slice() : [];
  }

  pendingFor(conversationId: number): OutboxEntry[] {
    return this.#outbox.filter((e) => e.conversation_id === conversationId);
  }

  async sendVoice(conversationId: number, file: Blob, replyToId: number | null = null, onProgress?: Progress): Promise<void> {
    const m = await this.#api.sendVoice(conversationId, file, newClientId(), replyToId, onProgress);
    this.#receive(m, false);
  }

  // ---- photos ----------------------------------------------------------------------

  /** Whether the platform has its own file dialog for photos (the desktop app). */
  get picksPhotos(): boolean {
    return this.#api.pickPhoto !== undefined;
  }

  /** The platform's file dialog (see `picksPhotos`): the chosen file, null if cancelled. */
  async pickPhoto(): Promise<File | null> {
    if (!this.#api.pickPhoto) throw new Error('There is no file dialog here.');
    return this.#api.pickPhoto();
  }

  /** Uploads a photo: shown at once among the conversation's uploads with its progress,
   *  then replaced by the message the server stored; on failure it stays, failed. */
  sendPhoto(conversationId: number, file: Blob, caption: string, replyToId: number | null = null): void {
    const upload: PhotoUpload = {
      client_id: newClientId(),
      conversation_id: conversationId,
      file,
      caption: caption.trim() === '' ? '' : caption,
      reply_to_id: replyToId,
      state: 'uploading',
      progress: 0,
      error: null,
      retriable: true,
    };
    this.#uploads = [...this.#uploads, upload];
    void this.#upload(upload);
  }

  /** Uploads a failed photo again, with its `client_id`: a first attempt the server did
   *  store (the answer was lost) comes back as that message, not a second one. */
  retryPhoto(clientId: string): void {
    const u = this.#uploads.find((x) => x.client_id === clientId);
    if (!u || u.state !== 'failed') return;
    const again = this.#patchUpload(clientId, { state: 'uploading', progress: 0, error: null, retriable: true });
    if (again) void this.#upload(again);
  }

  /** Forgets a failed photo. */
  discardPhoto(clientId: string): void {
    this.#uploads = this.#uploads.filter((x) => x.client_id !== clientId || x.state === 'uploading');
  }

  uploadsFor(conversationId: number): PhotoUpload[] {
    return this.#uploads.filter((u) => u.conversation_id === conversationId);
  }

  async #upload(u: PhotoUpload): Promise<void> {
    try {
      const m = await this.#api.sendPhoto(u.conversation_id, u.file, u.caption, u.client_id, u.reply_to_id, (f) => {
        const cur = this.#uploads.find((x) => x.client_id === u.client_id);
        if (cur && cur.state === 'uploading' && f > cur.progress) this.#patchUpload(u.client_id, { progress: Math.min(1, f) });
      });
      this.#uploads = this.#uploads.filter((x) => x.client_id !== u.client_id);
      this.#receive(m, false);
    } catch (e) {
      const status = e instanceof ApiError ? e.status : 0;
      // Worth another try: no answer, a timeout, too fast, full storage, the server's fault.
      const retriable = status === 0 || status === 408 || status === 429 || status >= 500;
      this.#patchUpload(u.client_id, { state: 'failed', error: errorMessage(e), retriable });
    }
  }

  #patchUpload(clientId: string, patch: Partial<PhotoUpload>): PhotoUpload | undefined {
    let out: PhotoUpload | undefined;
    this.#uploads = this.#uploads.map((x) => (x.client_id === clientId ? (out = { ...x, ...patch }) : x));
    return out;
  }

  /** Tells the others we are typing, at most every few seconds. */
  typingNow(conversationId: number): void {
    const now = this.#now();
    if (now - (this.#lastTypingSent.get(conversationId) ?? 0) < TYPING_SEND_EVERY_MS) return;
    this.#lastTypingSent.set(conversationId, now);
    this.#realtime.send({ type: 'typing', conversation_id: conversationId });
  }

  /** The screen says whether conversation `id` is in view to its end on a visible page:
   *  then it is read now, and what arrives there while it stays so is read at once. */
  watch(id: number, inView: boolean): void {
    if (inView) {
      this.#watching = id;
      this.markRead(id);
    } else if (this.#watching === id) {
      this.#watching = null;
    }
  }

  /** Marks everything held in an open conversation as read. */
  markRead(conversationId: number): void {
    const c = this.#conversations[conversationId];
    const t = this.#timelines[conversationId];
    if (!c || !t || t.items.length === 0) return;
    const seq = t.items[t.items.length - 1]!.seq;
    if (seq <= c.last_read_seq) return;
    c.last_read_seq = seq;
    c.unread_count = Math.max(0, c.last_seq - seq);
    if (c.unread_count === 0) c.unread_mentions = 0;
    if (!this.#realtime.send({ type: 'read', conversation_id: conversationId, seq })) {
      void this.#api.markRead(conversationId, seq).catch(() => {});
    }
  }

  // ---- played receipts -----------------------------------------------------------

  /** The voice player started playing `m` (its first `play`). Someone else's voice message
   *  that I have not played yet is said played, once per page load: with a `played` frame
   *  when the connection is live (then the REST call too should that frame go unanswered),
   *  otherwise with the REST call. Never for my own: the server would refuse it. */
  startedPlaying(m: Message): void {
    const me = this.#me?.id;
    if (me === undefined || m.kind !== 'voice' || m.sender_id === me || m.deleted_at !== null) return;
    if (m.played_by.some((p) => p.user_id === me) || this.#played.has(m.id)) return;
    this.#played.add(m.id);
    const frame: ClientEvent = { type: 'played', conversation_id: m.conversation_id, seq: m.seq };
    if (this.#connection.kind === 'live' && this.#realtime.send(frame)) {
      const timer = setTimeout(() => this.#playedOverRest(m.id), PLAYED_ANSWER_MS);
      this.#playedUnanswered.set(m.id, { conversationId: m.conversation_id, seq: m.seq, timer });
    } else {
      this.#markPlayed(m.conversation_id, m.seq);
    }
  }

  /** Who played voice message `m`, in the order they first did, named as `memberLabel`
   *  names them (a deleted account: "Deleted user"). */
  playedNames(m: Message): string[] {
    return m.played_by.map((p) => this.memberLabel(m.conversation_id, p.user_id));
  }

  /** A change of `m` with me among its players answers the `played` frame sent for it. */
  #playedAnswered(m: Message): void {
    const waiting = this.#playedUnanswered.get(m.id);
    if (!waiting || !m.played_by.some((p) => p.user_id === this.#me?.id)) return;
    clearTimeout(waiting.timer);
    this.#playedUnanswered.delete(m.id);
  }

  /** The unanswered `played` frames (of message `id`, or all when the connection dropped)
   *  are said again with the REST call, which changes nothing if a frame did arrive. */
  #playedOverRest(id?: number): void {
    for (const [messageId, w] of this.#playedUnanswered) {
      if (id !== undefined && messageId !== id) continue;
      clearTimeout(w.timer);
      this.#playedUnanswered.delete(messageId);
      this.#markPlayed(w.conversationId, w.seq);
    }
  }

  #markPlayed(conversationId: number, seq: number): void {
    void this.#api.markPlayed(conversationId, seq).then(
      (m) => this.#changed(m),
      () => {
        // Refused (deleted meanwhile, no longer a member) or offline: not said again on
        // this page; the next play after a reload says it.
      },
    );
  }

  // ---- link destinations ---------------------------------------------------------

  /** Whether hovering or focusing a link shows its destination (see `StoreHooks`). */
  get linkTargetOnHover(): boolean {
    return this.#hooks.linkTargetOnHover ?? false;
  }

  showLinkTarget(href: string): void {
    this.#linkTarget = href;
  }

  /** Hides the destination shown for `href` (not one shown since for another link). */
  hideLinkTarget(href: string): void {
    if (this.#linkTarget === href) this.#linkTarget = null;
  }

  // ---- profile -------------------------------------------------------------------

  async updateProfile(input: { display_name?: string; email?: string; new_password?: string; current_password?: string }): Promise<void> {
    this.#setMe(await this.#api.updateMe(input));
  }

  async uploadAvatar(file: Blob, onProgress?: Progress): Promise<void> {
    this.#setMe(await this.#api.uploadAvatar(file, onProgress));
  }

  async removeAvatar(): Promise<void> {
    this.#setMe(await this.#api.deleteAvatar());
  }
}

export function displayName(u: Pick<User, 'display_name' | 'username'> | undefined): string {
  if (!u) return 'Someone';
  return u.display_name || u.username;
}

/** Plain text isolated from its surroundings (FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE). */
export function isolate(text: string): string {
  return `\u2068${text}\u2069`;
}

/** The server's confusable skeleton of the display name: equal keys, names that look alike.
 *  (Letter case and compatibility forms only, should a server not send one.) */
function nameKey(u: Pick<User, 'display_name' | 'username' | 'name_key'>): string {
  return u.name_key || displayName(u).normalize('NFKC').toLowerCase();
}

/** Which field of a form an API error belongs to (null: the form as a whole). */
export function errorField(err: unknown): string | null {
  if (!(err instanceof ApiError)) return null;
  switch (err.code) {
    case 'invalid_username':
    case 'username_taken':
      return 'username';
    case 'invalid_email':
    case 'email_taken':
      return 'email';
    case 'invalid_password':
    case 'weak_password':
      return 'password';
    case 'invalid_display_name':
      return 'display_name';
    case 'invite_required':
    case 'invite_invalid':
      return 'invite';
    case 'forbidden':
      return 'current_password';
    default:
      return null;
  }
}

export { errorMessage };

/** A direct conversation's other person (the first member, should there be no other). */
export function otherMember(store: ChatStore, c: Conversation): User | undefined {
  const meId = store.me?.id;
  const m = c.members.find((u) => u.id !== meId) ?? c.members[0];
  return m ? (store.users[m.id] ?? m) : undefined;
}

export function conversationTitle(store: ChatStore, c: Conversation): string {
  if (c.kind === 'group') {
    if (c.title) return c.title;
    const names = c.members.filter((m) => m.id !== store.me?.id).map((m) => store.memberLabel(c.id, m.id));
    if (names.length === 0) return 'Untitled group';
    return names.length === 1 ? names[0]! : names.map(isolate).join(', ');
  }
  const other = otherMember(store, c);
  return other ? store.memberLabel(c.id, other.id) : displayName(other);
}
