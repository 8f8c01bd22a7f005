//! The one delivery function: a [`Change`] (published here, or carried from another
//! instance) to the frames this instance's connections get. One arm per change.

use chatapp_protocol::ServerEvent;

use super::{Change, Local};
use crate::{
    AppState, conversations,
    realtime::{Outbound, encode},
    store::time_of,
    views,
};

/// Delivers `change` to this instance's connections. `local` holds what the publishing
/// instance had in hand (the stored message, the sending connection); from another
/// instance it is empty and the rows are read here.
pub(crate) async fn deliver(state: &AppState, change: &Change, local: Local<'_>) {
    match change {
        Change::Message {
            conversation_id,
            seq,
        } => {
            let fetched;
            let row = match local.row {
                Some(row) => row,
                None => match state
                    .store
                    .messages_after(*conversation_id, seq - 1, 1)
                    .await
                {
                    Ok(rows) => match rows.into_iter().next().filter(|r| r.seq == *seq) {
                        Some(row) => {
                            fetched = row;
                            &fetched
                        }
                        None => return,
                    },
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read a published message");
                        return;
                    }
                },
            };
            match state.members_of(*conversation_id).await {
                Ok(members) => {
                    let frame = encode(&ServerEvent::Message {
                        message: views::message(row),
                    });
                    let item = Outbound::Message {
                        conversation_id: *conversation_id,
                        seq: *seq,
                        frame,
                        ack: false,
                    };
                    state.hub.send_to_users(&members, &item, local.origin);
                    state.broker.delivered(*conversation_id, *seq);
                }
                Err(err) => tracing::warn!(error = %err, "cannot route a message"),
            }
        }
        Change::MessageChanged {
            conversation_id,
            seq,
            rev,
            played_by,
        } => deliver_changed(state, *conversation_id, *seq, *rev, *played_by, local).await,
        Change::Settings {
            conversation_id,
            user_id,
        } => {
            if state.hub.is_online(*user_id)
                && let Ok(conversation) =
                    conversations::load(state, *conversation_id, *user_id).await
            {
                let frame = encode(&ServerEvent::Conversation { conversation });
                state
                    .hub
                    .send_to_users(&[*user_id], &Outbound::Event(frame), None);
            }
        }
        Change::Typing {
            conversation_id,
            user_id,
        } => {
            if let Ok(members) = state.members_of(*conversation_id).await {
                let others: Vec<i64> = members.iter().copied().filter(|m| m != user_id).collect();
                let frame = encode(&ServerEvent::Typing {
                    conversation_id: *conversation_id,
                    user_id: *user_id,
                });
                state
                    .hub
                    .send_to_users(&others, &Outbound::Event(frame), None);
            }
        }
        Change::Read {
            conversation_id,
            user_id,
            seq,
        } => {
            // Every member, the reader's other connections too (their unread counts follow).
            if let Ok(members) = state.members_of(*conversation_id).await {
                let frame = encode(&ServerEvent::Read {
                    conversation_id: *conversation_id,
                    user_id: *user_id,
                    seq: *seq,
                });
                state
                    .hub
                    .send_to_users(&members, &Outbound::Event(frame), None);
            }
        }
        Change::Conversation {
            conversation_id,
            removed,
        } => deliver_conversation(state, *conversation_id, removed).await,
        Change::UserUpdated { user_id } => {
            let (Ok(row), Ok(mut audience)) = (
                state.store.user_by_id(*user_id).await,
                state.store.contact_ids(*user_id).await,
            ) else {
                return;
            };
            audience.push(*user_id);
            let frame = encode(&ServerEvent::UserUpdated {
                user: state.public_user(&row),
            });
            state
                .hub
                .send_to_users(&audience, &Outbound::Event(frame), None);
        }
        Change::SessionsEnded { session_ids } => state.hub.end_sessions(session_ids),
        Change::Presence {
            user_id,
            online,
            instance,
        } => {
            let here = instance == state.broker.instance();
            // Whether the user counted as online anywhere before this change.
            let before = if here {
                // This instance's first connection (online) or its last (offline).
                !*online || state.broker.online_elsewhere(*user_id)
            } else {
                state.is_online(*user_id)
            };
            if !here {
                state.broker.set_remote(*user_id, instance, *online);
            }
            if state.is_online(*user_id) != before {
                tell_presence(state, *user_id).await;
            }
        }
    }
}

/// A changed message, as it is now, to every member's connections (each connection's
/// writer keeps it in the order of change numbers, see `realtime::connection`).
async fn deliver_changed(
    state: &AppState,
    conversation_id: i64,
    seq: i64,
    rev: i64,
    played_by: Option<i64>,
    local: Local<'_>,
) {
    let fetched;
    let row = match local.row {
        Some(row) => row,
        None => match state.store.message_at(conversation_id, seq).await {
            Ok(row) => {
                fetched = row;
                &fetched
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read a changed message");
                return;
            }
        },
    };
    match state.members_of(conversation_id).await {
        Ok(members) => {
            let message = views::message(row);
            let frame = encode(&match played_by {
                Some(user_id) => ServerEvent::Played { user_id, message },
                None => ServerEvent::MessageUpdated { message },
            });
            let item = Outbound::Change {
                conversation_id,
                seq,
                // Read later than the change, the row may be newer still: it says so.
                rev: row.rev.max(rev),
                frame,
            };
            state.hub.send_to_users(&members, &item, None);
            state.broker.delivered_change(conversation_id, rev);
        }
        Err(err) => tracing::warn!(error = %err, "cannot route a changed message"),
    }
}

/// Each member gets the conversation as they see it; each removed user gets it without
/// themselves in `members`.
async fn deliver_conversation(state: &AppState, conversation_id: i64, removed: &[i64]) {
    state.hub.forget_members(conversation_id);
    let members = match state.members_of(conversation_id).await {
        Ok(members) => members,
        Err(err) => {
            tracing::warn!(error = %err, "cannot route a conversation change");
            return;
        }
    };
    for &member in members.iter().filter(|m| state.hub.is_online(**m)) {
        match conversations::load(state, conversation_id, member).await {
            Ok(conversation) => {
                let frame = encode(&ServerEvent::Conversation { conversation });
                state
                    .hub
                    .send_to_users(&[member], &Outbound::Event(frame), None);
            }
            Err(err) => tracing::debug!(error = %err, "conversation view"),
        }
    }
    let gone: Vec<i64> = removed
        .iter()
        .copied()
        .filter(|u| state.hub.is_online(*u))
        .collect();
    if !gone.is_empty()
        && let Ok(conversation) = conversations::load_as_outsider(state, conversation_id).await
    {
        let frame = encode(&ServerEvent::Conversation { conversation });
        state
            .hub
            .send_to_users(&gone, &Outbound::Event(frame), None);
    }
}

/// `presence` with the user's current state (online anywhere, or the last seen time) to
/// everyone here who shares a conversation with them.
pub(crate) async fn tell_presence(state: &AppState, user_id: i64) {
    let online = state.is_online(user_id);
    let last_seen = state
        .store
        .user_by_id(user_id)
        .await
        .ok()
        .and_then(|u| u.last_seen_at)
        .map(time_of);
    let Ok(contacts) = state.store.contact_ids(user_id).await else {
        return;
    };
    let frame = encode(&ServerEvent::Presence {
        user_id,
        online,
        last_seen,
    });
    state
        .hub
        .send_to_users(&contacts, &Outbound::Event(frame), None);
}
