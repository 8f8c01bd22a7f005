//! Which notifications the desktop app shows, and when: one per conversation (a newer one
//! replaces the older, counting what is unseen), and while the connection is not live (at
//! start, after a sleep or any lost connection) nothing at first, then one summary per
//! conversation once it is live again, instead of a burst.

import type { ConnectionState } from '../api/client';

export interface Note {
  conversationId: number;
  title: string;
  body: string;
}

interface Pending {
  title: string;
  lastBody: string;
  count: number;
}

export class Notifier {
  private catchingUp = true;
  /** Per conversation: messages announced since the person last looked. */
  private unseen = new Map<number, Pending>();
  private held = new Map<number, Pending>();

  constructor(private readonly show: (n: Note) => void) {}

  /** The connection state: anything but live means a replay may come. */
  state(s: ConnectionState): void {
    const wasCatchingUp = this.catchingUp;
    this.catchingUp = s.kind !== 'live';
    if (wasCatchingUp && !this.catchingUp) {
      for (const [id, p] of this.held) {
        this.show({ conversationId: id, title: p.title, body: p.count === 1 ? p.lastBody : `${p.count} new messages` });
        this.remember(id, p.title, p.lastBody, p.count);
      }
      this.held.clear();
    }
  }

  /** A message from someone else arrived. */
  message(conversationId: number, title: string, body: string): void {
    if (this.catchingUp) {
      const p = this.held.get(conversationId) ?? { title, lastBody: body, count: 0 };
      p.count += 1;
      p.lastBody = body;
      p.title = title;
      this.held.set(conversationId, p);
      return;
    }
    const count = this.remember(conversationId, title, body, 1);
    this.show({ conversationId, title, body: count === 1 ? body : `${count} new messages · ${body}` });
  }

  /** The person looked (the window came to the front): start counting afresh. */
  seen(): void {
    this.unseen.clear();
  }

  private remember(id: number, title: string, body: string, n: number): number {
    const p = this.unseen.get(id) ?? { title, lastBody: body, count: 0 };
    p.count += n;
    p.lastBody = body;
    this.unseen.set(id, p);
    return p.count;
  }
}
