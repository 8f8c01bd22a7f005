//! The browser's `RealtimeClient`: one WebSocket to `/api/ws` (the session cookie
//! authenticates it), kept open by reconnecting with backoff and jitter after any drop.
//! Every connection starts with `resume {cursors}` so that missed messages arrive first,
//! then `synced`. A ping every `pingMs` notices a dead connection the OS has not.

import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import type { ConnectionState, RealtimeClient } from './client';
import type { ClientEvent, ServerEvent } from './generated';

/** The part of the WebSocket API used here (tests pass a fake). */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: string): void;
  close(): void;
}

export interface WsOptions {
  /** Opens a socket to the server's `/api/ws`. */
  connect: () => SocketLike;
  backoff?: BackoffOptions;
  random?: () => number;
  /** Ping interval; the connection is dropped when nothing arrives for 2.5 of them. */
  pingMs?: number;
}

const OPEN = 1;
/** The close code the server uses when the session was signed out or revoked. */
export const SESSION_ENDED = 4001;

export class WebSocketRealtimeClient implements RealtimeClient {
  private socket: SocketLike | null = null;
  private attempt = 0;
  private running = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private getCursors: () => Record<string, number> = () => ({});
  private getChanges: (() => Record<string, number>) | null = null;
  private readonly eventListeners = new Set<(e: ServerEvent) => void>();
  private readonly stateListeners = new Set<(s: ConnectionState) => void>();
  state: ConnectionState = { kind: 'stopped' };

  constructor(private readonly opts: WsOptions) {}

  /** The browser default: `ws(s)://<this origin>/api/ws`. */
  static forPage(): WebSocketRealtimeClient {
    const url = new URL('/api/ws', window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return new WebSocketRealtimeClient({ connect: () => new WebSocket(url) as unknown as SocketLike });
  }

  start(getCursors: () => Record<string, number>, getChanges?: () => Record<string, number>): void {
    this.getCursors = getCursors;
    this.getChanges = getChanges ?? null;
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.open();
  }

  stop(): void {
    this.running = false;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stopPing();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = null;
      s.onmessage = null;
      s.close();
    }
    this.setState({ kind: 'stopped' });
  }

  send(event: ClientEvent): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false;
    try {
      this.socket.send(JSON.stringify(event));
      return true;
    } catch {
      return false;
    }
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

  private open(): void {
    if (!this.running) return;
    this.setState(this.attempt === 0 ? { kind: 'connecting' } : this.state);
    let socket: SocketLike;
    try {
      socket = this.opts.connect();
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.lastFrameAt = Date.now();
      this.setState({ kind: 'syncing' });
      const changes = this.getChanges?.();
      socket.send(JSON.stringify({ type: 'resume', cursors: this.getCursors(), ...(changes ? { changes } : {}) } satisfies ClientEvent));
      this.startPing(socket);
    };
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      this.lastFrameAt = Date.now();
      if (typeof ev.data !== 'string') return;
      let event: ServerEvent;
      try {
        event = JSON.parse(ev.data) as ServerEvent;
      } catch {
        return;
      }
      if (event.type === 'synced') {
        this.attempt = 0;
        this.setState({ kind: 'live' });
      }
      for (const l of this.eventListeners) l(event);
    };
    socket.onerror = () => {
      // onclose follows and decides.
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.stopPing();
      if ((ev as { code?: number } | null)?.code === SESSION_ENDED) {
        // Signed out elsewhere or revoked: reconnecting with it would only be refused.
        this.running = false;
        this.setState({ kind: 'ended' });
        return;
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (!this.running) return;
    const delay = backoffDelay(this.attempt, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random);
    this.attempt += 1;
    this.setState({ kind: 'reconnecting', attempt: this.attempt, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  private startPing(socket: SocketLike): void {
    this.stopPing();
    const every = this.opts.pingMs ?? 20_000;
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastFrameAt > every * 2.5) {
        socket.close();
        socket.onclose?.({});
        return;
      }
      this.send({ type: 'ping' });
    }, every);
  }

  private stopPing(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }
}
