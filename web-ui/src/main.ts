//! Entry point: styles, the platform (the browser's REST, WebSocket and recorder, or the
//! desktop app's Tauri commands when running inside it), the one store and the one router
//! (handed to the components through context by `App`), the root component.

import 'bootstrap/dist/css/bootstrap.min.css';
import './styles.css';

import { mount } from 'svelte';
import App from './App.svelte';
import { BrowserVoiceRecorder } from './api/media-recorder';
import { browserPlatform, notify } from './platform/browser';
import { desktopPlatform, inTauri } from './platform/desktop';
import { Router } from './state/router.svelte';
import { ChatStore, displayName, type StoreHooks } from './state/store.svelte';
import type { Conversation, Message } from './api/generated';
import { messageSummary } from './state/photos';

const target = document.getElementById('app');
if (!target) throw new Error('#app element missing from index.html');

const router = new Router();

function titleOf(message: Message, conversation: Conversation | undefined): string {
  const sender = conversation ? store.memberLabel(conversation.id, message.sender_id) : displayName(store.users[message.sender_id]);
  return conversation?.kind === 'group' && conversation.title ? `${sender} in ${conversation.title}` : sender;
}

const bodyOf = (message: Message): string => messageSummary(message);

let hooks: StoreHooks;
let platform;
if (inTauri()) {
  const desktop = desktopPlatform();
  platform = desktop;
  hooks = {
    recorder: desktop.recorder,
    onUnread: desktop.onUnread,
    linkTargetOnHover: true,
    onIncoming(message, conversation) {
      desktop.notifier.message(message.conversation_id, titleOf(message, conversation), bodyOf(message));
    },
  };
  desktop.onOpenConversation((id) => router.go({ name: 'conversation', id }));
} else {
  platform = browserPlatform();
  hooks = {
    recorder: () => new BrowserVoiceRecorder(),
    onIncoming(message, conversation) {
      notify(titleOf(message, conversation), bodyOf(message), () => router.go({ name: 'conversation', id: message.conversation_id }));
    },
  };
}

const store: ChatStore = new ChatStore(platform.api, platform.realtime, platform.storage, hooks);

mount(App, { target, props: { store, router } });
