//! The browser's `ApiClient`: same-origin fetch with the HttpOnly session cookie, the
//! `X-CSRF-Token` header (from the readable `chatapp_csrf` cookie) on state-changing
//! requests, and XMLHttpRequest for uploads (fetch cannot report upload progress).
//! The only file that knows the REST paths.

import { ApiError, type ApiClient, type Progress } from './client';
import type {
  AddMembersRequest,
  AdminAction,
  AdminUser,
  AdminUserQuery,
  AdminUserUpdate,
  AuthResponse,
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
  ServerInfo,
  UpdateConversationRequest,
  UpdateMeRequest,
  User,
  UserSearchQuery,
  UserWithPassword,
} from './generated';

const CSRF_COOKIE = 'chatapp_csrf';
const CSRF_HEADER = 'X-CSRF-Token';

export function readCookie(cookies: string, name: string): string | null {
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Builds the ApiError for a non-2xx answer from its status, body text and Retry-After. */
export function toApiError(status: number, statusText: string, bodyText: string, retryAfter: string | null): ApiError {
  let body: unknown = null;
  try {
    body = JSON.parse(bodyText);
  } catch {
    // not JSON (proxy page, empty body)
  }
  const wait = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null;
  const e = isRecord(body) ? body.error : undefined;
  if (isRecord(e) && typeof e.code === 'string' && typeof e.message === 'string') {
    return new ApiError(status, e.code, e.message, wait);
  }
  return new ApiError(status, `http_${status}`, `The server answered ${status}${statusText ? ` ${statusText}` : ''}.`, wait);
}

function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export class FetchApiClient implements ApiClient {
  constructor(private readonly baseUrl = '') {}

  serverInfo(): Promise<ServerInfo> {
    return this.json('GET', '/api/server');
  }
  register(input: RegisterRequest): Promise<AuthResponse> {
    return this.json('POST', '/api/auth/register', input);
  }
  login(input: LoginRequest): Promise<AuthResponse> {
    return this.json('POST', '/api/auth/login', input);
  }
  async logout(): Promise<void> {
    await this.send('POST', '/api/auth/logout');
  }
  me(): Promise<Me> {
    return this.json('GET', '/api/me');
  }
  updateMe(input: UpdateMeRequest): Promise<Me> {
    return this.json('PATCH', '/api/me', input);
  }
  uploadAvatar(file: Blob, onProgress?: Progress): Promise<Me> {
    return this.upload<Me>('PUT', '/api/me/avatar', file, {}, onProgress);
  }
  deleteAvatar(): Promise<Me> {
    return this.json('DELETE', '/api/me/avatar');
  }
  async deleteAccount(input: DeleteAccountRequest): Promise<void> {
    await this.send('DELETE', '/api/me', input);
  }
  searchUsers(q: UserSearchQuery): Promise<User[]> {
    return this.json('GET', `/api/users${query({ q: q.q, limit: q.limit })}`);
  }
  user(id: number): Promise<User> {
    return this.json('GET', `/api/users/${id}`);
  }
  conversations(): Promise<Conversation[]> {
    return this.json('GET', '/api/conversations');
  }
  conversation(id: number): Promise<Conversation> {
    return this.json('GET', `/api/conversations/${id}`);
  }
  createConversation(input: CreateConversationRequest): Promise<Conversation> {
    return this.json('POST', '/api/conversations', input);
  }
  updateConversation(id: number, input: UpdateConversationRequest): Promise<Conversation> {
    return this.json('PATCH', `/api/conversations/${id}`, input);
  }
  addMembers(id: number, input: AddMembersRequest): Promise<Conversation> {
    return this.json('POST', `/api/conversations/${id}/members`, input);
  }
  async removeMember(id: number, userId: number): Promise<void> {
    await this.send('DELETE', `/api/conversations/${id}/members/${userId}`);
  }
  history(id: number, q: HistoryQuery): Promise<MessagePage> {
    const params = { before_seq: q.before_seq, after_seq: q.after_seq, around_seq: q.around_seq, limit: q.limit };
    return this.json('GET', `/api/conversations/${id}/messages${query(params)}`);
  }
  sendMessage(id: number, input: SendMessageRequest): Promise<Message> {
    return this.json('POST', `/api/conversations/${id}/messages`, input);
  }
  sendVoice(id: number, file: Blob, clientId: string, replyToId: number | null, onProgress?: Progress): Promise<Message> {
    const fields: Record<string, string> = { client_id: clientId };
    if (replyToId !== null) fields.reply_to_id = String(replyToId);
    return this.upload<Message>('POST', `/api/conversations/${id}/voice`, file, fields, onProgress);
  }
  sendPhoto(id: number, file: Blob, caption: string, clientId: string, replyToId: number | null, onProgress?: Progress): Promise<Message> {
    const fields: Record<string, string> = { client_id: clientId };
    if (caption !== '') fields.caption = caption;
    if (replyToId !== null) fields.reply_to_id = String(replyToId);
    return this.upload<Message>('POST', `/api/conversations/${id}/photos`, file, fields, onProgress);
  }
  markRead(id: number, seq: number): Promise<ReadState> {
    return this.json('POST', `/api/conversations/${id}/read`, { seq });
  }
  editMessage(id: number, seq: number, input: EditMessageRequest): Promise<Message> {
    return this.json('PATCH', `/api/conversations/${id}/messages/${seq}`, input);
  }
  deleteMessage(id: number, seq: number): Promise<Message> {
    return this.json('DELETE', `/api/conversations/${id}/messages/${seq}`);
  }
  react(id: number, seq: number, emoji: string, on: boolean): Promise<Message> {
    return this.json(on ? 'PUT' : 'DELETE', `/api/conversations/${id}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`);
  }
  markPlayed(id: number, seq: number): Promise<Message> {
    return this.json('POST', `/api/conversations/${id}/messages/${seq}/played`);
  }
  updateSettings(id: number, input: ConversationSettings): Promise<Conversation> {
    return this.json('PUT', `/api/conversations/${id}/settings`, input);
  }
  searchMessages(q: SearchQuery): Promise<SearchResults> {
    return this.json('GET', `/api/search${query({ q: q.q, before_id: q.before_id, limit: q.limit })}`);
  }
  adminUsers(q: AdminUserQuery): Promise<AdminUser[]> {
    return this.json('GET', `/api/admin/users${query({ q: q.q, limit: q.limit })}`);
  }
  adminCreateUser(input: CreateUserRequest): Promise<UserWithPassword> {
    return this.json('POST', '/api/admin/users', input);
  }
  adminUpdateUser(id: number, input: AdminUserUpdate): Promise<AdminUser> {
    return this.json('PATCH', `/api/admin/users/${id}`, input);
  }
  adminResetPassword(id: number): Promise<UserWithPassword> {
    return this.json('POST', `/api/admin/users/${id}/password`);
  }
  invites(): Promise<Invite[]> {
    return this.json('GET', '/api/admin/invites');
  }
  createInvite(input: CreateInviteRequest): Promise<Invite> {
    return this.json('POST', '/api/admin/invites', input);
  }
  revokeInvite(id: number): Promise<Invite> {
    return this.json('DELETE', `/api/admin/invites/${id}`);
  }
  adminActions(): Promise<AdminAction[]> {
    return this.json('GET', '/api/admin/actions');
  }
  mediaUrl(path: string): string {
    return this.baseUrl + path;
  }

  private csrf(): string | null {
    return typeof document === 'undefined' ? null : readCookie(document.cookie, CSRF_COOKIE);
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    try {
      return (await res.json()) as T;
    } catch {
      throw new ApiError(res.status, 'invalid_response', 'The server sent an unreadable answer.');
    }
  }

  /** Performs the request; resolves only for 2xx, otherwise throws ApiError. */
  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    const headers = new Headers({ Accept: 'application/json' });
    if (method !== 'GET' && method !== 'HEAD') {
      if (body !== undefined) headers.set('Content-Type', 'application/json');
      const csrf = this.csrf();
      if (csrf !== null) headers.set(CSRF_HEADER, csrf);
    }
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers,
        credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection.');
    }
    if (!res.ok) throw toApiError(res.status, res.statusText, await res.text().catch(() => ''), res.headers.get('Retry-After'));
    return res;
  }

  /** Multipart upload of one `file` (after the text `fields`: client_id, caption…) with progress. */
  private upload<T>(method: string, path: string, file: Blob, fields: Record<string, string>, onProgress?: Progress): Promise<T> {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', file, file instanceof File ? file.name : 'upload');
    return new Promise<T>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, this.baseUrl + path);
      xhr.withCredentials = true;
      xhr.setRequestHeader('Accept', 'application/json');
      const csrf = this.csrf();
      if (csrf !== null) xhr.setRequestHeader(CSRF_HEADER, csrf);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
      };
      xhr.onerror = () => reject(new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection.'));
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            resolve(JSON.parse(xhr.responseText) as T);
          } catch {
            reject(new ApiError(xhr.status, 'invalid_response', 'The server sent an unreadable answer.'));
          }
        } else {
          reject(toApiError(xhr.status, xhr.statusText, xhr.responseText, xhr.getResponseHeader('Retry-After')));
        }
      };
      xhr.send(form);
    });
  }
}
