import { describe, expect, it } from 'vitest';
import { linkify } from './format';

const RLO = '\u202E';

describe('linkify', () => {
  it('leaves plain URLs as typed and trailing punctuation outside', () => {
    expect(linkify('See https://example.org/docs.')).toEqual([
      { text: 'See ', href: null },
      { text: 'https://example.org/docs', href: 'https://example.org/docs' },
      { text: '.', href: null },
    ]);
    expect(linkify('(at https://Example.org)!')).toEqual([
      { text: '(at ', href: null },
      { text: 'https://Example.org', href: 'https://example.org/' },
      { text: ')!', href: null },
    ]);
    expect(linkify('https://de.wikipedia.org/wiki/Straße?q=ü#a')).toEqual([
      { text: 'https://de.wikipedia.org/wiki/Straße?q=ü#a', href: 'https://de.wikipedia.org/wiki/Stra%C3%9Fe?q=%C3%BC#a' },
    ]);
    expect(linkify('http://a.example?x=1')).toEqual([{ text: 'http://a.example?x=1', href: 'http://a.example/?x=1' }]);
    expect(linkify('no link, javascript:alert(1) or ftp://x.example')).toEqual([
      { text: 'no link, javascript:alert(1) or ftp://x.example', href: null },
    ]);
  });

  it('keeps a right-to-left override before a link outside it', () => {
    expect(linkify(`${RLO}https://evil.example/?moc.elgoog//:sptth`)).toEqual([
      { text: RLO, href: null },
      { text: 'https://evil.example/?moc.elgoog//:sptth', href: 'https://evil.example/?moc.elgoog//:sptth' },
    ]);
  });

  it('ends a link at a bidi control or an invisible character inside it', () => {
    expect(linkify(`https://evil.example/${RLO}moc.elgoog`)).toEqual([
      { text: 'https://evil.example/', href: 'https://evil.example/' },
      { text: `${RLO}moc.elgoog`, href: null },
    ]);
    for (const c of ['\u200E', '\u200F', '\u061C', '\u202A', '\u202B', '\u202C', '\u202D', '\u2066', '\u2067', '\u2068', '\u2069', '\u200B', '\u200C', '\u200D', '\u2060', '\u2064', '\uFEFF', '\u00AD']) {
      const parts = linkify(`https://a.example/x${c}y`);
      expect(parts, `U+${c.codePointAt(0)!.toString(16)}`).toEqual([
        { text: 'https://a.example/x', href: 'https://a.example/x' },
        { text: `${c}y`, href: null },
      ]);
    }
  });

  it('shows the real target of an IDN look-alike host (punycode)', () => {
    // Cyrillic о (U+043E) twice
    expect(linkify('https://g\u043E\u043Egle.com/login')).toEqual([
      { text: 'https://xn--ggle-55da.com/login', href: 'https://xn--ggle-55da.com/login' },
    ]);
    // full-width letters the parser maps to ASCII
    expect(linkify('https://\uFF47oogle.com/')).toEqual([{ text: 'https://google.com/', href: 'https://google.com/' }]);
  });

  it('shows the real target when the parser rewrites what was typed', () => {
    expect(linkify('https://google.com\\@evil.example/')).toEqual([
      { text: 'https://google.com/@evil.example/', href: 'https://google.com/@evil.example/' },
    ]);
    expect(linkify('https://google.com@evil.example/x')).toEqual([{ text: 'https://evil.example/x', href: 'https://evil.example/x' }]);
    expect(linkify('https://a.example/safe/%2e%2e/admin')).toEqual([{ text: 'https://a.example/admin', href: 'https://a.example/admin' }]);
    expect(linkify('http://0x7f.1/')).toEqual([{ text: 'http://127.0.0.1/', href: 'http://127.0.0.1/' }]);
  });
});
