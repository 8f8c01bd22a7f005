//! Which screen is shown, kept in the location hash so Back works and a reload stays put:
//! `#/` the list, `#/c/<id>` a conversation, `#/profile` the profile page. One `Router` is
//! made in `main.ts` and handed to the components through Svelte context (`context.ts`),
//! beside the store; no component imports an instance.

export type Route = { name: 'home' } | { name: 'conversation'; id: number } | { name: 'profile' };

export function parseRoute(hash: string): Route {
  const m = /^#\/c\/(\d+)$/.exec(hash);
  if (m) return { name: 'conversation', id: Number(m[1]) };
  if (hash === '#/profile') return { name: 'profile' };
  return { name: 'home' };
}

export function routeHash(route: Route): string {
  return route.name === 'conversation' ? `#/c/${route.id}` : route.name === 'profile' ? '#/profile' : '#/';
}

export class Router {
  #route = $state<Route>(typeof location === 'undefined' ? { name: 'home' } : parseRoute(location.hash));

  constructor() {
    if (typeof window !== 'undefined') window.addEventListener('hashchange', () => (this.#route = parseRoute(location.hash)));
  }

  get route(): Route {
    return this.#route;
  }

  go(route: Route): void {
    const hash = routeHash(route);
    if (typeof location !== 'undefined' && location.hash !== hash) location.hash = hash;
    this.#route = route;
  }
}
