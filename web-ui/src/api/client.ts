//! The API client the screens talk to: an interface, a typed error, and the
//! browser implementation (fetch + session cookie + CSRF header).
//! Screens depend on `ApiClient` only; they never build URLs or read cookies.

import type { AuthResult, Conversation, LoginInput, Me, RegisterInput } from './types';

export interface ApiClient {
  register(input: RegisterInput): Promise<AuthResult>;
  login(input: LoginInput): Promise<AuthResult>;
  logout(): Promise<void>;
  me(): Promise<Me>;
  conversations(): Promise<Conversation[]>;
}

/** A failed call: the server's `{"error":{"code","message"}}` plus the HTTP status.
 *  status 0 means the request never got an answer (network down, server gone). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Text a screen can show for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error && err.message) return err.message;
  return 'Something went wrong. Please try again.';
}

const CSRF_COOKIE = 'chatapp_csrf';
const CSRF_HEADER = 'X-CSRF-Token';

function readCookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
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

async function toApiError(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (proxy page, empty body): fall through to a generic error
  }
  const e = isRecord(body) ? body.error : undefined;
  if (isRecord(e) && typeof e.code === 'string' && typeof e.message === 'string') {
    return new ApiError(res.status, e.code, e.message);
  }
  return new ApiError(
    res.status,
    `http_${res.status}`,
    `The server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.`,
  );
}

/** Browser transport: same-origin requests carrying the HttpOnly session cookie. */
export class FetchApiClient implements ApiClient {
  constructor(private readonly baseUrl = '') {}

  register(input: RegisterInput): Promise<AuthResult> {
    return this.json<AuthResult>('POST', '/api/auth/register', input);
  }

  login(input: LoginInput): Promise<AuthResult> {
    return this.json<AuthResult>('POST', '/api/auth/login', input);
  }

  async logout(): Promise<void> {
    await this.send('POST', '/api/auth/logout');
  }

  me(): Promise<Me> {
    return this.json<Me>('GET', '/api/me');
  }

  conversations(): Promise<Conversation[]> {
    return this.json<Conversation[]>('GET', '/api/conversations');
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
      headers.set('Content-Type', 'application/json');
      const csrf = readCookie(CSRF_COOKIE);
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
    if (!res.ok) throw await toApiError(res);
    return res;
  }
}
