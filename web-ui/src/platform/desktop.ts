//! The desktop app's platform: the Tauri implementations of the client seam, the native
//! recorder, notifications through the app (shown only while its window is not focused)
//! and the unread total for the window title and tray. Chosen in `main.ts` when the page
//! runs inside Tauri.

import { Channel, convertFileSrc, invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type { ConnectionState } from '../api/client';
import type { AppEvent } from '../api/generated/desktop';
import type { KeyValueStorage } from '../api/outbox';
import type { RecorderFactory } from '../api/recorder';
import { NativeVoiceRecorder, TauriApiClient, TauriRealtimeClient, type TauriIpc } from '../api/tauri';
import type { Platform } from './browser';
import { Notifier } from './notifier';

export function inTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

export function tauriIpc(): TauriIpc {
  return {
    invoke: (cmd, args, options) => invoke(cmd, args, options),
    listen: (event, handler) => listen(event, handler),
    channel: (onMessage) => new Channel(onMessage),
    mediaSrc: (path) => convertFileSrc(path, 'chatmedia'),
  };
}

export interface DesktopPlatform extends Platform {
  recorder: RecorderFactory;
  notifier: Notifier;
  onUnread: (total: number) => void;
  /** Calls `open` with the conversation of a notification the person clicked. */
  onOpenConversation: (open: (conversationId: number) => void) => void;
}

/** The Rust side's event when a notification is clicked (its payload: the conversation). */
export const OPEN: AppEvent = 'chatapp://open';

export function desktopPlatform(ipc: TauriIpc = tauriIpc(), storage: KeyValueStorage = window.localStorage): DesktopPlatform {
  const realtime = new TauriRealtimeClient(ipc);
  const notifier = new Notifier((n) => {
    void ipc.invoke('notify', { title: n.title, body: n.body, conversation: n.conversationId }).catch(() => {});
  });
  realtime.onState((s: ConnectionState) => notifier.state(s));
  if (typeof window !== 'undefined') {
    window.addEventListener('focus', () => notifier.seen());
    // The network is back: the Rust side reconnects now instead of after its backoff
    // (it notices a sleep of the machine by itself).
    window.addEventListener('online', () => void ipc.invoke('realtime_reconnect').catch(() => {}));
  }
  let last = -1;
  return {
    api: new TauriApiClient(ipc),
    realtime,
    // The outbox of typed messages (no secrets) stays in the webview's storage, as in a browser.
    storage,
    recorder: () => new NativeVoiceRecorder(ipc),
    notifier,
    onUnread: (total) => {
      if (total === last) return;
      last = total;
      void ipc.invoke('set_unread', { count: total }).catch(() => {});
    },
    onOpenConversation: (open) => {
      void ipc.listen<number>(OPEN, (e) => open(e.payload));
    },
  };
}
