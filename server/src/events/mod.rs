//! Changes and their one path to the people they concern. A domain module that changed
//! something (after the commit) publishes one [`Change`]: `state.publish(change)`. It is
//! delivered to this instance's connections by [`deliver`] and handed to the [`Broker`],
//! which carries it to the other instances, where the same [`deliver`] runs. A `Change`
//! carries ids only (it is serializable, so any broker can carry it); delivery reads
//! what it needs from the store.
//!
//! Adding an event means: its type in `protocol`, a `Change` variant, and one arm in
//! [`deliver`]. Nothing in `realtime` (the transport) changes.

mod broker;
mod deliver;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use broker::{Broker, sessions_ended_from_outside};
pub(crate) use deliver::deliver;

use crate::{AppState, store::MessageRow, store::StoreResult};

/// Something that happened that connected people should hear about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Change {
    /// A message was stored: `message` to every member's connections but the sending
    /// one (which gets its `ack` from `socket`).
    Message { conversation_id: i64, seq: i64 },
    /// A stored message changed (edited, deleted, reacted to) and took change number
    /// `rev`: `message_updated` to every member's connections.
    MessageChanged {
        conversation_id: i64,
        seq: i64,
        rev: i64,
        /// The change was this member playing the (voice) message: `played` live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        played_by: Option<i64>,
    },
    /// A member changed their own settings of a conversation (muted): the conversation
    /// as they see it to their connections.
    Settings { conversation_id: i64, user_id: i64 },
    /// Someone is typing: `typing` to the other members.
    Typing { conversation_id: i64, user_id: i64 },
    /// Someone read up to `seq`: `read` to every member.
    Read {
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    },
    /// A conversation was created, renamed, or its members changed; `removed` get it
    /// without themselves among the members.
    Conversation {
        conversation_id: i64,
        removed: Vec<i64>,
    },
    /// A profile changed (name, avatar): `user_updated` to the user and their contacts.
    UserUpdated { user_id: i64 },
    /// These sessions ended: their connections close, on every instance.
    SessionsEnded { session_ids: Vec<i64> },
    /// `instance` gained its first (`online`) or lost its last connection of `user_id`;
    /// contacts hear `presence` when that changes whether the user is online anywhere.
    Presence {
        user_id: i64,
        online: bool,
        instance: String,
    },
}

/// What the publishing instance knows beyond the ids (other instances read the rows).
#[derive(Debug, Default, Clone, Copy)]
pub struct Local<'a> {
    /// The stored message of a `Change::Message` or `Change::MessageChanged`.
    pub row: Option<&'a MessageRow>,
    /// The connection that sent it (it gets an `ack`, not a `message`).
    pub origin: Option<u64>,
}

impl AppState {
    /// Publishes a change (call after it committed): delivered to this instance's
    /// connections, then to the other instances'.
    pub async fn publish(&self, change: Change) {
        self.publish_with(change, Local::default()).await;
    }

    /// [`AppState::publish`] with what this instance already has in hand.
    pub async fn publish_with(&self, change: Change, local: Local<'_>) {
        deliver(self, &change, local).await;
        self.broker.send(change);
    }

    /// A new message, stored: delivered without reading it back.
    pub async fn publish_message(&self, row: &MessageRow, origin: Option<u64>) {
        let change = Change::Message {
            conversation_id: row.conversation_id,
            seq: row.seq,
        };
        self.publish_with(
            change,
            Local {
                row: Some(row),
                origin,
            },
        )
        .await;
    }

    /// Whether `user_id` has an open real-time connection here or on another instance.
    pub fn is_online(&self, user_id: i64) -> bool {
        self.hub.is_online(user_id) || self.broker.online_elsewhere(user_id)
    }

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

    /// Sessions ended (signed out, or revoked by a password change): their connections
    /// close at once, here and on every other instance.
    pub async fn end_sessions(&self, session_ids: Vec<i64>) {
        if !session_ids.is_empty() {
            self.publish(Change::SessionsEnded { session_ids }).await;
        }
    }

    /// The user's first connection here opened.
    pub async fn came_online(&self, user_id: i64) {
        self.publish_presence(user_id, true).await;
    }

    /// The user's last connection here closed.
    pub async fn went_offline(&self, user_id: i64) {
        let now = crate::store::now_ms();
        if let Err(err) = self.store.set_last_seen(user_id, now).await {
            tracing::warn!(error = %err, "cannot record last seen");
        }
        self.publish_presence(user_id, false).await;
    }

    async fn publish_presence(&self, user_id: i64, online: bool) {
        let change = Change::Presence {
            user_id,
            online,
            instance: self.broker.instance().to_owned(),
        };
        self.publish(change).await;
    }
}

/// Closes connections whose session no longer exists (ended while a change was missed,
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
