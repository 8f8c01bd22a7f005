import { describe, expect, it, vi } from 'vitest';
import { ApiError, type ConnectionState } from './client';
import type { ServerEvent } from './generated';
import { EVENT, NativeVoiceRecorder, RECORDER, STATE, TauriApiClient, TauriRealtimeClient, type TauriIpc } from './tauri';
import { Notifier, type Note } from '../platform/notifier';
import { desktopPlatform, OPEN } from '../platform/desktop';

/** Stands in for the Tauri IPC boundary: records invokes, answers from a table, and
 *  lets a test emit events as the Rust side would. */
function fakeIpc(answers: Record<string, (args: unknown) => unknown> = {}) {
  const calls: { cmd: string; args: unknown; options?: unknown }[] = [];
  const handlers = new Map<string, Set<(e: { payload: unknown }) => void>>();
  const channels: ((v: unknown) => void)[] = [];
  const ipc: TauriIpc = {
    invoke: async <T>(cmd: string, args?: unknown, options?: unknown): Promise<T> => {
      calls.push({ cmd, args, options });
      const answer = answers[cmd];
      return (answer ? await answer(args) : undefined) as T;
    },
    listen: async <T>(event: string, handler: (e: { payload: T }) => void) => {
      const set = handlers.get(event) ?? new Set();
      const h = handler as (e: { payload: unknown }) => void;
      set.add(h);
      handlers.set(event, set);
      return () => set.delete(h);
    },
    channel: <T>(onMessage: (v: T) => void) => {
      channels.push(onMessage as (v: unknown) => void);
      const id = channels.length;
      return { toJSON: () => `__CHANNEL__:${id}` };
    },
    mediaSrc: (path) => `chatmedia://localhost/${encodeURIComponent(path)}`,
  };
  const emit = (event: string, payload: unknown) => {
    for (const h of handlers.get(event) ?? []) h({ payload });
  };
  const listening = (event: string) => handlers.get(event)?.size ?? 0;
  return { ipc, calls, emit, channels, listening };
}

const me = { id: 1, username: 'ann', email: 'ann@example.org', display_name: 'Ann', avatar_url: null, avatar_small_url: null, online: true, last_seen: null, created_at: '2026-01-01T00:00:00Z' };

describe('TauriApiClient', () => {
  it('calls one command per method with named arguments', async () => {
    const { ipc, calls } = fakeIpc({ login: () => ({ user: me, token: '', csrf_token: '' }), history: () => ({ messages: [], has_more: false }) });
    const api = new TauriApiClient(ipc);
    const r = await api.login({ login: 'ann', password: 'pw' });
    expect(r.user.username).toBe('ann');
    expect(r.token).toBe('');
    await api.history(7, { before_seq: 10, limit: 50 });
    await api.removeMember(7, 3);
    expect(calls).toEqual([
      { cmd: 'login', args: { input: { login: 'ann', password: 'pw' } }, options: undefined },
      { cmd: 'history', args: { id: 7, query: { before_seq: 10, limit: 50 } }, options: undefined },
      { cmd: 'remove_member', args: { id: 7, user: 3 }, options: undefined },
    ]);
  });

  it('turns the Rust side\'s errors into ApiError with status, code and retry-after', async () => {
    const { ipc } = fakeIpc({
      me: () => Promise.reject({ status: 401, code: 'not_signed_in', message: 'Please sign in.', retry_after: null }),
      login: () => Promise.reject({ status: 429, code: 'rate_limited', message: 'Too many.', retry_after: 12 }),
      conversations: () => Promise.reject('boom'),
    });
    const api = new TauriApiClient(ipc);
    const e1 = await api.me().catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ApiError);
    expect(e1).toMatchObject({ status: 401, code: 'not_signed_in' });
    const e2 = await api.login({ login: 'a', password: 'b' }).catch((e: unknown) => e);
    expect(e2).toMatchObject({ status: 429, retryAfter: 12 });
    const e3 = await api.conversations().catch((e: unknown) => e);
    expect(e3).toMatchObject({ status: 0, code: 'ipc_error', message: 'boom' });
  });

  it('keeps the server choice on the Rust side', async () => {
    const { ipc, calls } = fakeIpc({ server_get: () => null, server_set: (a) => `${(a as { url: string }).url}` });
    const api = new TauriApiClient(ipc);
    expect(await api.server.get()).toBeNull();
    expect(await api.server.set('http://chat.local:8080')).toBe('http://chat.local:8080');
    expect(calls.at(-1)).toMatchObject({ cmd: 'server_set', args: { url: 'http://chat.local:8080' } });
  });

  it('asks the Rust side whether the server is reached with encryption', async () => {
    const warning = 'This server is reached without encryption (http://chat.example.org).';
    const { ipc } = fakeIpc({ server_security: () => ({ transport: 'cleartext', warning }) });
    const api = new TauriApiClient(ipc);
    expect(await api.server.security()).toEqual({ transport: 'cleartext', warning });
  });

  it('signs out through the server, or forgets the session on this computer only', async () => {
    const { ipc, calls } = fakeIpc({
      logout: () => Promise.reject({ status: 0, code: 'network_error', message: 'Cannot reach the server.', retry_after: null }),
    });
    const api = new TauriApiClient(ipc);
    await expect(api.logout()).rejects.toMatchObject({ status: 0, code: 'network_error' });
    await api.forgetSession();
    expect(calls.map((c) => c.cmd)).toEqual(['logout', 'forget_session']);
  });

  it('asks who may sign up, deletes the account and calls the admin commands with named arguments', async () => {
    const { ipc, calls } = fakeIpc({ server_info: () => ({ registration: 'closed' }) });
    const api = new TauriApiClient(ipc);
    expect(await api.serverInfo()).toEqual({ registration: 'closed' });
    await api.register({ username: 'ben', email: 'b@x.org', password: 'pw-pw-pw-pw', invite: 'CODE' });
    await api.deleteAccount({ password: 'secret' });
    await api.adminUsers({ q: 'an', limit: 100 });
    await api.adminCreateUser({ username: 'cat', email: 'c@x.org', is_admin: false });
    await api.adminUpdateUser(7, { is_admin: true });
    await api.adminResetPassword(7);
    await api.invites();
    await api.createInvite({ max_uses: 2, expires_in_hours: 24 });
    await api.revokeInvite(4);
    await api.adminActions();
    expect(calls.map((c) => [c.cmd, c.args])).toEqual([
      ['server_info', undefined],
      ['register', { input: { username: 'ben', email: 'b@x.org', password: 'pw-pw-pw-pw', invite: 'CODE' } }],
      ['delete_account', { password: 'secret' }],
      ['admin_users', { query: { q: 'an', limit: 100 } }],
      ['admin_create_user', { input: { username: 'cat', email: 'c@x.org', is_admin: false } }],
      ['admin_update_user', { id: 7, input: { is_admin: true } }],
      ['admin_reset_password', { id: 7 }],
      ['invites', undefined],
      ['create_invite', { input: { max_uses: 2, expires_in_hours: 24 } }],
      ['revoke_invite', { id: 4 }],
      ['admin_actions', undefined],
    ]);
  });

  it('passes the server\'s refusals of the admin commands on as ApiError', async () => {
    const { ipc } = fakeIpc({
      admin_update_user: () => Promise.reject({ status: 409, code: 'own_account', message: 'you cannot disable yourself', retry_after: null }),
      delete_account: () => Promise.reject({ status: 403, code: 'forbidden', message: 'the password is wrong', retry_after: null }),
    });
    const api = new TauriApiClient(ipc);
    await expect(api.adminUpdateUser(1, { disabled: true })).rejects.toMatchObject({ status: 409, code: 'own_account' });
    const e = await api.deleteAccount({ password: 'nope' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 403, code: 'forbidden' });
  });

  it('marks a voice message played with mark_played, and passes a refusal on as ApiError', async () => {
    const { ipc, calls } = fakeIpc({
      mark_played: (a) =>
        (a as { seq: number }).seq === 4
          ? Promise.reject({ status: 400, code: 'own_message', message: 'you sent this message', retry_after: null })
          : { id: 9, seq: 3, played_by: [{ user_id: 1, at: '2026-01-01T00:00:00Z' }] },
    });
    const api = new TauriApiClient(ipc);
    expect((await api.markPlayed(7, 3)).played_by).toEqual([{ user_id: 1, at: '2026-01-01T00:00:00Z' }]);
    const e = await api.markPlayed(7, 4).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 400, code: 'own_message' });
    expect(calls.map((c) => [c.cmd, c.args])).toEqual([
      ['mark_played', { id: 7, seq: 3 }],
      ['mark_played', { id: 7, seq: 4 }],
    ]);
  });

  it('loads server files through the chatmedia scheme, never with a token', () => {
    const api = new TauriApiClient(fakeIpc().ipc);
    const url = api.mediaUrl('/api/files/42');
    expect(url).toBe('chatmedia://localhost/%2Fapi%2Ffiles%2F42');
    expect(url).not.toMatch(/token/i);
  });

  it('uploads other blobs as raw bytes with the conversation and client id in headers', async () => {
    const { ipc, calls } = fakeIpc({ send_voice: () => ({ id: 5 }) });
    const api = new TauriApiClient(ipc);
    const progress: number[] = [];
    await api.sendVoice(3, new Blob([new Uint8Array([1, 2, 3])]), 'cid-1', null, (f) => progress.push(f));
    expect(calls[0]!.cmd).toBe('send_voice');
    expect(Array.from(calls[0]!.args as Uint8Array)).toEqual([1, 2, 3]);
    expect(calls[0]!.options).toEqual({ headers: { 'x-conversation': '3', 'x-client-id': 'cid-1', 'x-progress': '__CHANNEL__:1' } });
    expect(progress).toEqual([1]);
    await api.sendVoice(3, new Blob([new Uint8Array([4])]), 'cid-2', 41);
    expect(calls[1]!.options).toMatchObject({ headers: { 'x-conversation': '3', 'x-client-id': 'cid-2', 'x-reply-to': '41' } });
  });

  it('uploads a photo as raw bytes, the caption percent-encoded in a header, with progress', async () => {
    const fake = fakeIpc({
      send_photo: () => {
        fake.channels[0]!(0.5);
        return { id: 6 };
      },
    });
    const api = new TauriApiClient(fake.ipc);
    const progress: number[] = [];
    await api.sendPhoto(3, new Blob([new Uint8Array([0x89, 0x50])]), 'Lake\nbei Zürich 🌅', 'cid-3', null, (f) => progress.push(f));
    expect(fake.calls[0]!.cmd).toBe('send_photo');
    expect(Array.from(fake.calls[0]!.args as Uint8Array)).toEqual([0x89, 0x50]);
    expect(fake.calls[0]!.options).toEqual({
      headers: { 'x-conversation': '3', 'x-client-id': 'cid-3', 'x-caption': 'Lake%0Abei%20Z%C3%BCrich%20%F0%9F%8C%85', 'x-progress': '__CHANNEL__:1' },
    });
    expect(decodeURIComponent((fake.calls[0]!.options as { headers: Record<string, string> }).headers['x-caption']!)).toBe('Lake\nbei Zürich 🌅');
    expect(progress).toEqual([0.5, 1]);
    await api.sendPhoto(3, new Blob([new Uint8Array([1])]), '', 'cid-4', 41);
    expect(fake.calls[1]!.options).toMatchObject({ headers: { 'x-client-id': 'cid-4', 'x-reply-to': '41', 'x-caption': '' } });
  });

  it('passes a refused photo on as ApiError', async () => {
    const { ipc } = fakeIpc({
      send_photo: () => {
        throw { code: 'unsupported_media_type', message: 'not a png, jpeg, gif or webp image', status: 415 };
      },
    });
    const err = await new TauriApiClient(ipc).sendPhoto(3, new Blob([new Uint8Array([1])]), '', 'cid-5', null).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 415, code: 'unsupported_media_type', message: 'not a png, jpeg, gif or webp image' });
  });

  it('picks a photo in the native dialog: its bytes as a File, nothing when cancelled', async () => {
    let answer = new Uint8Array([0xff, 0xd8, 0xff]).buffer;
    const { ipc, calls } = fakeIpc({ pick_photo: () => answer });
    const api = new TauriApiClient(ipc);
    const file = await api.pickPhoto();
    expect(calls[0]).toEqual({ cmd: 'pick_photo', args: undefined, options: undefined });
    expect(file).toBeInstanceOf(File);
    expect(file!.name).toBe('photo');
    expect(Array.from(new Uint8Array(await file!.arrayBuffer()))).toEqual([0xff, 0xd8, 0xff]);
    answer = new ArrayBuffer(0);
    expect(await api.pickPhoto()).toBeNull();
  });

  it('plays voice files from their bytes (WebKitGTK cannot stream them through chatmedia)', async () => {
    const { ipc, calls } = fakeIpc({ media_file: () => new Uint8Array([0x4f, 0x67, 0x67, 0x53]).buffer });
    const api = new TauriApiClient(ipc);
    const url = await api.audioUrl('/api/files/42', 'audio/ogg; codecs=opus');
    expect(calls[0]).toEqual({ cmd: 'media_file', args: { path: '/api/files/42' }, options: undefined });
    expect(url).toMatch(/^blob:/);
    const blob = await (await fetch(url)).blob();
    expect(blob.type.replace(/; /, ';')).toBe('audio/ogg;codecs=opus');
    expect(Array.from(new Uint8Array(await blob.arrayBuffer()))).toEqual([0x4f, 0x67, 0x67, 0x53]);
    URL.revokeObjectURL(url);
  });

  it('uploads an avatar with its type and progress from the Rust side', async () => {
    const fake = fakeIpc({
      upload_avatar: () => {
        fake.channels[0]!(0.25);
        fake.channels[0]!(0.75);
        return me;
      },
    });
    const api = new TauriApiClient(fake.ipc);
    const progress: number[] = [];
    await api.uploadAvatar(new Blob([new Uint8Array([9, 9])], { type: 'image/png' }), (f) => progress.push(f));
    expect(fake.calls[0]!.options).toEqual({ headers: { 'x-mime': 'image/png', 'x-progress': '__CHANNEL__:1' } });
    expect(progress).toEqual([0.25, 0.75, 1]);
  });
});

describe('NativeVoiceRecorder', () => {
  it('streams level updates, hands over the WAV, and the Rust side uploads it with progress', async () => {
    const wav = new Uint8Array([82, 73, 70, 70]).buffer;
    const fake = fakeIpc({
      recorder_stop: () => ({ id: 9, duration_ms: 2500, message: null, bytes: 100, sample_rate: 48000, ended: null }),
      recording_wav: () => wav,
      recording_send: () => ({ id: 77 }),
    });
    const rec = new NativeVoiceRecorder(fake.ipc);
    const updates: unknown[] = [];
    await rec.start((u) => updates.push(u));
    expect(fake.calls.map((c) => c.cmd)).toEqual(['recorder_start']);
    fake.emit(RECORDER, { type: 'level', level: 0.4, elapsed_ms: 300 });
    fake.emit(RECORDER, { type: 'ended', reason: 'device_lost', message: 'The microphone stopped working. What was recorded is kept.', elapsed_ms: 900 });
    expect(updates).toEqual([
      { kind: 'level', level: 0.4, elapsedMs: 300 },
      { kind: 'ended', message: 'The microphone stopped working. What was recorded is kept.', elapsedMs: 900 },
    ]);
    rec.pause();
    rec.resume();
    const audio = await rec.stop();
    expect(fake.listening(RECORDER)).toBe(0);
    expect(audio.durationMs).toBe(2500);
    expect(audio.blob.type).toBe('audio/wav');
    expect(audio.blob.size).toBe(4);

    const api = new TauriApiClient(fake.ipc);
    const progress: number[] = [];
    const m = await api.sendVoice(4, audio.blob, 'cid-9', 12, (f) => progress.push(f));
    expect(m).toEqual({ id: 77 });
    const send = fake.calls.find((c) => c.cmd === 'recording_send')!;
    expect(send.args).toMatchObject({ id: 9, conversation: 4, clientId: 'cid-9', replyToId: 12 });
    fake.channels[0]!(0.5);
    fake.channels[0]!(1);
    expect(progress).toEqual([0.5, 1]);
    expect(fake.calls.map((c) => c.cmd)).toEqual(['recorder_start', 'recorder_pause', 'recorder_resume', 'recorder_stop', 'recording_wav', 'recording_send']);
  });

  it('reports a missing microphone with the Rust side\'s message', async () => {
    const fake = fakeIpc({
      recorder_start: () => Promise.reject({ status: 0, code: 'recorder_error', message: 'No microphone was found.', retry_after: null }),
    });
    const rec = new NativeVoiceRecorder(fake.ipc);
    await expect(rec.start(() => {})).rejects.toThrow('No microphone was found.');
    expect(fake.listening(RECORDER)).toBe(0);
  });

  it('cancel and discard free the recording on the Rust side', async () => {
    const fake = fakeIpc({ recorder_stop: () => ({ id: 3, duration_ms: 10, message: null }), recording_wav: () => new ArrayBuffer(2) });
    const rec = new NativeVoiceRecorder(fake.ipc);
    await rec.start(() => {});
    const audio = await rec.stop();
    rec.discard(audio);
    const other = new NativeVoiceRecorder(fake.ipc);
    await other.start(() => {});
    other.cancel();
    await Promise.resolve();
    expect(fake.calls.filter((c) => c.cmd === 'recording_discard' || c.cmd === 'recorder_cancel')).toEqual([
      { cmd: 'recording_discard', args: { id: 3 }, options: undefined },
      { cmd: 'recorder_cancel', args: undefined, options: undefined },
    ]);
  });
});

describe('TauriRealtimeClient', () => {
  it('starts the Rust connection with the cursors and passes events and states on', async () => {
    const fake = fakeIpc();
    const rt = new TauriRealtimeClient(fake.ipc);
    const states: ConnectionState[] = [];
    const events: ServerEvent[] = [];
    rt.onState((s) => states.push(s));
    rt.onEvent((e) => events.push(e));
    rt.start(() => ({ '7': 12 }));
    await vi.waitFor(() => expect(fake.calls.map((c) => c.cmd)).toContain('realtime_start'));
    expect(fake.calls[0]).toMatchObject({ cmd: 'realtime_start', args: { cursors: { '7': 12 } } });
    fake.emit(STATE, { kind: 'syncing' });
    fake.emit(EVENT, { type: 'synced' });
    fake.emit(STATE, { kind: 'live' });
    fake.emit(STATE, { kind: 'reconnecting', attempt: 2, retry_in_ms: 1000 });
    fake.emit(STATE, { kind: 'session_ended' });
    expect(events).toEqual([{ type: 'synced' }]);
    expect(states.map((s) => s.kind)).toEqual(['stopped', 'connecting', 'syncing', 'live', 'reconnecting', 'ended']);
    const rec = states[4] as { kind: 'reconnecting'; attempt: number; retryAt: number };
    expect(rec.attempt).toBe(2);
    expect(rec.retryAt).toBeGreaterThan(Date.now());

    expect(rt.send({ type: 'send', conversation_id: 7, client_id: 'c1', body: 'hi' })).toBe(true);
    expect(fake.calls.at(-1)).toMatchObject({ cmd: 'realtime_send', args: { event: { type: 'send', conversation_id: 7, client_id: 'c1', body: 'hi' } } });
    expect(rt.send({ type: 'played', conversation_id: 7, seq: 3 })).toBe(true);
    expect(fake.calls.at(-1)).toMatchObject({ cmd: 'realtime_send', args: { event: { type: 'played', conversation_id: 7, seq: 3 } } });

    rt.stop();
    expect(fake.listening(EVENT)).toBe(0);
    expect(fake.listening(STATE)).toBe(0);
    expect(fake.calls.at(-1)!.cmd).toBe('realtime_stop');
    expect(rt.send({ type: 'ping' })).toBe(false);
  });
});

describe('Notifier', () => {
  it('shows one notification per conversation, counting the unseen ones', () => {
    const shown: Note[] = [];
    const n = new Notifier((x) => shown.push(x));
    n.state({ kind: 'live' });
    n.message(1, 'Ben', 'hi');
    n.message(1, 'Ben', 'are you there?');
    n.message(2, 'Cat', 'lunch?');
    expect(shown).toEqual([
      { conversationId: 1, title: 'Ben', body: 'hi' },
      { conversationId: 1, title: 'Ben', body: '2 new messages · are you there?' },
      { conversationId: 2, title: 'Cat', body: 'lunch?' },
    ]);
    n.seen();
    n.message(1, 'Ben', 'again');
    expect(shown.at(-1)).toEqual({ conversationId: 1, title: 'Ben', body: 'again' });
  });

  it('after a disconnection, shows one summary per conversation once live, not a burst', () => {
    const shown: Note[] = [];
    const n = new Notifier((x) => shown.push(x));
    n.state({ kind: 'live' });
    n.state({ kind: 'reconnecting', attempt: 1, retryAt: 0 });
    n.state({ kind: 'syncing' });
    for (let i = 0; i < 30; i++) n.message(1, 'Ben', `message ${i}`);
    n.message(2, 'Cat', 'only one');
    expect(shown).toEqual([]);
    n.state({ kind: 'live' });
    expect(shown).toEqual([
      { conversationId: 1, title: 'Ben', body: '30 new messages' },
      { conversationId: 2, title: 'Cat', body: 'only one' },
    ]);
  });
});

describe('desktopPlatform', () => {
  it('reconnects when the network is back and opens the conversation of a clicked notification', () => {
    const { ipc, calls, emit } = fakeIpc();
    const win = new EventTarget();
    vi.stubGlobal('window', win);
    try {
      const kept = new Map<string, string>();
      const storage = { getItem: (k: string) => kept.get(k) ?? null, setItem: (k: string, v: string) => void kept.set(k, v), removeItem: (k: string) => void kept.delete(k) };
      const platform = desktopPlatform(ipc, storage);
      const opened: number[] = [];
      platform.onOpenConversation((id) => opened.push(id));
      expect(calls.filter((c) => c.cmd === 'realtime_reconnect')).toHaveLength(0);
      win.dispatchEvent(new Event('online'));
      expect(calls.filter((c) => c.cmd === 'realtime_reconnect')).toHaveLength(1);
      emit(OPEN, 42);
      expect(opened).toEqual([42]);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
