//! What the router hands to every screen: the routes, and the context
//! (API client + navigation). Screens import this, never main.ts.

import type { ApiClient } from './api/client';
import type { User } from './api/types';

export type Route = { name: 'sign-in' } | { name: 'conversations'; me: User };

export interface AppContext {
  api: ApiClient;
  navigate(route: Route): void;
}
