//! Real-time delivery: the WebSocket endpoint, the hub of connections on this
//! instance, and the publishing side every handler calls after a change is committed
//! (`publish_*`). Each publish delivers to this instance's connections and, on
//! PostgreSQL, tells the other instances (ids only; they read the rows themselves).

pub mod connection;
pub mod fanout;
pub mod hub;

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use chatapp_protocol::ServerEvent;
use time::OffsetDateTime;

pub use hub::{CloseReason, Hub, Outbound};

use crate::{
    AppState, conversations,
    messages::message_view,
    store::{MessageRow, StoreResult, time_of},
};
use fanout::Notice;

/// Serialises an event once; the bytes are shared by every receiving connection.
pub fn encode(event: &ServerEvent) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(event).unwrap_or_else(|err| {
        tracing::error!(error = %err, "event did not serialise");
        String::from(r#"{"type":"error","code":"internal","message":"event lost"}"#)
    }))
}

impl AppState {
    /// Members of a conversation, from the hub's cache or the store.
    pub async fn members_of(&self, conversation_id: i64) -> StoreResult<Arc<[i64]>> {
        let epoch = match self.hub.cached_members(conversation_id) {
            Ok(members) => return Ok(members),
            Err(epoch) => epoch,
        };
        let members: Arc<[i64]> = self.store.member_ids(conversation_id).await?.into();
        self.hub
            .cache_members(conversation_id, Arc::clone(&members), epoch);
        Ok(members)
    }

    /// A new message: `message` to every connection of every member here (but the
    /// sender's connection `origin`, which gets an `ack`), and to the other instances.
    pub async fn publish_message(&self, row: &MessageRow, origin: Option<u64>) {
        self.deliver_message(row, origin).await;
        self.fanout.notify(Notice::Message {
            conversation_id: row.conversation_id,
            seq: row.seq,
        });
    }

    pub(crate) async fn deliver_message(&self, row: &MessageRow, origin: Option<u64>) {
        match self.members_of(row.conversation_id).await {
            Ok(members) => {
                let frame = encode(&ServerEvent::Message {
                    message: message_view(row),
                });
                let item = Outbound::Message {
                    conversation_id: row.conversation_id,
                    seq: row.seq,
                    frame,
                    ack: false,
                };
                self.hub.send_to_users(&members, &item, origin);
                self.fanout.delivered(row.conversation_id, row.seq);
            }
            Err(err) => tracing::warn!(error = %err, "cannot route a message"),
        }
    }

    /// `typing` to the other members (never back to the typist).
    pub async fn publish_typing(&self, conversation_id: i64, user_id: i64) {
        self.deliver_typing(conversation_id, user_id).await;
        self.fanout.notify(Notice::Typing {
            conversation_id,
            user_id,
        });
    }

    pub(crate) async fn deliver_typing(&self, conversation_id: i64, user_id: i64) {
        if let Ok(members) = self.members_of(conversation_id).await {
            let others: Vec<i64> = members.iter().copied().filter(|m| *m != user_id).collect();
            let frame = encode(&ServerEvent::Typing {
                conversation_id,
                user_id,
            });
            self.hub
                .send_to_users(&others, &Outbound::Event(frame), None);
        }
    }

    /// `read` to every member (the reader's other connections too, so their unread
    /// counts follow).
    pub async fn publish_read(&self, conversation_id: i64, user_id: i64, seq: i64) {
        self.deliver_read(conversation_id, user_id, seq).await;
        self.fanout.notify(Notice::Read {
            conversation_id,
            user_id,
            seq,
        });
    }

    pub(crate) async fn deliver_read(&self, conversation_id: i64, user_id: i64, seq: i64) {
        if let Ok(members) = self.members_of(conversation_id).await {
            let frame = encode(&ServerEvent::Read {
                conversation_id,
                user_id,
                seq,
            });
            self.hub
                .send_to_users(&members, &Outbound::Event(frame), None);
        }
    }

    /// A conversation was created, renamed, or its members changed: each member gets it
    /// as they see it; each user in `removed` gets it without themselves in `members`.
    pub async fn publish_conversation(&self, conversation_id: i64, removed: &[i64]) {
        self.deliver_conversation(conversation_id, removed).await;
        self.fanout.notify(Notice::Conversation {
            conversation_id,
            removed: removed.to_vec(),
        });
    }

    pub(crate) async fn deliver_conversation(&self, conversation_id: i64, removed: &[i64]) {
        self.hub.forget_members(conversation_id);
        let members = match self.members_of(conversation_id).await {
            Ok(members) => members,
            Err(err) => {
                tracing::warn!(error = %err, "cannot route a conversation change");
                return;
            }
        };
        for &member in members.iter().filter(|m| self.hub.is_online(**m)) {
            match conversations::load(self, conversation_id, member).await {
                Ok(conversation) => {
                    let frame = encode(&ServerEvent::Conversation { conversation });
                    self.hub
                        .send_to_users(&[member], &Outbound::Event(frame), None);
                }
                Err(err) => tracing::debug!(error = %err, "conversation view"),
            }
        }
        let gone: Vec<i64> = removed
            .iter()
            .copied()
            .filter(|u| self.hub.is_online(*u))
            .collect();
        if !gone.is_empty() {
            if let Ok(conversation) = conversations::load_as_outsider(self, conversation_id).await {
                let frame = encode(&ServerEvent::Conversation { conversation });
                self.hub.send_to_users(&gone, &Outbound::Event(frame), None);
            }
        }
    }

    /// A profile changed: `user_updated` to everyone who shares a conversation with the
    /// user, and to the user's own connections.
    pub async fn publish_user_updated(&self, user_id: i64) {
        self.deliver_user_updated(user_id).await;
        self.fanout.notify(Notice::UserUpdated { user_id });
    }

    pub(crate) async fn deliver_user_updated(&self, user_id: i64) {
        let (Ok(row), Ok(mut audience)) = (
            self.store.user_by_id(user_id).await,
            self.store.contact_ids(user_id).await,
        ) else {
            return;
        };
        audience.push(user_id);
        let frame = encode(&ServerEvent::UserUpdated {
            user: self.public_user(&row),
        });
        self.hub
            .send_to_users(&audience, &Outbound::Event(frame), None);
    }

    /// `presence` to everyone who shares a conversation with the user.
    pub(crate) async fn deliver_presence(
        &self,
        user_id: i64,
        online: bool,
        last_seen: Option<OffsetDateTime>,
    ) {
        let Ok(contacts) = self.store.contact_ids(user_id).await else {
            return;
        };
        let frame = encode(&ServerEvent::Presence {
            user_id,
            online,
            last_seen,
        });
        self.hub
            .send_to_users(&contacts, &Outbound::Event(frame), None);
    }

    /// Sessions ended (signed out, or revoked by a password change): their connections
    /// close at once, here and on every other instance.
    pub fn end_sessions(&self, session_ids: Vec<i64>) {
        if session_ids.is_empty() {
            return;
        }
        self.hub.end_sessions(&session_ids);
        self.fanout.notify(Notice::SessionsEnded { session_ids });
    }

    /// The user's first connection here opened.
    pub(crate) async fn came_online(&self, user_id: i64) {
        let was_online_elsewhere = self.fanout.online_elsewhere(user_id);
        self.fanout.announce(user_id, true).await;
        if !was_online_elsewhere {
            let last_seen = self
                .store
                .user_by_id(user_id)
                .await
                .ok()
                .and_then(|u| u.last_seen_at);
            self.deliver_presence(user_id, true, last_seen.map(time_of))
                .await;
        }
    }

    /// The user's last connection here closed.
    pub(crate) async fn went_offline(&self, user_id: i64) {
        let now = crate::store::now_ms();
        if let Err(err) = self.store.set_last_seen(user_id, now).await {
            tracing::warn!(error = %err, "cannot record last seen");
        }
        self.fanout.announce(user_id, false).await;
        if !self.fanout.online_elsewhere(user_id) && !self.hub.is_online(user_id) {
            self.deliver_presence(user_id, false, Some(time_of(now)))
                .await;
        }
    }
}

/// Closes connections whose session no longer exists (ended while a notice was missed,
/// or removed by expiry).
pub async fn end_vanished_sessions(state: &AppState) {
    let open = state.hub.session_ids();
    if open.is_empty() {
        return;
    }
    match state.store.existing_sessions(&open).await {
        Ok(existing) => {
            let existing: std::collections::HashSet<i64> = existing.into_iter().collect();
            let gone: Vec<i64> = open.into_iter().filter(|s| !existing.contains(s)).collect();
            state.hub.end_sessions(&gone);
        }
        Err(err) => tracing::warn!(error = %err, "cannot check the open connections' sessions"),
    }
}
