//! Which screen is shown, kept in the location hash so Back works and a reload stays put:
//! `#/` the list, `#/c/<id>` a conversation, `#/profile` the profile page, `#/admin`
//! (`#/admin/invites`, `#/admin/log`) the server's administration (admins only; `Shell`
//! shows it only to them), `#/invite/<code>` an invite link (sign-up with its code filled
//! in; signed in, it leads to the list). One `Router` is made in `main.ts` and handed to
//! the components through Svelte context (`context.ts`), beside the store; no component
//! imports an instance.

/** The sections of the admin view. */
export const ADMIN_TABS = ['users', 'invites', 'log'] as const;
export type AdminTab = (typeof ADMIN_TABS)[number];

export type Route =
  | { name: 'home' }
  | { name: 'conversation'; id: number }
  | { name: 'profile' }
  | { name: 'admin'; tab: AdminTab }
  | { name: 'invite'; code: string };

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function parseRoute(hash: string): Route {
  const c = /^#\/c\/(\d+)$/.exec(hash);
  if (c) return { name: 'conversation', id: Number(c[1]) };
  if (hash === '#/profile') return { name: 'profile' };
  if (hash === '#/admin') return { name: 'admin', tab: 'users' };
  const a = /^#\/admin\/([a-z]+)$/.exec(hash);
  const tab = ADMIN_TABS.find((t) => t === a?.[1]);
  if (tab) return { name: 'admin', tab };
  const i = /^#\/invite\/([^/?#]+)$/.exec(hash);
  if (i) {
    const code = decoded(i[1]!).trim();
    if (code) return { name: 'invite', code };
  }
  return { name: 'home' };
}

export function routeHash(route: Route): string {
  switch (route.name) {
    case 'conversation':
      return `#/c/${route.id}`;
    case 'profile':
      return '#/profile';
    case 'admin':
      return route.tab === 'users' ? '#/admin' : `#/admin/${route.tab}`;
    case 'invite':
      return `#/invite/${encodeURIComponent(route.code)}`;
    case 'home':
      return '#/';
    default: {
      const _exhaustive: never = route;
      return _exhaustive;
    }
  }
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
