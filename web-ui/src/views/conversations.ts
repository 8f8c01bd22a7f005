//! Conversations screen: header (who is signed in, sign out) and the list of
//! conversations, newest activity first as the server orders them.
//! Message text is rendered as text, never markup.

import { ApiError, errorMessage } from '../api/client';
import type { Conversation, User } from '../api/types';
import type { AppContext } from '../app';
import { h, icon, show, spinner } from '../components/dom';

function nameOf(user: User): string {
  return user.display_name || user.username;
}

/** Direct: the other member; a conversation with oneself falls back to self. */
function otherMember(conv: Conversation, me: User): User | undefined {
  return conv.members.find((m) => m.id !== me.id) ?? conv.members[0];
}

export function conversationTitle(conv: Conversation, me: User): string {
  if (conv.kind === 'group') {
    if (conv.title) return conv.title;
    const names = conv.members.filter((m) => m.id !== me.id).map(nameOf);
    return names.length > 0 ? names.join(', ') : 'Untitled group';
  }
  const other = otherMember(conv, me);
  return other ? nameOf(other) : 'Direct message';
}

function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  return d.toDateString() === now.toDateString()
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

function avatar(conv: Conversation, me: User, title: string): HTMLElement {
  const box = h('div', { class: 'conv-avatar flex-shrink-0', attrs: { 'aria-hidden': 'true' } });
  if (conv.kind === 'group') {
    box.append(icon('fa-solid fa-users'));
    return box;
  }
  const url = otherMember(conv, me)?.avatar_url;
  if (url) {
    box.append(h('img', { attrs: { src: url, alt: '' } }));
  } else {
    box.textContent = (title.trim()[0] ?? '?').toUpperCase();
  }
  return box;
}

function lastMessagePreview(conv: Conversation, me: User): HTMLElement {
  const preview = h('div', { class: 'conv-preview text-body-secondary small text-truncate' });
  const msg = conv.last_message;
  if (!msg) {
    preview.textContent = 'No messages yet';
    preview.classList.add('fst-italic');
    return preview;
  }
  if (msg.sender_id === me.id) preview.append('You: ');
  if (msg.kind === 'voice') {
    preview.append(icon('fa-solid fa-microphone me-1'), msg.body || 'Voice message');
  } else {
    preview.append(msg.body);
  }
  return preview;
}

function conversationItem(conv: Conversation, me: User): HTMLLIElement {
  const title = conversationTitle(conv, me);
  const unread = conv.unread_count > 0;
  const li = h('li', {
    class: `list-group-item conv-item d-flex align-items-center gap-3 py-3${unread ? ' conv-unread' : ''}`,
    attrs: { 'data-conversation-id': String(conv.id) },
  });
  const top = h('div', { class: 'd-flex align-items-baseline gap-2' }, [
    h('span', { class: 'conv-title text-truncate flex-grow-1', text: title }),
    h('small', { class: 'conv-time text-body-secondary flex-shrink-0', text: formatTime(conv.last_activity_at) }),
  ]);
  const body = h('div', { class: 'flex-grow-1 min-w-0' }, [top, lastMessagePreview(conv, me)]);
  li.append(avatar(conv, me, title), body);
  if (unread) {
    li.append(
      h('span', {
        class: 'badge rounded-pill text-bg-primary unread-badge',
        text: conv.unread_count > 99 ? '99+' : String(conv.unread_count),
        attrs: { 'aria-label': `${conv.unread_count} unread` },
      }),
    );
  }
  return li;
}

export function renderConversations(ctx: AppContext, me: User): HTMLElement {
  const signOut = h('button', {
    id: 'sign-out',
    class: 'btn btn-outline-secondary btn-sm',
    attrs: { type: 'button' },
  }, [icon('fa-solid fa-right-from-bracket me-2'), 'Sign out']);

  const header = h('nav', { class: 'navbar bg-body-tertiary border-bottom' }, [
    h('div', { class: 'container' }, [
      h('span', { class: 'navbar-brand d-flex align-items-center gap-2' }, [
        icon('fa-solid fa-comments text-primary'),
        'ChatApp',
      ]),
      h('div', { class: 'd-flex align-items-center gap-3' }, [
        h('span', { class: 'text-body-secondary' }, [
          icon('fa-solid fa-circle-user me-2'),
          h('span', { id: 'me-name', class: 'text-body', text: nameOf(me) }),
        ]),
        signOut,
      ]),
    ]),
  ]);

  const error = h('div', { id: 'conversations-error', class: 'alert alert-danger d-none', attrs: { role: 'alert' } });
  const list = h('ul', { id: 'conversation-list', class: 'list-group conv-list' });
  const loading = spinner('Loading conversations…');

  function setError(message: string | null): void {
    error.textContent = message ?? '';
    show(error, message !== null);
  }

  signOut.addEventListener('click', async () => {
    signOut.disabled = true;
    setError(null);
    try {
      await ctx.api.logout();
    } catch (err) {
      // 401: the session is already gone, which is what we wanted.
      if (!(err instanceof ApiError && err.status === 401)) {
        setError(errorMessage(err));
        signOut.disabled = false;
        return;
      }
    }
    ctx.navigate({ name: 'sign-in' });
  });

  async function load(): Promise<void> {
    try {
      const conversations = await ctx.api.conversations();
      if (conversations.length === 0) {
        list.replaceChildren(
          h('li', { id: 'conversations-empty', class: 'list-group-item text-center text-body-secondary py-5' }, [
            icon('fa-regular fa-comments fa-2x d-block mb-3'),
            'No conversations yet',
          ]),
        );
      } else {
        list.replaceChildren(...conversations.map((c) => conversationItem(c, me)));
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        ctx.navigate({ name: 'sign-in' });
        return;
      }
      setError(errorMessage(err));
    } finally {
      loading.remove();
    }
  }
  void load();

  return h('div', { class: 'conversations-screen' }, [
    header,
    h('main', { class: 'container py-4 conv-container' }, [
      h('h1', { class: 'h5 mb-3', text: 'Conversations' }),
      error,
      loading,
      list,
    ]),
  ]);
}
