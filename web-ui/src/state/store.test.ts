import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, type ApiClient, type ConnectionState, type RealtimeClient } from '../api/client';
import type { ClientEvent, Conversation, Me, Message, ServerEvent, User } from '../api/generated';
import type { KeyValueStorage } from '../api/outbox';
import { ChatStore, conversationTitle, isolate } from './store.svelte';

const ME: Me = { id: 1, username: 'ann', display_name: 'Ann', name_key: 'ann', email: 'a@x', avatar_url: null, avatar_small_url: null, is_admin: false, online: true, last_seen: null, created_at: '2026-01-01T00:00:00Z' };
const BEN: User = { id: 2, username: 'ben', display_name: 'Ben', name_key: 'ben', avatar_url: null, avatar_small_url: null, online: false, last_seen: null, deleted: false };

function person(id: number, username: string, display_name: string, name_key: string): User {
  return { id, username, display_name, name_key, avatar_url: null, avatar_small_url: null, online: false, last_seen: null, deleted: false };
}

function msg(conversation_id: number, seq: number, sender_id = 2, client_id: string | null = null): Message {
  return { id: conversation_id * 1000 + seq, conversation_id, seq, sender_id, kind: 'text', body: `m${seq}`, attachment: null, client_id, created_at: new Date(Date.UTC(2026, 0, 1, 0, seq)).toISOString(), rev: 0, edited_at: null, deleted_at: null, reply_to: null, reactions: [], mentions: [], played_by: [] };
}

/** A voice message of `sender_id` (Ben by default), played by `played` (user ids). */
function voice(conversation_id: number, seq: number, sender_id = 2, played: number[] = [], rev = 0): Message {
  return {
    ...msg(conversation_id, seq, sender_id), kind: 'voice', body: '', rev,
    attachment: { id: `f${seq}`, url: `/api/files/f${seq}`, mime: 'audio/ogg', size: 1000, duration_ms: 3000, waveform: [], width: null, height: null, thumbnail: null },
    played_by: played.map((user_id) => ({ user_id, at: '2026-01-02T00:00:00Z' })),
  };
}

function conv(id: number, last_seq: number, benRead = 0): Conversation {
  return {
    id, kind: 'direct', title: null, owner_id: null, members: [ME as never, BEN],
    read_positions: [{ user_id: ME.id, last_read_seq: last_seq }, { user_id: BEN.id, last_read_seq: benRead }],
    last_message: null, unread_count: 0, last_read_seq: last_seq, last_seq, last_change: 0, unread_mentions: 0, muted: false, created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z',
  };
}

/** Server state: conversation id → every message (seq 1..n). */
class FakeApi {
  stored = new Map<number, Message[]>();
  historyCalls: { id: number; before_seq?: number | null; limit?: number | null }[] = [];
  conversations = vi.fn(async () => [...this.stored.keys()].map((id) => conv(id, this.stored.get(id)!.length)));
  history = vi.fn(async (id: number, q: { before_seq?: number | null; limit?: number | null }) => {
    this.historyCalls.push({ id, ...q });
    const all = this.stored.get(id) ?? [];
    const before = q.before_seq ?? Infinity;
    const older = all.filter((m) => m.seq < before);
    const limit = q.limit ?? 50;
    return { messages: older.slice(-limit), has_more: older.length > limit };
  });
  markRead = vi.fn(async () => ({ conversation_id: 0, last_read_seq: 0, unread_count: 0 }));
  /** Answers as the server does: the message with me (ann) among its players. */
  markPlayed = vi.fn(async (id: number, seq: number): Promise<Message> => voice(id, seq, 2, [ME.id], 50));
  conversation = vi.fn(async (id: number) => conv(id, this.stored.get(id)?.length ?? 0));
  logout = vi.fn(async (): Promise<void> => {});
  me = vi.fn(async (): Promise<Me> => ME);
  login = vi.fn(async () => ({ user: ME, token: 't', csrf_token: 'c' }));
  register = vi.fn(async () => ({ user: ME, token: 't', csrf_token: 'c' }));
  searchUsers = vi.fn(async () => [BEN]);
  mediaUrl = vi.fn((path: string) => `media:${path}`);
  /** Answers with the photo message (as the server would, the same one for a retried
   *  client_id); a test makes it fail or hold with `mockImplementationOnce`. */
  sendPhoto = vi.fn(async (id: number, _file: Blob, caption: string, clientId: string, _reply: number | null, onProgress?: (f: number) => void): Promise<Message> => {
    onProgress?.(0.5);
    onProgress?.(1);
    return photo(id, (this.stored.get(id)?.length ?? 0) + 1, ME.id, caption, clientId);
  });
}

/** A photo message of `sender_id` with its attachment (640×480, thumbnail 480×360). */
function photo(conversation_id: number, seq: number, sender_id = 2, caption = '', client_id: string | null = null): Message {
  return {
    ...msg(conversation_id, seq, sender_id, client_id), kind: 'photo', body: caption,
    attachment: {
      id: `p${seq}`, url: `/api/files/p${seq}`, mime: 'image/jpeg', size: 50_000, duration_ms: null, waveform: [], width: 640, height: 480,
      thumbnail: { url: `/api/files/t${seq}`, mime: 'image/jpeg', size: 9000, width: 480, height: 360 },
    },
  };
}

class FakeRealtime implements RealtimeClient {
  sent: ClientEvent[] = [];
  open = false;
  private ev = new Set<(e: ServerEvent) => void>();
  private st = new Set<(s: ConnectionState) => void>();
  getCursors: () => Record<string, number> = () => ({});
  getChanges: (() => Record<string, number>) | undefined;
  start(getCursors: () => Record<string, number>, getChanges?: () => Record<string, number>): void {
    this.getCursors = getCursors;
    this.getChanges = getChanges;
  }
  stop(): void {}
  send(e: ClientEvent): boolean {
    if (!this.open) return false;
    this.sent.push(e);
    return true;
  }
  onEvent(l: (e: ServerEvent) => void) {
    this.ev.add(l);
    return () => this.ev.delete(l);
  }
  onState(l: (s: ConnectionState) => void) {
    this.st.add(l);
    return () => this.st.delete(l);
  }
  emit(e: ServerEvent): void {
    for (const l of this.ev) l(e);
  }
  goLive(): void {
    this.open = true;
    for (const l of this.st) l({ kind: 'live' });
    this.emit({ type: 'synced' });
  }
  drop(): void {
    this.open = false;
    for (const l of this.st) l({ kind: 'reconnecting', attempt: 1, retryAt: 0 });
  }
}

class MemoryStorage implements KeyValueStorage {
  map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
  removeItem(k: string) {
    this.map.delete(k);
  }
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('ChatStore', () => {
  let api: FakeApi;
  let rt: FakeRealtime;
  let storage: MemoryStorage;
  let store: ChatStore;

  beforeEach(async () => {
    api = new FakeApi();
    api.stored.set(7, Array.from({ length: 120 }, (_, i) => msg(7, i + 1)));
    api.stored.set(9, [msg(9, 1)]);
    rt = new FakeRealtime();
    storage = new MemoryStorage();
    store = new ChatStore(api as unknown as ApiClient, rt, storage);
    expect(await store.start()).toBe('signed-in');
  });
  afterEach(() => store.end());

  it('resumes from the last seq held without a hole, per conversation', async () => {
    expect(rt.getCursors()).toEqual({ '7': 120, '9': 1 });
    await store.open(7);
    expect(store.timelines[7]!.items.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 71 + i));
    rt.goLive();
    rt.emit({ type: 'message', message: msg(7, 121) });
    expect(rt.getCursors()).toEqual({ '7': 121, '9': 1 });
  });

  it('replaces a changed message in place, never with an older state, and updates its quotes', async () => {
    await store.open(7);
    rt.goLive();
    const original = msg(7, 100);
    const reply = { ...msg(7, 121), reply_to: { id: original.id, seq: 100, sender_id: 2, kind: 'text' as const, excerpt: 'm100', duration_ms: null, deleted: false } };
    rt.emit({ type: 'message', message: reply });
    const edited = { ...original, body: 'm100, fixed', edited_at: '2026-01-02T00:00:00Z', rev: 2 };
    rt.emit({ type: 'message_updated', message: edited });
    const at = (seq: number) => store.timelines[7]!.items.find((m) => m.seq === seq)!;
    expect(at(100).body).toBe('m100, fixed');
    expect(at(121).reply_to?.excerpt).toBe('m100, fixed');
    // An older state arriving late changes nothing.
    rt.emit({ type: 'message_updated', message: { ...original, body: 'stale', rev: 1 } });
    expect(at(100).body).toBe('m100, fixed');
    // Deleted: a tombstone, and the quote says so.
    rt.emit({ type: 'message_updated', message: { ...edited, body: '', deleted_at: '2026-01-03T00:00:00Z', rev: 3 } });
    expect(at(100).deleted_at).not.toBeNull();
    expect(at(121).reply_to?.deleted).toBe(true);
    expect(store.conversations[7]!.last_change).toBe(3);
    expect(rt.getChanges?.()).toEqual({ '7': 3, '9': 0 });
    expect(store.timelines[7]!.items.length).toBe(51);
  });

  it('fills a gap exactly once and keeps every message once, in order', async () => {
    await store.open(7);
    rt.goLive();
    // 121..125 stored on the server while the client missed 121..123
    for (let s = 121; s <= 125; s++) api.stored.get(7)!.push(msg(7, s));
    api.historyCalls = [];
    rt.emit({ type: 'message', message: msg(7, 124) });
    rt.emit({ type: 'message', message: msg(7, 125) });
    expect(rt.getCursors()['7']).toBe(120); // the hole holds the cursor back
    await flush();
    await flush();
    expect(api.historyCalls).toEqual([{ id: 7, before_seq: 124, limit: 3 }]);
    // the same messages again (resume replay after a reconnect): no duplicates
    rt.emit({ type: 'message', message: msg(7, 122) });
    rt.emit({ type: 'message', message: msg(7, 125) });
    const seqs = store.timelines[7]!.items.map((m) => m.seq);
    expect(seqs).toEqual(Array.from({ length: 55 }, (_, i) => 71 + i));
    expect(rt.getCursors()['7']).toBe(125);
  });

  it('scrolls back by before_seq until the start, each message once', async () => {
    await store.open(7);
    await store.loadOlder(7);
    await store.loadOlder(7);
    await store.loadOlder(7);
    const t = store.timelines[7]!;
    expect(t.hasMore).toBe(false);
    expect(t.items.map((m) => m.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
  });

  it('keeps a message typed offline pending, sends it once live, and forgets it on ack', () => {
    store.sendText(9, 'hello');
    expect(store.outbox).toHaveLength(1);
    expect(store.outbox[0]!.state).toBe('pending');
    expect(rt.sent).toEqual([]);
    rt.goLive();
    const id = store.outbox[0]!.client_id;
    expect(rt.sent).toEqual([{ type: 'send', conversation_id: 9, client_id: id, body: 'hello' }]);
    rt.emit({ type: 'ack', client_id: id, message: msg(9, 2, 1, id) });
    expect(store.outbox).toEqual([]);
    expect(storage.map.size).toBe(0);
  });

  it('survives a reload: the outbox is read back from storage and sent with the same client_id', async () => {
    store.sendText(9, 'typed offline');
    const id = store.outbox[0]!.client_id;
    store.end();
    const rt2 = new FakeRealtime();
    const again = new ChatStore(api as unknown as ApiClient, rt2, storage);
    expect(await again.start()).toBe('signed-in');
    expect(again.outbox.map((e) => e.client_id)).toEqual([id]);
    rt2.goLive();
    expect(rt2.sent).toEqual([{ type: 'send', conversation_id: 9, client_id: id, body: 'typed offline' }]);
    again.end();
  });

  it('resends an unanswered message after a drop with the same client_id; a refusal fails it; retry reuses the id', () => {
    rt.goLive();
    store.sendText(9, 'one');
    const id = store.outbox[0]!.client_id;
    rt.drop();
    rt.goLive();
    expect(rt.sent.filter((e) => e.type === 'send').map((e) => (e as { client_id: string }).client_id)).toEqual([id, id]);
    rt.emit({ type: 'error', code: 'validation', message: 'too long', client_id: id });
    expect(store.outbox[0]).toMatchObject({ state: 'failed', error: 'too long' });
    rt.sent = [];
    store.retry(id);
    expect(rt.sent).toEqual([{ type: 'send', conversation_id: 9, client_id: id, body: 'one' }]);
    store.discard(id);
    expect(store.outbox).toEqual([]);
  });

  it('counts unread, applies presence and read events', async () => {
    rt.goLive();
    rt.emit({ type: 'message', message: msg(9, 2) });
    expect(store.conversations[9]!.unread_count).toBe(1);
    expect(store.unreadTotal).toBe(1);
    rt.emit({ type: 'presence', user_id: 2, online: true, last_seen: null });
    expect(store.users[2]!.online).toBe(true);
    rt.emit({ type: 'read', conversation_id: 9, user_id: 1, seq: 2 });
    expect(store.unreadTotal).toBe(0);
    rt.emit({ type: 'read', conversation_id: 9, user_id: 2, seq: 2 });
    expect(store.readers(9, 2)).toEqual([2]);
  });

  it('reads at once what arrives in the conversation in view, and counts it unread once out of view', async () => {
    await store.open(9);
    rt.goLive();
    store.watch(9, true);
    rt.emit({ type: 'message', message: msg(9, 2) });
    expect(store.conversations[9]!.unread_count).toBe(0);
    expect(store.unreadTotal).toBe(0);
    expect(rt.sent).toContainEqual({ type: 'read', conversation_id: 9, seq: 2 });
    // Another conversation's screen going away does not stop this one being watched.
    store.watch(7, false);
    rt.emit({ type: 'message', message: msg(9, 3) });
    expect(store.conversations[9]!.unread_count).toBe(0);
    store.watch(9, false);
    rt.emit({ type: 'message', message: msg(9, 4) });
    expect(store.conversations[9]!.unread_count).toBe(1);
    expect(rt.sent).not.toContainEqual({ type: 'read', conversation_id: 9, seq: 4 });
  });

  it('knows who has read what from the conversation as loaded, before any live event', async () => {
    api.conversations.mockResolvedValueOnce([conv(9, 3, 2)]);
    await store.refreshConversations();
    expect(store.readers(9, 2)).toEqual([2]);
    expect(store.readers(9, 3)).toEqual([]);
    // Someone no longer a member does not count.
    rt.emit({ type: 'conversation', conversation: { ...conv(9, 3, 2), members: [ME as never] } });
    expect(store.conversations[9]!.members.map((m) => m.id)).toEqual([ME.id]);
    expect(store.readers(9, 2)).toEqual([]);
  });

  it('sorts the conversations by newest activity and keeps the derived values current', () => {
    expect(store.sortedConversations.map((c) => c.id)).toEqual([9, 7]); // same time: higher id first
    rt.goLive();
    rt.emit({ type: 'message', message: msg(7, 121) });
    expect(store.sortedConversations.map((c) => c.id)).toEqual([7, 9]);
    expect(store.unreadTotal).toBe(1);
    store.sendText(9, 'one');
    store.sendText(9, 'two');
    expect(store.unsentCount).toBe(2);
    const id = store.outbox[0]!.client_id;
    rt.emit({ type: 'ack', client_id: id, message: { ...msg(9, 2, 1, id), created_at: '2026-01-02T00:00:00Z' } });
    expect(store.unsentCount).toBe(1);
    expect(store.sortedConversations.map((c) => c.id)).toEqual([9, 7]);
  });

  it('keeps its state read-only from outside: screens change it through methods', () => {
    for (const field of ['me', 'connection', 'users', 'conversations', 'timelines', 'typing', 'reads', 'outbox', 'notice', 'signingOut', 'linkTarget', 'serverAddress', 'unreadTotal', 'sortedConversations', 'unsentCount', 'cursors']) {
      expect(() => {
        (store as unknown as Record<string, unknown>)[field] = null;
      }, field).toThrow(TypeError);
    }
    expect(store.me?.id).toBe(ME.id);
    expect('api' in store).toBe(false);
  });

  it('says when we were removed from a conversation, until the notice is dismissed', () => {
    rt.emit({ type: 'conversation', conversation: { ...conv(9, 1), kind: 'group', title: 'Team', members: [BEN] } });
    expect(store.conversations[9]).toBeUndefined();
    expect(store.notice).toBe(`You are no longer a member of “${isolate('Team')}”.`);
    store.dismissNotice();
    expect(store.notice).toBeNull();
  });

  it('searches people and names media through the client it keeps to itself', async () => {
    expect(await store.searchUsers('be', 8)).toEqual([BEN]);
    expect(api.searchUsers).toHaveBeenCalledWith({ q: 'be', limit: 8 });
    expect(store.mediaUrl('/api/files/3')).toBe('media:/api/files/3');
  });

  it('tells whether the server ended the session: only a 401 says so', async () => {
    expect(await store.sessionEnded()).toBe(false);
    api.me.mockRejectedValueOnce(new ApiError(0, 'network_error', 'Cannot reach the server.'));
    expect(await store.sessionEnded()).toBe(false);
    api.me.mockRejectedValueOnce(new ApiError(401, 'unauthorized', 'Sign in again.'));
    expect(await store.sessionEnded()).toBe(true);
  });

  describe('start-up', () => {
    function serverChoice(initial: string | null) {
      let chosen = initial;
      return {
        get: vi.fn(async () => chosen),
        set: vi.fn(async (url: string) => (chosen = `https://${url}`)),
        security: vi.fn(async () => ({ transport: 'cleartext' as const, warning: 'Not encrypted.' })),
      };
    }

    it('opens the app with a session, the sign-in without one, and throws anything else', async () => {
      const fresh = new FakeApi();
      fresh.stored.set(9, [msg(9, 1)]);
      const signedIn = new ChatStore(fresh as unknown as ApiClient, new FakeRealtime(), new MemoryStorage());
      expect(await signedIn.start()).toBe('signed-in');
      expect(signedIn.me?.id).toBe(ME.id);
      expect(Object.keys(signedIn.conversations)).toEqual(['9']);
      signedIn.end();

      fresh.me.mockRejectedValueOnce(new ApiError(401, 'unauthorized', 'Sign in.'));
      const signedOut = new ChatStore(fresh as unknown as ApiClient, new FakeRealtime(), new MemoryStorage());
      expect(await signedOut.start()).toBe('signed-out');
      expect(signedOut.me).toBeNull();

      const down = new ApiError(0, 'network_error', 'Cannot reach the server.');
      fresh.me.mockRejectedValueOnce(down);
      await expect(signedOut.start()).rejects.toBe(down);
      expect(signedOut.me).toBeNull();
    });

    it('signs in and creates accounts, then loads the list and goes live', async () => {
      for (const how of ['signIn', 'register'] as const) {
        const fresh = new FakeApi();
        fresh.stored.set(9, [msg(9, 1)]);
        const realtime = new FakeRealtime();
        const s = new ChatStore(fresh as unknown as ApiClient, realtime, new MemoryStorage());
        if (how === 'signIn') await s.signIn({ login: 'ann', password: 'pw' });
        else await s.register({ username: 'ann', email: 'a@x', password: 'pw', display_name: null });
        expect(fresh[how === 'signIn' ? 'login' : 'register']).toHaveBeenCalledOnce();
        expect(s.me?.id).toBe(ME.id);
        expect(Object.keys(s.conversations)).toEqual(['9']);
        expect(realtime.getCursors()).toEqual({ '9': 1 });
        s.end();
      }
    });

    it('asks for the server first where the platform lets the person choose it', async () => {
      const fresh = Object.assign(new FakeApi(), { server: serverChoice(null) });
      const s = new ChatStore(fresh as unknown as ApiClient, new FakeRealtime(), new MemoryStorage());
      expect(s.choosesServer).toBe(true);
      expect(await s.start()).toBe('server');
      expect(fresh.me).not.toHaveBeenCalled();
      expect(s.serverAddress).toBeNull();
      expect(await s.chooseServer('chat.example.org')).toBe('https://chat.example.org');
      expect(s.serverAddress).toBe('https://chat.example.org');
      expect(await s.serverSecurity()).toEqual({ transport: 'cleartext', warning: 'Not encrypted.' });
      expect(await s.start()).toBe('signed-in');
      expect(s.serverAddress).toBe('https://chat.example.org');
      s.end();
    });

    it('has no server to choose in a browser page, nor a sign-out on this computer only', async () => {
      expect(store.choosesServer).toBe(false);
      expect(store.serverAddress).toBeNull();
      expect(await store.serverSecurity()).toBeNull();
      await expect(store.chooseServer('chat.example.org')).rejects.toThrow();
      expect(store.canSignOutHereOnly).toBe(false);
    });
  });

  describe('sign-out', () => {
    const KEY = `chatapp.outbox.${ME.id}`;

    it('forgets everything and the unsent messages once the server confirmed', async () => {
      store.sendText(9, 'not sent');
      expect(storage.map.has(KEY)).toBe(true);
      expect(store.unsentCount).toBe(1);
      await store.signOut({ keepUnsent: false });
      expect(api.logout).toHaveBeenCalledOnce();
      expect(store.me).toBeNull();
      expect(store.outbox).toEqual([]);
      expect(storage.map.has(KEY)).toBe(false);
    });

    it('keeps the unsent messages in storage when asked to, for the next sign-in', async () => {
      store.sendText(9, 'later');
      await store.signOut({ keepUnsent: true });
      expect(store.me).toBeNull();
      expect(JSON.parse(storage.map.get(KEY)!)).toMatchObject([{ body: 'later', state: 'pending' }]);
    });

    it('stays signed in, with everything, when the server did not confirm', async () => {
      store.sendText(9, 'kept');
      for (const err of [new ApiError(0, 'network_error', 'Cannot reach the server.'), new ApiError(500, 'internal', 'Internal error')]) {
        api.logout.mockRejectedValueOnce(err);
        await expect(store.signOut({ keepUnsent: false })).rejects.toBe(err);
        expect(store.me?.id).toBe(ME.id);
        expect(store.signingOut).toBe(false);
        expect(store.outbox.map((e) => e.body)).toEqual(['kept']);
        expect(storage.map.has(KEY)).toBe(true);
      }
    });

    it('counts a 401 as signed out (the session had already ended)', async () => {
      api.logout.mockRejectedValueOnce(new ApiError(401, 'unauthorized', 'Sign in again.'));
      await store.signOut({ keepUnsent: false });
      expect(store.me).toBeNull();
    });

    it('signs out on this computer only where the platform can forget its session', async () => {
      await expect(store.signOutHereOnly({ keepUnsent: false })).rejects.toThrow();
      expect(store.me?.id).toBe(ME.id);
      const forgetSession = vi.fn(async () => {});
      const withForget = Object.assign(api, { forgetSession });
      const desktop = new ChatStore(withForget as unknown as ApiClient, new FakeRealtime(), storage);
      expect(desktop.canSignOutHereOnly).toBe(true);
      expect(await desktop.start()).toBe('signed-in');
      desktop.sendText(9, 'x');
      await desktop.signOutHereOnly({ keepUnsent: false });
      expect(forgetSession).toHaveBeenCalledOnce();
      expect(api.logout).not.toHaveBeenCalled();
      expect(desktop.me).toBeNull();
      expect(storage.map.has(KEY)).toBe(false);
    });
  });

  describe('account deletion', () => {
    const KEY = `chatapp.outbox.${ME.id}`;

    it('deletes with the password, expects its own session to end meanwhile, then forgets everything here', async () => {
      let signingOutDuring = false;
      const deleteAccount = vi.fn(async () => {
        signingOutDuring = store.signingOut;
      });
      Object.assign(api, { deleteAccount });
      store.sendText(9, 'never sent');
      await store.deleteAccount('secret');
      expect(deleteAccount).toHaveBeenCalledWith({ password: 'secret' });
      expect(signingOutDuring).toBe(true);
      expect(store.signingOut).toBe(false);
      expect(store.me).toBeNull();
      expect(store.conversations).toEqual({});
      expect(storage.map.has(KEY)).toBe(false);
    });

    it('changes nothing when the server refused (wrong password, the only admin)', async () => {
      const err = new ApiError(409, 'last_admin', 'you are the only admin');
      Object.assign(api, { deleteAccount: vi.fn(async () => Promise.reject(err)) });
      store.sendText(9, 'kept');
      await expect(store.deleteAccount('secret')).rejects.toBe(err);
      expect(store.me?.id).toBe(ME.id);
      expect(store.signingOut).toBe(false);
      expect(store.outbox.map((e) => e.body)).toEqual(['kept']);
    });
  });

  describe('administration', () => {
    it('asks who may sign up, and makes invite links on the page\'s origin in a browser', async () => {
      Object.assign(api, { serverInfo: vi.fn(async () => ({ registration: 'invite' })) });
      expect(await store.serverInfo()).toEqual({ registration: 'invite' });
      vi.stubGlobal('location', { origin: 'http://127.0.0.1:8080' });
      try {
        expect(store.admin.inviteLink('abc')).toBe('http://127.0.0.1:8080/#/invite/abc');
      } finally {
        vi.unstubAllGlobals();
      }
    });

    it('makes invite links on the chosen server in the desktop app', async () => {
      const server = { get: vi.fn(async () => 'https://chat.example.org'), set: vi.fn(), security: vi.fn(async () => null) };
      const desktop = new ChatStore(Object.assign(Object.create(api), { server }) as unknown as ApiClient, new FakeRealtime(), storage);
      expect(await desktop.start()).toBe('signed-in');
      expect(desktop.admin.inviteLink('abc')).toBe('https://chat.example.org/#/invite/abc');
      desktop.end();
    });

    it('reads the account again when the server says it is no longer an admin', async () => {
      Object.assign(api, { adminActions: vi.fn(async () => Promise.reject(new ApiError(403, 'admin_only', 'only an admin'))) });
      api.me.mockResolvedValueOnce({ ...ME, is_admin: false });
      await expect(store.admin.actions()).rejects.toMatchObject({ code: 'admin_only' });
      await flush();
      expect(api.me).toHaveBeenCalledTimes(2);
      expect(store.me?.is_admin).toBe(false);
    });
  });

  describe('deleted accounts', () => {
    const GONE = { ...person(8, 'dora', 'Deleted user', 'deleted user'), deleted: true };
    const FAKE = person(9, 'mallory', 'Deleted user', 'deleted user');

    it('are "Deleted user" without a username; someone who takes that name is told apart', async () => {
      const group = { ...conv(40, 0), kind: 'group' as const, title: 'Team', owner_id: ME.id, members: [ME as never, GONE, FAKE], read_positions: [] };
      const direct = { ...conv(41, 0), members: [ME as never, GONE] };
      api.conversations.mockResolvedValueOnce([group, direct]);
      await store.refreshConversations();
      expect(store.memberLabel(40, GONE.id)).toBe('Deleted user');
      expect(store.memberLabel(40, FAKE.id)).toBe(`${isolate('Deleted user')} (@mallory)`);
      expect(conversationTitle(store, store.conversations[41]!)).toBe('Deleted user');
    });

    it('show as deleted as soon as the server says so (user_updated)', async () => {
      api.conversations.mockResolvedValueOnce([{ ...conv(42, 0), members: [ME as never, BEN] }]);
      await store.refreshConversations();
      expect(conversationTitle(store, store.conversations[42]!)).toBe('Ben');
      rt.emit({ type: 'user_updated', user: { ...BEN, display_name: 'Deleted user', name_key: 'deleted user', online: false, deleted: true } });
      expect(conversationTitle(store, store.conversations[42]!)).toBe('Deleted user');
      expect(store.users[BEN.id]?.deleted).toBe(true);
    });
  });

  describe('names that look alike', () => {
    // ann (me), "Ann" look-alike, two "alice"s (one in Cyrillic а), a unique "Zoe"
    const ANN2 = person(3, 'ann_', 'ANN', 'ann');
    const ALICE = person(4, 'alice', 'alice', 'alice');
    const ALICE2 = person(5, 'mallory', '\u0430lice', 'alice');
    const ZOE = person(6, 'zoe', 'Zoe', 'zoe');

    function group(id: number, members: User[]): Conversation {
      return { ...conv(id, 0), kind: 'group', title: 'Team', owner_id: ME.id, members: [ME as never, ...members], read_positions: [] };
    }

    it('adds @username to each member whose name looks like another member\'s, and only there', async () => {
      api.conversations.mockResolvedValueOnce([group(20, [ALICE, ALICE2, ZOE, ANN2]), group(21, [ALICE, ZOE])]);
      await store.refreshConversations();
      expect(store.memberLabel(20, ALICE.id)).toBe(`${isolate('alice')} (@alice)`);
      expect(store.memberLabel(20, ALICE2.id)).toBe(`${isolate('\u0430lice')} (@mallory)`);
      expect(store.memberLabel(20, ZOE.id)).toBe('Zoe');
      // someone named like me, and me beside them
      expect(store.memberLabel(20, ANN2.id)).toBe(`${isolate('ANN')} (@ann_)`);
      expect(store.memberLabel(20, ME.id)).toBe(`${isolate('Ann')} (@ann)`);
      // in a conversation without the look-alike, just the name
      expect(store.memberLabel(21, ALICE.id)).toBe('alice');
      expect(store.memberLabel(21, ME.id)).toBe('Ann');
    });

    it('follows renames, and names the other person of a direct conversation apart from me', async () => {
      const direct = { ...conv(30, 0), members: [ME as never, ANN2] };
      api.conversations.mockResolvedValueOnce([group(20, [ALICE, ZOE]), direct, conv(31, 0)]);
      await store.refreshConversations();
      expect(conversationTitle(store, store.conversations[30]!)).toBe(`${isolate('ANN')} (@ann_)`);
      expect(conversationTitle(store, store.conversations[31]!)).toBe('Ben');
      expect(store.memberLabel(20, ZOE.id)).toBe('Zoe');
      rt.emit({ type: 'user_updated', user: { ...ZOE, display_name: 'Alice', name_key: 'alice' } });
      expect(store.memberLabel(20, ZOE.id)).toBe(`${isolate('Alice')} (@zoe)`);
      expect(store.memberLabel(20, ALICE.id)).toBe(`${isolate('alice')} (@alice)`);
    });

    it('names typing members the same way', async () => {
      api.conversations.mockResolvedValueOnce([group(20, [ALICE, ALICE2, ZOE])]);
      await store.refreshConversations();
      for (const u of [ALICE2, ZOE]) rt.emit({ type: 'typing', conversation_id: 20, user_id: u.id });
      expect(store.typingNames(20)).toEqual([`${isolate('\u0430lice')} (@mallory)`, 'Zoe']);
    });
  });
  describe('played receipts', () => {
    const at = (conversation: number, seq: number) => store.timelines[conversation]!.items.find((m) => m.seq === seq)!;
    const playedFrames = () => rt.sent.filter((e) => e.type === 'played');

    beforeEach(() => {
      api.stored.set(9, [msg(9, 1), voice(9, 2), voice(9, 3, ME.id)]);
    });

    it('applies a live played event like message_updated: in place, never with an older state', async () => {
      await store.open(9);
      rt.goLive();
      rt.emit({ type: 'played', user_id: 2, message: voice(9, 3, ME.id, [2], 4) });
      expect(at(9, 3).played_by.map((p) => p.user_id)).toEqual([2]);
      expect(store.conversations[9]!.last_change).toBe(4);
      expect(rt.getChanges?.()).toMatchObject({ '9': 4 });
      // An older state of the message arriving late (a reaction before the play) changes nothing.
      rt.emit({ type: 'message_updated', message: voice(9, 3, ME.id, [], 3) });
      expect(at(9, 3).played_by.map((p) => p.user_id)).toEqual([2]);
      // After a reconnect, the next play comes (resume) as message_updated.
      rt.emit({ type: 'message_updated', message: voice(9, 3, ME.id, [2, 5], 6) });
      expect(at(9, 3).played_by.map((p) => p.user_id)).toEqual([2, 5]);
      expect(store.conversations[9]!.last_change).toBe(6);
      // The same change twice (live, then replayed): kept once.
      rt.emit({ type: 'played', user_id: 5, message: voice(9, 3, ME.id, [2, 5], 6) });
      expect(at(9, 3).played_by).toHaveLength(2);
      expect(store.timelines[9]!.items.map((m) => m.seq)).toEqual([1, 2, 3]);
    });

    it('names the players in the order they played, a deleted account as Deleted user', async () => {
      const GONE = { ...person(8, 'dora', 'Deleted user', 'deleted user'), deleted: true };
      const group = { ...conv(40, 0), kind: 'group' as const, title: 'Team', owner_id: ME.id, members: [ME as never, BEN, GONE], read_positions: [] };
      api.conversations.mockResolvedValueOnce([group]);
      await store.refreshConversations();
      expect(store.playedNames(voice(40, 1, ME.id, [8, 2]))).toEqual(['Deleted user', 'Ben']);
      expect(store.playedNames(voice(40, 1, ME.id))).toEqual([]);
    });

    it('says once per page, over the socket when live, that I played someone else\'s voice message', async () => {
      await store.open(9);
      rt.goLive();
      store.startedPlaying(at(9, 2));
      expect(playedFrames()).toEqual([{ type: 'played', conversation_id: 9, seq: 2 }]);
      // Played again (paused and resumed, or another player of it): nothing more.
      store.startedPlaying(at(9, 2));
      // The server's answer, live: the frame is answered, no REST call follows.
      rt.emit({ type: 'played', user_id: ME.id, message: voice(9, 2, 2, [ME.id], 1) });
      expect(at(9, 2).played_by.map((p) => p.user_id)).toEqual([ME.id]);
      store.startedPlaying(at(9, 2));
      rt.drop();
      await flush();
      expect(playedFrames()).toHaveLength(1);
      expect(api.markPlayed).not.toHaveBeenCalled();
    });

    it('says nothing for my own voice message, one I played before, a text or a deleted one', async () => {
      api.stored.get(9)!.push(voice(9, 4, 2, [ME.id]), { ...voice(9, 5), deleted_at: '2026-01-03T00:00:00Z', attachment: null });
      await store.open(9);
      rt.goLive();
      for (const seq of [1, 3, 4, 5]) store.startedPlaying(at(9, seq));
      rt.drop();
      store.startedPlaying(at(9, 3));
      await flush();
      expect(playedFrames()).toEqual([]);
      expect(api.markPlayed).not.toHaveBeenCalled();
    });

    it('uses the REST call when not connected, and applies its answer', async () => {
      await store.open(9);
      store.startedPlaying(at(9, 2));
      expect(api.markPlayed).toHaveBeenCalledExactlyOnceWith(9, 2);
      await flush();
      expect(at(9, 2).played_by.map((p) => p.user_id)).toEqual([ME.id]);
      expect(store.conversations[9]!.last_change).toBe(50);
      rt.goLive();
      store.startedPlaying(voice(9, 2)); // a screen still holding the old state
      expect(playedFrames()).toEqual([]);
      expect(api.markPlayed).toHaveBeenCalledOnce();
    });

    it('falls back to the REST call once when the connection drops before the frame is answered', async () => {
      await store.open(9);
      rt.goLive();
      store.startedPlaying(at(9, 2));
      expect(playedFrames()).toHaveLength(1);
      rt.drop();
      expect(api.markPlayed).toHaveBeenCalledExactlyOnceWith(9, 2);
      rt.goLive();
      rt.drop();
      store.startedPlaying(at(9, 2));
      await flush();
      expect(playedFrames()).toHaveLength(1);
      expect(api.markPlayed).toHaveBeenCalledOnce();
    });

    it('falls back to the REST call when the frame stays unanswered; a refusal is not said again', async () => {
      vi.useFakeTimers();
      try {
        await store.open(9);
        rt.goLive();
        api.markPlayed.mockRejectedValueOnce(new ApiError(409, 'message_deleted', 'this message was deleted'));
        store.startedPlaying(at(9, 2));
        vi.advanceTimersByTime(9_000);
        expect(api.markPlayed).not.toHaveBeenCalled();
        vi.advanceTimersByTime(1_000);
        expect(api.markPlayed).toHaveBeenCalledExactlyOnceWith(9, 2);
        await vi.advanceTimersByTimeAsync(60_000);
        rt.drop();
        store.startedPlaying(at(9, 2));
        expect(api.markPlayed).toHaveBeenCalledOnce();
        expect(playedFrames()).toHaveLength(1);
        expect(at(9, 2).played_by).toEqual([]);
      } finally {
        vi.useRealTimers();
      }
    });
  });

  describe('photos', () => {
    const file = () => new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], { type: 'image/png' });

    it('shows an upload with its progress, then the message the server stored in its place', async () => {
      await store.open(9);
      let finish: (m: Message) => void = () => {};
      let progress: (f: number) => void = () => {};
      api.sendPhoto.mockImplementationOnce((_id, _f, _c, _cid, _r, onProgress) => {
        progress = onProgress ?? progress;
        return new Promise<Message>((resolve) => (finish = resolve));
      });
      store.sendPhoto(9, file(), 'Look!', null);
      const [u] = store.uploadsFor(9);
      expect(u).toMatchObject({ conversation_id: 9, caption: 'Look!', state: 'uploading', progress: 0 });
      progress(0.4);
      expect(store.uploadsFor(9)[0]!.progress).toBe(0.4);
      progress(0.2); // progress never goes back
      expect(store.uploadsFor(9)[0]!.progress).toBe(0.4);
      finish(photo(9, 2, ME.id, 'Look!', u!.client_id));
      await flush();
      expect(store.uploadsFor(9)).toEqual([]);
      expect(store.timelines[9]!.items.map((m) => m.kind)).toEqual(['text', 'photo']);
      expect(store.conversations[9]!.last_message?.kind).toBe('photo');
    });

    it('keeps a failed upload for a retry with the same client_id, or a discard', async () => {
      await store.open(9);
      api.sendPhoto.mockRejectedValueOnce(new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection.'));
      store.sendPhoto(9, file(), '  ', 41);
      await flush();
      const [failed] = store.uploadsFor(9);
      expect(failed).toMatchObject({ state: 'failed', error: 'Cannot reach the server. Check your connection.', retriable: true, caption: '', reply_to_id: 41 });
      store.retryPhoto(failed!.client_id);
      expect(store.uploadsFor(9)[0]).toMatchObject({ state: 'uploading', error: null });
      await flush();
      expect(api.sendPhoto).toHaveBeenCalledTimes(2);
      const [first, second] = api.sendPhoto.mock.calls;
      expect(second![3]).toBe(first![3]);
      expect(second!.slice(0, 5)).toEqual([9, first![1], '', failed!.client_id, 41]);
      expect(store.uploadsFor(9)).toEqual([]);
      expect(store.timelines[9]!.items.filter((m) => m.kind === 'photo')).toHaveLength(1);

      api.sendPhoto.mockRejectedValueOnce(new ApiError(415, 'unsupported_media_type', 'not a png, jpeg, gif or webp image'));
      store.sendPhoto(9, file(), '', null);
      await flush();
      const [refused] = store.uploadsFor(9);
      expect(refused).toMatchObject({ state: 'failed', error: 'not a png, jpeg, gif or webp image', retriable: false });
      store.discardPhoto(refused!.client_id);
      expect(store.uploadsFor(9)).toEqual([]);
    });

    it('ends an upload when its message arrives live first; an upload under way cannot be discarded', async () => {
      await store.open(9);
      let finish: (m: Message) => void = () => {};
      api.sendPhoto.mockImplementationOnce(() => new Promise<Message>((resolve) => (finish = resolve)));
      store.sendPhoto(9, file(), '', null);
      const cid = store.uploadsFor(9)[0]!.client_id;
      store.discardPhoto(cid);
      expect(store.uploadsFor(9)).toHaveLength(1);
      rt.emit({ type: 'message', message: photo(9, 2, ME.id, '', cid) });
      expect(store.uploadsFor(9)).toEqual([]);
      finish(photo(9, 2, ME.id, '', cid));
      await flush();
      expect(store.timelines[9]!.items.map((m) => m.seq)).toEqual([1, 2]);
    });

    it('offers the platform\'s file dialog only where there is one', async () => {
      expect(store.picksPhotos).toBe(false);
      await expect(store.pickPhoto()).rejects.toThrow();
      const picked = new File([new Uint8Array([1])], 'photo');
      const withDialog = Object.assign(new FakeApi(), { pickPhoto: vi.fn(async () => picked) });
      const desktop = new ChatStore(withDialog as unknown as ApiClient, new FakeRealtime(), new MemoryStorage());
      expect(desktop.picksPhotos).toBe(true);
      expect(await desktop.pickPhoto()).toBe(picked);
    });
  });
});
