import { describe, expect, it } from 'vitest';
import { parseRoute, routeHash, Router, type Route } from './router.svelte';

describe('Router', () => {
  it('reads and writes the three screens as location hashes', () => {
    const routes: Route[] = [{ name: 'home' }, { name: 'conversation', id: 42 }, { name: 'profile' }];
    for (const r of routes) expect(parseRoute(routeHash(r))).toEqual(r);
    expect(routeHash({ name: 'conversation', id: 42 })).toBe('#/c/42');
    expect(parseRoute('')).toEqual({ name: 'home' });
    expect(parseRoute('#/c/x')).toEqual({ name: 'home' });
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
