//! Formatting for the screens: times, days, moments in full, durations, "last seen", and
//! splitting message text into text and safe links.

export interface TextPart {
  text: string;
  href: string | null;
}

/** Characters that change how text around them is ordered or that cannot be seen: bidi
 *  embeddings, overrides, isolates and marks, zero-width spaces and joiners, the word
 *  joiner and invisible operators, the BOM and the soft hyphen. A link ends at any of them,
 *  so none can hide inside one or turn its text around. */
const URL_RE = /\bhttps?:\/\/[^\s<>"'`\u00AD\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]+/gi;

/** Plain runs and http(s) links; trailing punctuation stays outside the link. A link's
 *  text is what was typed when that reads as where it goes; otherwise (a host the parser
 *  rewrites, such as an IDN look-alike shown in punycode, backslashes, dot segments, user
 *  names before an @) it is the real target, so the text never points somewhere else. */
export function linkify(text: string): TextPart[] {
  const out: TextPart[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    const trail = /[.,;:!?)\]]+$/.exec(url);
    if (trail) url = url.slice(0, -trail[0].length);
    const start = m.index ?? 0;
    if (start > last) out.push({ text: text.slice(last, start), href: null });
    out.push(link(url));
    last = start + url.length;
  }
  if (last < text.length) out.push({ text: text.slice(last), href: null });
  return out;
}

function link(typed: string): TextPart {
  let u: URL;
  try {
    u = new URL(typed);
  } catch {
    return { text: typed, href: null };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { text: typed, href: null };
  const credentials = u.username !== '' || u.password !== '';
  u.username = '';
  u.password = '';
  const href = u.href;
  return { text: !credentials && readsAs(typed, u) ? typed : href, href };
}

/** Whether the typed text names the parsed URL: the same scheme and host up to letter
 *  case, and a path, query and fragment that differ at most in percent-encoding (the
 *  parser encodes `ü` or `{`; it must not have resolved `..` or read a backslash as `/`). */
function readsAs(typed: string, u: URL): boolean {
  if (typed.includes('\\')) return false;
  const m = /^(https?):\/\/([^/?#]*)(.*)$/is.exec(typed);
  if (!m) return false;
  const [, scheme = '', host = '', rest = ''] = m;
  if (`${scheme.toLowerCase()}:` !== u.protocol || host.toLowerCase() !== u.host) return false;
  const typedRest = rest.startsWith('/') ? rest : `/${rest}`;
  return decode(typedRest) === decode(u.href.slice(u.origin.length));
}

function decode(s: string): string {
  try {
    return decodeURI(s);
  } catch {
    return s;
  }
}

// One formatter each, made once: `toLocale…String(undefined, options)` builds a new
// `Intl.DateTimeFormat` on every call (tens of µs; every new message formats its time).
const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const WEEKDAY = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const MONTH_DAY = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const LONG_DATE = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const DATE_TIME = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

export function timeOfDay(iso: string): string {
  return TIME.format(new Date(iso));
}

/** A moment in full (the admin view's lists): "Jan 5, 2026, 14:03" in the reader's locale. */
export function dateTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : DATE_TIME.format(d);
}

/** A day in full: "Jan 5, 2026". */
export function longDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : LONG_DATE.format(d);
}

/** For the list: time today, weekday this week, else the date. */
export function shortWhen(iso: string, now = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  if (d.toDateString() === now.toDateString()) return timeOfDay(iso);
  const days = (now.getTime() - d.getTime()) / 86_400_000;
  if (days < 6) return WEEKDAY.format(d);
  return MONTH_DAY.format(d);
}

export function dayLabel(iso: string, now = new Date()): string {
  const d = new Date(iso);
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (d.toDateString() === now.toDateString()) return 'Today';
  if (d.toDateString() === y.toDateString()) return 'Yesterday';
  return d.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric' });
}

export function dayKey(iso: string): string {
  return new Date(iso).toDateString();
}

export function lastSeen(iso: string | null, now = Date.now()): string {
  if (!iso) return 'offline';
  const mins = Math.round((now - Date.parse(iso)) / 60_000);
  if (mins < 1) return 'last seen just now';
  if (mins < 60) return `last seen ${mins} min ago`;
  if (mins < 24 * 60) return `last seen at ${timeOfDay(iso)}`;
  return `last seen ${MONTH_DAY.format(new Date(iso))}`;
}

/** m:ss */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '0:00';
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
