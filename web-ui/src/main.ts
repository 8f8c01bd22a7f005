//! Entry point: styles, the API client, and a tiny router between the screens.
//! On start, GET /api/me decides: signed in → conversations, 401 → sign-in.

import 'bootstrap/dist/css/bootstrap.min.css';
import '@fortawesome/fontawesome-free/css/all.min.css';
import './styles.css';

import { ApiError, FetchApiClient, errorMessage } from './api/client';
import type { AppContext, Route } from './app';
import { h, icon, spinner } from './components/dom';
import { renderAuth } from './views/auth';
import { renderConversations } from './views/conversations';

const root = document.getElementById('app');
if (!root) throw new Error('#app element missing from index.html');
const app: HTMLElement = root;

const ctx: AppContext = {
  api: new FetchApiClient(),
  navigate(route: Route): void {
    switch (route.name) {
      case 'sign-in':
        document.title = 'Sign in · ChatApp';
        app.replaceChildren(renderAuth(ctx));
        break;
      case 'conversations':
        document.title = 'ChatApp';
        app.replaceChildren(renderConversations(ctx, route.me));
        break;
    }
  },
};

function renderStartupError(message: string): HTMLElement {
  const retry = h('button', { class: 'btn btn-outline-light btn-sm ms-3', attrs: { type: 'button' } }, [
    icon('fa-solid fa-rotate-right me-2'),
    'Retry',
  ]);
  retry.addEventListener('click', () => void start());
  return h('main', { class: 'container py-5' }, [
    h('div', { id: 'startup-error', class: 'alert alert-danger d-flex align-items-center', attrs: { role: 'alert' } }, [
      h('span', { class: 'flex-grow-1', text: message }),
      retry,
    ]),
  ]);
}

async function start(): Promise<void> {
  app.replaceChildren(spinner());
  try {
    const me = await ctx.api.me();
    ctx.navigate({ name: 'conversations', me });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      ctx.navigate({ name: 'sign-in' });
    } else {
      app.replaceChildren(renderStartupError(errorMessage(err)));
    }
  }
}

void start();
