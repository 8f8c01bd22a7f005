//! Messages a person typed that the server has not acknowledged yet, kept in storage
//! (localStorage in the browser) so that they survive a reload. An entry is `pending`
//! until its `ack` arrives (then it is removed) or `failed` when the server refused it
//! (then the person retries, with the same `client_id`, or deletes it).

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface OutboxEntry {
  client_id: string;
  conversation_id: number;
  body: string;
  /** The id of the message it answers, if it is a reply. */
  reply_to_id?: number | null;
  state: 'pending' | 'failed';
  error: string | null;
  /** ms since the epoch, when typed */
  created_at: number;
}

export class Outbox {
  private entries: OutboxEntry[];

  /** `key` should include the user id: one account's outbox is not another's. */
  constructor(
    private readonly storage: KeyValueStorage,
    private readonly key: string,
  ) {
    this.entries = Outbox.load(storage, key);
  }

  private static load(storage: KeyValueStorage, key: string): OutboxEntry[] {
    try {
      const raw = storage.getItem(key);
      const parsed: unknown = raw ? JSON.parse(raw) : [];
      return Array.isArray(parsed) ? (parsed as OutboxEntry[]) : [];
    } catch {
      return [];
    }
  }

  private save(): void {
    try {
      if (this.entries.length === 0) this.storage.removeItem(this.key);
      else this.storage.setItem(this.key, JSON.stringify(this.entries));
    } catch {
      // storage full or unavailable: the entries still live in memory for this page
    }
  }

  all(): readonly OutboxEntry[] {
    return this.entries;
  }

  pending(): OutboxEntry[] {
    return this.entries.filter((e) => e.state === 'pending');
  }

  add(entry: Omit<OutboxEntry, 'state' | 'error'>): OutboxEntry {
    const e: OutboxEntry = { ...entry, state: 'pending', error: null };
    this.entries = [...this.entries, e];
    this.save();
    return e;
  }

  /** The server stored it: forget it. Returns whether it was here. */
  acked(clientId: string): boolean {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.client_id !== clientId);
    if (this.entries.length !== before) this.save();
    return this.entries.length !== before;
  }

  fail(clientId: string, error: string): void {
    this.update(clientId, { state: 'failed', error });
  }

  /** Back to pending, same client_id, so a retry can never store it twice. */
  retry(clientId: string): OutboxEntry | undefined {
    this.update(clientId, { state: 'pending', error: null });
    return this.entries.find((e) => e.client_id === clientId);
  }

  remove(clientId: string): void {
    this.acked(clientId);
  }

  /** Forgets every entry, in memory and in storage (sign-out at a shared computer). */
  clear(): void {
    this.entries = [];
    try {
      this.storage.removeItem(this.key);
    } catch {
      // storage unavailable: nothing was kept there
    }
  }

  private update(clientId: string, patch: Partial<OutboxEntry>): void {
    this.entries = this.entries.map((e) => (e.client_id === clientId ? { ...e, ...patch } : e));
    this.save();
  }
}

/** A fresh client id: random, URL-safe, well under the 64-byte limit. */
export function newClientId(): string {
  const c = globalThis.crypto;
  if (c && 'randomUUID' in c) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
