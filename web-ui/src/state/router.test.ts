import { describe, expect, it } from 'vitest';
import { parseRoute, routeHash, Router, type Route } from './router.svelte';

describe('Router', () => {
  it('reads and writes every screen as a location hash', () => {
    const routes: Route[] = [
      { name: 'home' },
      { name: 'conversation', id: 42 },
      { name: 'profile' },
      { name: 'admin', tab: 'users' },
      { name: 'admin', tab: 'invites' },
      { name: 'admin', tab: 'log' },
      { name: 'invite', code: 'Zq3_x-9AbCdEfGhIjKlMnO' },
    ];
    for (const r of routes) expect(parseRoute(routeHash(r))).toEqual(r);
    expect(routeHash({ name: 'conversation', id: 42 })).toBe('#/c/42');
    expect(parseRoute('')).toEqual({ name: 'home' });
    expect(parseRoute('#/c/x')).toEqual({ name: 'home' });
  });

  it('opens the admin view at its users, and a section by name', () => {
    expect(routeHash({ name: 'admin', tab: 'users' })).toBe('#/admin');
    expect(parseRoute('#/admin')).toEqual({ name: 'admin', tab: 'users' });
    expect(parseRoute('#/admin/invites')).toEqual({ name: 'admin', tab: 'invites' });
    expect(parseRoute('#/admin/log')).toEqual({ name: 'admin', tab: 'log' });
    expect(parseRoute('#/admin/secrets')).toEqual({ name: 'home' });
  });

  it('reads the code of an invite link', () => {
    expect(parseRoute('#/invite/abc_DEF-123')).toEqual({ name: 'invite', code: 'abc_DEF-123' });
    expect(routeHash({ name: 'invite', code: 'abc_DEF-123' })).toBe('#/invite/abc_DEF-123');
    // Percent-encoded (as some mail programs rewrite links), and odd text kept as text.
    expect(parseRoute('#/invite/a%2Bb')).toEqual({ name: 'invite', code: 'a+b' });
    expect(parseRoute('#/invite/%E0%A4%A')).toEqual({ name: 'invite', code: '%E0%A4%A' });
    expect(routeHash({ name: 'invite', code: 'a/b' })).toBe('#/invite/a%2Fb');
    expect(parseRoute('#/invite/')).toEqual({ name: 'home' });
    expect(parseRoute('#/invite/%20')).toEqual({ name: 'home' });
    expect(parseRoute('#/invite/a/b')).toEqual({ name: 'home' });
  });

  it('is an instance with its own route, changed only by go()', () => {
    const a = new Router();
    const b = new Router();
    a.go({ name: 'profile' });
    expect(a.route).toEqual({ name: 'profile' });
    expect(b.route).toEqual({ name: 'home' });
    expect(() => {
      (a as unknown as { route: Route }).route = { name: 'home' };
    }).toThrow(TypeError);
  });
});
