//! Entry point: styles, the browser platform (REST, WebSocket, storage), the one store,
//! and the root component.

import 'bootstrap/dist/css/bootstrap.min.css';
import './styles.css';

import { mount } from 'svelte';
import App from './App.svelte';
import { browserPlatform, notify } from './platform/browser';
import { router } from './state/router.svelte';
import { ChatStore, displayName } from './state/store.svelte';

const target = document.getElementById('app');
if (!target) throw new Error('#app element missing from index.html');

const platform = browserPlatform();
const store: ChatStore = new ChatStore(platform.api, platform.realtime, platform.storage, {
  onIncoming(message, conversation) {
    const sender = displayName(store.users[message.sender_id]);
    const title = conversation?.kind === 'group' && conversation.title ? `${sender} in ${conversation.title}` : sender;
    notify(title, message.kind === 'voice' ? 'Voice message' : message.body, () =>
      router.go({ name: 'conversation', id: message.conversation_id }),
    );
  },
});

mount(App, { target, props: { store } });
