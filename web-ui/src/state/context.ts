//! Hands the one store and the one router to every component (Svelte context), so no
//! component imports a global and tests or the desktop app can supply their own. `App`
//! sets both from what `main.ts` made; every component below gets them here.

import { getContext, setContext } from 'svelte';
import type { Router } from './router.svelte';
import type { ChatStore } from './store.svelte';

const STORE = Symbol('chat-store');
const ROUTER = Symbol('router');

export function setStore(store: ChatStore): void {
  setContext(STORE, store);
}

export function getStore(): ChatStore {
  const s = getContext<ChatStore | undefined>(STORE);
  if (!s) throw new Error('ChatStore missing from context');
  return s;
}

export function setRouter(router: Router): void {
  setContext(ROUTER, router);
}

export function getRouter(): Router {
  const r = getContext<Router | undefined>(ROUTER);
  if (!r) throw new Error('Router missing from context');
  return r;
}
