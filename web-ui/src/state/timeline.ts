//! Pure helpers for one conversation's messages: kept sorted by `seq`, each seq once.
//! The store uses them to merge history pages, live events and resume replays, and to
//! find the gaps it must fetch.

import type { Message, ReplyPreview } from '../api/generated';

/** What a reply shows of `m` (the server's rule: the first non-blank line, at most 200
 *  characters; nothing of a deleted message). */
export function quoteOf(m: Message): ReplyPreview {
  const deleted = m.deleted_at !== null;
  const line = m.body.split('\n').find((l) => l.trim() !== '') ?? '';
  return {
    id: m.id,
    seq: m.seq,
    sender_id: m.sender_id,
    kind: m.kind,
    excerpt: deleted ? '' : Array.from(line.trim()).slice(0, 200).join(''),
    duration_ms: deleted ? null : (m.attachment?.duration_ms ?? null),
    deleted,
  };
}

/** Inserts or replaces `m` by seq; returns a new array (sorted, unique) and whether it was new. */
export function upsert(items: readonly Message[], m: Message): { items: Message[]; added: boolean } {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid]!.seq < m.seq) lo = mid + 1;
    else hi = mid;
  }
  const out = items.slice();
  if (items[lo]?.seq === m.seq) {
    out[lo] = m;
    return { items: out, added: false };
  }
  out.splice(lo, 0, m);
  return { items: out, added: true };
}

export function upsertAll(items: readonly Message[], ms: readonly Message[]): Message[] {
  let out = items.slice();
  for (const m of ms) out = upsert(out, m).items;
  return out;
}

/** The highest seq up to which `items` has no hole (0 when empty). */
export function contiguousTop(items: readonly Message[]): number {
  if (items.length === 0) return 0;
  const first = items[0]!.seq;
  for (let i = 1; i < items.length; i++) {
    if (items[i]!.seq !== first + i) return items[i - 1]!.seq;
  }
  return items[items.length - 1]!.seq;
}

/** The first hole above the contiguous part, as the range [from, to] of missing seqs. */
export function firstGap(items: readonly Message[]): { from: number; to: number } | null {
  const top = contiguousTop(items);
  const next = items.find((m) => m.seq > top);
  return next ? { from: top + 1, to: next.seq - 1 } : null;
}
