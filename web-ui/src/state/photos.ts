//! Photos before and after they are sent: which files may be sent (the server's rule,
//! checked first here so that a wrong file is refused before its upload), the size a photo
//! is shown at, and how a photo is named where only text fits (lists, quotes,
//! notifications). Pure functions: no DOM, no store.

import type { MessageKind } from '../api/generated';

/** What the server takes (it decides by the bytes; so does `sniffImage`). */
export const PHOTO_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;
export type PhotoType = (typeof PHOTO_TYPES)[number];
/** The file input's `accept`. */
export const PHOTO_ACCEPT = PHOTO_TYPES.join(',');
/** The server's limit (16 MB, as it counts: MiB). */
export const MAX_PHOTO_BYTES = 16 * 1024 * 1024;
/** How many leading bytes `sniffImage` needs. */
export const SNIFF_BYTES = 12;

/** The image type the leading bytes of a file announce, or null when they are none of
 *  png, jpeg, gif or webp. */
export function sniffImage(head: Uint8Array): PhotoType | null {
  const at = (i: number, bytes: number[]) => bytes.every((b, k) => head[i + k] === b);
  const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (at(0, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (at(0, ascii('GIF87a')) || at(0, ascii('GIF89a'))) return 'image/gif';
  if (at(0, ascii('RIFF')) && at(8, ascii('WEBP'))) return 'image/webp';
  return null;
}

/** A size for people: "812 KB", "17.3 MB", "240 MB". */
export function fileSize(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  const mb = bytes / (1024 * 1024);
  return `${mb < 100 ? mb.toFixed(1) : Math.round(mb)} MB`;
}

/** Why a file cannot be sent as a photo (null: it can), from its size and leading bytes. */
export function photoProblem(file: { size: number; name?: string }, head: Uint8Array): string | null {
  const name = file.name && file.name !== 'photo' ? `“${file.name}”` : 'This file';
  if (file.size === 0) return `${name} is empty.`;
  if (sniffImage(head) === null) return `${name} is not a photo: only PNG, JPEG, GIF and WebP images can be sent.`;
  if (file.size > MAX_PHOTO_BYTES) return `${name} is too large (${fileSize(file.size)}): a photo can be at most 16 MB.`;
  return null;
}

/** `photoProblem` of a file (reads its first bytes). */
export async function checkPhoto(file: Blob & { name?: string }): Promise<string | null> {
  let head: Uint8Array;
  try {
    head = new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer());
  } catch {
    return 'That file could not be read.';
  }
  return photoProblem(file, head);
}

/** The first image among files (a drop, a paste), or the first file when none looks like
 *  an image (so that it is refused with a reason, not ignored). */
export function pickImage<F extends { type: string }>(files: readonly F[]): F | null {
  return files.find((f) => f.type.startsWith('image/')) ?? files[0] ?? null;
}

/** `width` × `height` scaled down (never up) to fit `maxWidth` × `maxHeight`, in whole
 *  pixels (at least 1). Unknown sizes give the box itself. */
export function fitBox(width: number | null | undefined, height: number | null | undefined, maxWidth: number, maxHeight: number): { width: number; height: number } {
  if (!width || !height || width <= 0 || height <= 0) return { width: maxWidth, height: maxHeight };
  const scale = Math.min(1, maxWidth / width, maxHeight / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** The largest a photo is shown in the timeline (CSS narrows it further on a phone). */
export const THUMB_BOX = 320;

/** A photo where only a line of text fits (the screens put an icon before it): "Photo",
 *  or "Photo: " and the first line of its caption. */
export function photoSummary(caption: string): string {
  const line = firstLine(caption);
  return line ? `Photo: ${line}` : 'Photo';
}

/** What a message says in plain text (a quote, a notification): its text, "Voice
 *  message", or "📷 Photo" with the start of its caption. */
export function messageSummary(m: { kind: MessageKind; body: string }): string {
  switch (m.kind) {
    case 'voice':
      return 'Voice message';
    case 'photo':
      return `📷 ${photoSummary(m.body)}`;
    case 'text':
      return m.body;
    default: {
      const _exhaustive: never = m.kind;
      void _exhaustive;
      return m.body;
    }
  }
}

/** The first line with text, trimmed. */
export function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
}
