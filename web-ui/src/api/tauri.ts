//! The desktop app's implementations behind the client seam. Every call is a Tauri
//! command and every event a Tauri event, answered by the app's Rust side, which holds
//! the session token (in the OS keychain) and talks to the server through
//! `chatapp-client`: no token or cookie lives in this webview, and it sends no request to
//! the server itself (it gets the server's address only to show it). Server files
//! (photos, avatars) load through the app's `chatmedia:` scheme, voice files as their bytes
//! when first played (`audioUrl`: WebKitGTK cannot stream audio from that scheme); voice is
//! recorded natively and photos are chosen in a native file dialog.
//! `invoke`/`listen` are passed in, so unit tests can stand in for the IPC boundary.

import { ApiError, type ApiClient, type ConnectionState, type Progress, type RealtimeClient, type ServerChoice } from './client';
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
import type { AppEvent, CallError, Command, RecorderEvent, RecordingInfo, ServerSecurity as NativeServerSecurity, UiState } from './generated/desktop';
import type { RecordedAudio, RecorderUpdate, VoiceRecorder } from './recorder';

/** Tauri's `invoke`: a command name (one the app has: generated from its Rust side), its
 *  arguments (or raw bytes) and options. */
export type Invoke = <T>(cmd: Command, args?: Record<string, unknown> | Uint8Array, options?: { headers: Record<string, string> }) => Promise<T>;
/** Tauri's `listen`: resolves to the function that stops listening. */
export type Listen = <T>(event: AppEvent, handler: (e: { payload: T }) => void) => Promise<() => void>;
/** Makes a channel the Rust side can stream values into (Tauri's `Channel`; its JSON
 *  form names it, also in a header of a raw-bytes call). */
export type MakeChannel = <T>(onMessage: (value: T) => void) => { toJSON(): string };

export interface TauriIpc {
  invoke: Invoke;
  listen: Listen;
  channel: MakeChannel;
  /** `convertFileSrc(path, 'chatmedia')`. */
  mediaSrc: (path: string) => string;
}

export const EVENT: AppEvent = 'chatapp://event';
export const STATE: AppEvent = 'chatapp://state';
export const RECORDER: AppEvent = 'chatapp://recorder';

function isCallError(v: unknown): v is CallError {
  return typeof v === 'object' && v !== null && typeof (v as CallError).code === 'string' && typeof (v as CallError).message === 'string';
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (isCallError(err)) return new ApiError(err.status ?? 0, err.code, err.message, err.retry_after ?? null);
  return new ApiError(0, 'ipc_error', typeof err === 'string' ? err : 'The app could not do that. Please try again.');
}

/** Recordings made by the native recorder, by the Blob handed to the screens. */
const nativeRecordings = new WeakMap<Blob, number>();

export class TauriApiClient implements ApiClient {
  readonly server: ServerChoice;

  constructor(private readonly ipc: TauriIpc) {
    this.server = {
      get: () => this.call<string | null>('server_get'),
      set: (url: string) => this.call<string>('server_set', { url }),
      security: () => this.call<NativeServerSecurity | null>('server_security'),
    };
  }

  private async call<T>(cmd: Command, args?: Record<string, unknown>): Promise<T> {
    try {
      return await this.ipc.invoke<T>(cmd, args);
    } catch (e) {
      throw toApiError(e);
    }
  }

  serverInfo(): Promise<ServerInfo> {
    return this.call('server_info');
  }
  register(input: RegisterRequest): Promise<AuthResponse> {
    return this.call('register', { input });
  }
  login(input: LoginRequest): Promise<AuthResponse> {
    return this.call('login', { input });
  }
  logout(): Promise<void> {
    return this.call('logout');
  }
  forgetSession(): Promise<void> {
    return this.call('forget_session');
  }
  me(): Promise<Me> {
    return this.call('me');
  }
  updateMe(input: UpdateMeRequest): Promise<Me> {
    return this.call('update_me', { input });
  }
  async uploadAvatar(file: Blob, onProgress?: Progress): Promise<Me> {
    const bytes = new Uint8Array(await file.arrayBuffer());
    // The Rust side uploads it and reports progress (0–1) on this channel.
    const progress = this.ipc.channel<number>((f) => onProgress?.(f));
    try {
      const me = await this.ipc.invoke<Me>('upload_avatar', bytes, {
        headers: { 'x-mime': file.type || 'application/octet-stream', 'x-progress': progress.toJSON() },
      });
      onProgress?.(1);
      return me;
    } catch (e) {
      throw toApiError(e);
    }
  }
  deleteAvatar(): Promise<Me> {
    return this.call('delete_avatar');
  }
  /** The Rust side forgets the keychain token and the local files once the server
   *  deleted the account (as at sign-out). */
  deleteAccount(input: DeleteAccountRequest): Promise<void> {
    return this.call('delete_account', { password: input.password });
  }
  searchUsers(query: UserSearchQuery): Promise<User[]> {
    return this.call('search_users', { query });
  }
  user(id: number): Promise<User> {
    return this.call('user', { id });
  }
  conversations(): Promise<Conversation[]> {
    return this.call('conversations');
  }
  conversation(id: number): Promise<Conversation> {
    return this.call('conversation', { id });
  }
  createConversation(input: CreateConversationRequest): Promise<Conversation> {
    return this.call('create_conversation', { input });
  }
  updateConversation(id: number, input: UpdateConversationRequest): Promise<Conversation> {
    return this.call('update_conversation', { id, input });
  }
  addMembers(id: number, input: AddMembersRequest): Promise<Conversation> {
    return this.call('add_members', { id, input });
  }
  removeMember(id: number, userId: number): Promise<void> {
    return this.call('remove_member', { id, user: userId });
  }
  history(id: number, query: HistoryQuery): Promise<MessagePage> {
    return this.call('history', { id, query });
  }
  sendMessage(id: number, input: SendMessageRequest): Promise<Message> {
    return this.call('send_message', { id, input });
  }
  async sendVoice(id: number, file: Blob, clientId: string, replyToId: number | null, onProgress?: Progress): Promise<Message> {
    const recording = nativeRecordings.get(file);
    if (recording !== undefined) {
      // Recorded natively: the Rust side uploads the file it already holds.
      const progress = this.ipc.channel<number>((f) => onProgress?.(f));
      return this.call('recording_send', { id: recording, conversation: id, clientId, replyToId, progress });
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    const progress = this.ipc.channel<number>((f) => onProgress?.(f));
    try {
      const m = await this.ipc.invoke<Message>('send_voice', bytes, {
        headers: {
          'x-conversation': String(id),
          'x-client-id': clientId,
          ...(replyToId !== null ? { 'x-reply-to': String(replyToId) } : {}),
          'x-progress': progress.toJSON(),
        },
      });
      onProgress?.(1);
      return m;
    } catch (e) {
      throw toApiError(e);
    }
  }
  /** Raw bytes, as `send_voice`; the caption percent-encoded (a header carries no newline
   *  or non-ASCII text). */
  async sendPhoto(id: number, file: Blob, caption: string, clientId: string, replyToId: number | null, onProgress?: Progress): Promise<Message> {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const progress = this.ipc.channel<number>((f) => onProgress?.(f));
    try {
      const m = await this.ipc.invoke<Message>('send_photo', bytes, {
        headers: {
          'x-conversation': String(id),
          'x-client-id': clientId,
          ...(replyToId !== null ? { 'x-reply-to': String(replyToId) } : {}),
          'x-caption': encodeURIComponent(caption),
          'x-progress': progress.toJSON(),
        },
      });
      onProgress?.(1);
      return m;
    } catch (e) {
      throw toApiError(e);
    }
  }
  /** The app's native file dialog: the chosen file's bytes (none: cancelled). */
  async pickPhoto(): Promise<File | null> {
    const bytes = await this.call<ArrayBuffer>('pick_photo');
    return bytes.byteLength === 0 ? null : new File([bytes], 'photo', { type: '' });
  }
  markRead(id: number, seq: number): Promise<ReadState> {
    return this.call('mark_read', { id, seq });
  }
  editMessage(id: number, seq: number, input: EditMessageRequest): Promise<Message> {
    return this.call('edit_message', { id, seq, input });
  }
  deleteMessage(id: number, seq: number): Promise<Message> {
    return this.call('delete_message', { id, seq });
  }
  react(id: number, seq: number, emoji: string, on: boolean): Promise<Message> {
    return this.call('react', { id, seq, emoji, on });
  }
  markPlayed(id: number, seq: number): Promise<Message> {
    return this.call('mark_played', { id, seq });
  }
  updateSettings(id: number, input: ConversationSettings): Promise<Conversation> {
    return this.call('update_settings', { id, input });
  }
  searchMessages(query: SearchQuery): Promise<SearchResults> {
    return this.call('search_messages', { query });
  }
  adminUsers(query: AdminUserQuery): Promise<AdminUser[]> {
    return this.call('admin_users', { query });
  }
  adminCreateUser(input: CreateUserRequest): Promise<UserWithPassword> {
    return this.call('admin_create_user', { input });
  }
  adminUpdateUser(id: number, input: AdminUserUpdate): Promise<AdminUser> {
    return this.call('admin_update_user', { id, input });
  }
  adminResetPassword(id: number): Promise<UserWithPassword> {
    return this.call('admin_reset_password', { id });
  }
  invites(): Promise<Invite[]> {
    return this.call('invites');
  }
  createInvite(input: CreateInviteRequest): Promise<Invite> {
    return this.call('create_invite', { input });
  }
  revokeInvite(id: number): Promise<Invite> {
    return this.call('revoke_invite', { id });
  }
  adminActions(): Promise<AdminAction[]> {
    return this.call('admin_actions');
  }
  mediaUrl(path: string): string {
    return this.ipc.mediaSrc(path);
  }
  async audioUrl(path: string, mime: string): Promise<string> {
    try {
      const bytes = await this.ipc.invoke<ArrayBuffer>('media_file', { path });
      return URL.createObjectURL(new Blob([bytes], { type: mime }));
    } catch (e) {
      throw toApiError(e);
    }
  }
}

export function toConnectionState(s: UiState, now: number = Date.now()): ConnectionState {
  switch (s.kind) {
    case 'reconnecting':
      return { kind: 'reconnecting', attempt: s.attempt, retryAt: now + s.retry_in_ms };
    case 'session_ended':
      return { kind: 'ended' };
    default:
      return { kind: s.kind };
  }
}

export class TauriRealtimeClient implements RealtimeClient {
  private running = false;
  private unlisten: (() => void)[] = [];
  private readonly eventListeners = new Set<(e: ServerEvent) => void>();
  private readonly stateListeners = new Set<(s: ConnectionState) => void>();
  state: ConnectionState = { kind: 'stopped' };

  constructor(private readonly ipc: TauriIpc) {}

  start(getCursors: () => Record<string, number>, getChanges?: () => Record<string, number>): void {
    if (this.running) return;
    this.running = true;
    this.setState({ kind: 'connecting' });
    void (async () => {
      const offEvent = await this.ipc.listen<ServerEvent>(EVENT, (e) => {
        for (const l of this.eventListeners) l(e.payload);
      });
      const offState = await this.ipc.listen<UiState>(STATE, (e) => this.setState(toConnectionState(e.payload)));
      if (!this.running) {
        offEvent();
        offState();
        return;
      }
      this.unlisten.push(offEvent, offState);
      try {
        await this.ipc.invoke('realtime_start', { cursors: getCursors(), changes: getChanges?.() ?? {} });
      } catch {
        this.setState({ kind: 'stopped' });
      }
    })();
  }

  stop(): void {
    this.running = false;
    for (const u of this.unlisten) u();
    this.unlisten = [];
    void this.ipc.invoke('realtime_stop').catch(() => {});
    this.setState({ kind: 'stopped' });
  }

  /** The Rust side's outbox keeps a send until it is acknowledged. */
  send(event: ClientEvent): boolean {
    if (!this.running) return false;
    void this.ipc.invoke('realtime_send', { event }).catch(() => {});
    return true;
  }

  onEvent(listener: (event: ServerEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    for (const l of this.stateListeners) l(state);
  }
}


/** The desktop's `VoiceRecorder`: cpal + hound on the Rust side, a WAV to preview. */
export class NativeVoiceRecorder implements VoiceRecorder {
  private off: (() => void) | null = null;
  private recordingId: number | null = null;

  constructor(private readonly ipc: TauriIpc) {}

  async start(onUpdate: (u: RecorderUpdate) => void): Promise<void> {
    this.off = await this.ipc.listen<RecorderEvent>(RECORDER, ({ payload: e }) => {
      if (e.type === 'level') onUpdate({ kind: 'level', level: e.level, elapsedMs: e.elapsed_ms });
      else if (e.type === 'ended') onUpdate({ kind: 'ended', message: e.message, elapsedMs: e.elapsed_ms });
    });
    try {
      await this.ipc.invoke('recorder_start');
    } catch (e) {
      this.release();
      throw toApiError(e);
    }
  }

  pause(): void {
    void this.ipc.invoke('recorder_pause').catch(() => {});
  }

  resume(): void {
    void this.ipc.invoke('recorder_resume').catch(() => {});
  }

  async stop(): Promise<RecordedAudio> {
    this.release();
    try {
      const info = await this.ipc.invoke<RecordingInfo>('recorder_stop');
      this.recordingId = info.id;
      const wav = await this.ipc.invoke<ArrayBuffer>('recording_wav', { id: info.id });
      const blob = new Blob([wav], { type: 'audio/wav' });
      nativeRecordings.set(blob, info.id);
      return { blob, durationMs: info.duration_ms, notice: info.message };
    } catch (e) {
      throw toApiError(e);
    }
  }

  cancel(): void {
    this.release();
    void this.ipc.invoke('recorder_cancel').catch(() => {});
  }

  discard(audio: RecordedAudio): void {
    const id = nativeRecordings.get(audio.blob) ?? this.recordingId;
    if (id !== null && id !== undefined) void this.ipc.invoke('recording_discard', { id }).catch(() => {});
  }

  private release(): void {
    this.off?.();
    this.off = null;
  }
}
