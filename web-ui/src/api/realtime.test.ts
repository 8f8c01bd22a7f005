import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay } from './backoff';
import type { ConnectionState } from './client';
import type { ServerEvent } from './generated';
import { WebSocketRealtimeClient, type SocketLike } from './ws';

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: unknown[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(): void {
    this.readyState = 3;
  }
  // server side
  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(e: ServerEvent): void {
    this.onmessage?.({ data: JSON.stringify(e) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

describe('backoff', () => {
  it('doubles up to the cap with jitter in the upper half', () => {
    const opts = { baseMs: 500, maxMs: 8000 };
    expect(backoffDelay(0, opts, () => 0)).toBe(250);
    expect(backoffDelay(0, opts, () => 0.999999)).toBe(500);
    expect(backoffDelay(3, opts, () => 0)).toBe(2000);
    expect(backoffDelay(10, opts, () => 0.5)).toBe(6000);
    const seen = new Set(Array.from({ length: 20 }, () => backoffDelay(4, opts)));
    expect(seen.size).toBeGreaterThan(1);
    for (const d of seen) expect(d).toBeGreaterThanOrEqual(4000);
  });
});

describe('WebSocketRealtimeClient', () => {
  let sockets: FakeSocket[];
  let client: WebSocketRealtimeClient;
  let states: ConnectionState[];
  let events: ServerEvent[];
  let cursors: Record<string, number>;

  beforeEach(() => {
    vi.useFakeTimers();
    sockets = [];
    states = [];
    events = [];
    cursors = { '7': 12 };
    client = new WebSocketRealtimeClient({
      connect: () => {
        const s = new FakeSocket();
        sockets.push(s);
        return s;
      },
      backoff: { baseMs: 1000, maxMs: 8000 },
      random: () => 0.5,
      pingMs: 1_000_000,
    });
    client.onState((s) => states.push(s));
    client.onEvent((e) => events.push(e));
  });
  afterEach(() => {
    client.stop();
    vi.useRealTimers();
  });

  it('sends resume with the current cursors as the first frame of every connection', () => {
    client.start(() => cursors);
    sockets[0]!.accept();
    expect(sockets[0]!.sent).toEqual([{ type: 'resume', cursors: { '7': 12 } }]);
    sockets[0]!.push({ type: 'synced' });
    expect(client.state.kind).toBe('live');

    cursors = { '7': 15, '9': 1 };
    sockets[0]!.drop();
    expect(client.state.kind).toBe('reconnecting');
    vi.advanceTimersByTime(1000);
    sockets[1]!.accept();
    expect(sockets[1]!.sent[0]).toEqual({ type: 'resume', cursors: { '7': 15, '9': 1 } });
  });

  it('reconnects with growing delays and resets them once synced', () => {
    client.start(() => cursors);
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      sockets[i]!.drop();
      const s = client.state;
      if (s.kind !== 'reconnecting') throw new Error('expected reconnecting');
      delays.push(s.retryAt - Date.now());
      vi.advanceTimersByTime(s.retryAt - Date.now() - 1);
      expect(sockets.length).toBe(i + 1); // not before the delay
      vi.advanceTimersByTime(1);
      expect(sockets.length).toBe(i + 2);
    }
    expect(delays).toEqual([750, 1500, 3000, 6000]);
    sockets[4]!.accept();
    sockets[4]!.push({ type: 'synced' });
    sockets[4]!.drop();
    const s = client.state;
    expect(s.kind === 'reconnecting' && s.retryAt - Date.now()).toBe(750);
  });

  it('stops reconnecting when the server says the session ended (4001)', () => {
    client.start(() => cursors);
    sockets[0]!.accept();
    sockets[0]!.push({ type: 'synced' });
    sockets[0]!.drop(1012);
    expect(client.state.kind).toBe('reconnecting');
    vi.advanceTimersByTime(1000);
    sockets[1]!.accept();
    sockets[1]!.drop(4001);
    expect(client.state).toEqual({ kind: 'ended' });
    vi.advanceTimersByTime(60_000);
    expect(sockets.length).toBe(2);
  });

  it('passes events on, refuses sends while closed, and stops for good', () => {
    client.start(() => cursors);
    expect(client.send({ type: 'ping' })).toBe(false);
    sockets[0]!.accept();
    sockets[0]!.push({ type: 'pong' });
    expect(events).toEqual([{ type: 'pong' }]);
    expect(client.send({ type: 'typing', conversation_id: 7 })).toBe(true);
    client.stop();
    vi.advanceTimersByTime(60_000);
    expect(sockets.length).toBe(1);
    expect(states.at(-1)).toEqual({ kind: 'stopped' });
  });
});
