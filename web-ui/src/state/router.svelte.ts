//! Which screen is shown, kept in the location hash so Back works and a reload stays put:
//! `#/` the list, `#/c/<id>` a conversation, `#/profile` the profile page.

export type Route = { name: 'home' } | { name: 'conversation'; id: number } | { name: 'profile' };

function parse(hash: string): Route {
  const m = /^#\/c\/(\d+)$/.exec(hash);
  if (m) return { name: 'conversation', id: Number(m[1]) };
  if (hash === '#/profile') return { name: 'profile' };
  return { name: 'home' };
}

class Router {
  route = $state<Route>(typeof location === 'undefined' ? { name: 'home' } : parse(location.hash));

  constructor() {
    if (typeof window !== 'undefined') window.addEventListener('hashchange', () => (this.route = parse(location.hash)));
  }

  go(route: Route): void {
    const hash = route.name === 'conversation' ? `#/c/${route.id}` : route.name === 'profile' ? '#/profile' : '#/';
    if (location.hash !== hash) location.hash = hash;
    this.route = route;
  }
}

export const router = new Router();
