//! Hands the one store to every component (Svelte context), so no component imports a
//! global and tests or the desktop app can supply their own.

import { getContext, setContext } from 'svelte';
import type { ChatStore } from './store.svelte';

const KEY = Symbol('chat-store');

export function setStore(store: ChatStore): void {
  setContext(KEY, store);
}

export function getStore(): ChatStore {
  const s = getContext<ChatStore | undefined>(KEY);
  if (!s) throw new Error('ChatStore missing from context');
  return s;
}
