//! The browser's implementations behind the client seam: fetch for REST, a WebSocket for
//! events, localStorage for the outbox, the Notification API. Inside the desktop app
//! `main.ts` takes `platform/desktop.ts` instead, whose implementations call its Rust side.

import type { ApiClient, RealtimeClient } from '../api/client';
import { FetchApiClient } from '../api/http';
import type { KeyValueStorage } from '../api/outbox';
import { WebSocketRealtimeClient } from '../api/ws';

export interface Platform {
  api: ApiClient;
  realtime: RealtimeClient;
  storage: KeyValueStorage;
}

export function browserPlatform(): Platform {
  return { api: new FetchApiClient(), realtime: WebSocketRealtimeClient.forPage(), storage: window.localStorage };
}

/** Whether notifications can be asked for (and have not been answered yet). */
export function canAskNotifications(): boolean {
  return typeof Notification !== 'undefined' && Notification.permission === 'default';
}

/** Must be called from a click: browsers only ask then. */
export async function askNotifications(): Promise<boolean> {
  if (typeof Notification === 'undefined') return false;
  return (await Notification.requestPermission()) === 'granted';
}

/** Shows a notification while the page is hidden. Text only: the body is never markup. */
export function notify(title: string, body: string, onClick: () => void): void {
  // `document.hidden` first: reading `Notification.permission` asks the browser process
  // (a synchronous IPC), on every incoming message otherwise.
  if (!document.hidden || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  const n = new Notification(title, { body: body.slice(0, 200), tag: title });
  n.onclick = () => {
    window.focus();
    onClick();
    n.close();
  };
}
