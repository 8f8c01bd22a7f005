//! Conversations as the API shows them, and the rules for creating and changing them.

pub mod routes;

use std::collections::HashMap;

use chatapp_protocol::{Conversation, ConversationKind, MAX_GROUP_MEMBERS, ReadPosition};

use crate::{
    AppState,
    error::{ApiError, ApiResult},
    store::{MemberRow, MembershipRow, MessageRow, time_of},
    views,
};

pub const TITLE_MAX_CHARS: usize = 100;

pub fn clean_title(title: &str) -> ApiResult<String> {
    Ok(crate::text::clean_label(
        title,
        "title",
        "invalid_title",
        TITLE_MAX_CHARS,
    )?)
}

fn kind_of(row: &MembershipRow) -> ConversationKind {
    if row.conversation.kind == "group" {
        ConversationKind::Group
    } else {
        ConversationKind::Direct
    }
}

pub fn is_group(row: &MembershipRow) -> bool {
    kind_of(row) == ConversationKind::Group
}

fn view(
    state: &AppState,
    row: &MembershipRow,
    members: &[MemberRow],
    last: Option<&MessageRow>,
) -> Conversation {
    let c = &row.conversation;
    Conversation {
        id: c.id,
        kind: kind_of(row),
        title: c.title.clone(),
        owner_id: c.owner_id,
        members: members.iter().map(|m| state.public_user(&m.user)).collect(),
        read_positions: members
            .iter()
            .map(|m| ReadPosition {
                user_id: m.user.id,
                last_read_seq: m.last_read_seq,
            })
            .collect(),
        last_message: last.map(views::message),
        unread_count: (c.last_seq - row.last_read_seq).max(0),
        last_read_seq: row.last_read_seq,
        last_seq: c.last_seq,
        last_change: c.last_change,
        unread_mentions: row.unread_mentions,
        muted: row.muted != 0,
        created_at: time_of(c.created_at),
        last_activity_at: time_of(c.last_activity_at),
    }
}

/// One conversation as `user_id` sees it; `NotFound` unless they are a member.
pub async fn load(state: &AppState, id: i64, user_id: i64) -> ApiResult<Conversation> {
    let row = state.store.membership(id, user_id).await?;
    let members = state.store.conversation_members(id).await?;
    let (last, _) = state.store.history(id, None, 1).await?;
    Ok(view(state, &row, &members, last.first()))
}

/// A conversation as someone who just left it (or was removed) sees it: current
/// members, nothing unread.
pub async fn load_as_outsider(state: &AppState, id: i64) -> ApiResult<Conversation> {
    let conversation = state.store.conversation(id).await?;
    let members = state.store.conversation_members(id).await?;
    let row = MembershipRow {
        last_read_seq: conversation.last_seq,
        conversation,
        muted: 0,
        unread_mentions: 0,
    };
    Ok(view(state, &row, &members, None))
}

/// Every conversation of `user_id`, newest activity first.
pub async fn list(state: &AppState, user_id: i64) -> ApiResult<Vec<Conversation>> {
    let rows = state.store.memberships(user_id).await?;
    let mut members: HashMap<i64, Vec<MemberRow>> = HashMap::new();
    for (conversation_id, member) in state.store.members_of_memberships(user_id).await? {
        members.entry(conversation_id).or_default().push(member);
    }
    let last: HashMap<i64, MessageRow> = state
        .store
        .last_messages_of_memberships(user_id)
        .await?
        .into_iter()
        .map(|m| (m.conversation_id, m))
        .collect();
    Ok(rows
        .iter()
        .map(|row| {
            let id = row.conversation.id;
            view(
                state,
                row,
                members.get(&id).map(Vec::as_slice).unwrap_or_default(),
                last.get(&id),
            )
        })
        .collect())
}

/// Drops repeated `ids`, then checks that they are existing users and that a group of
/// `current` members can take them.
pub async fn check_new_members(
    state: &AppState,
    ids: &[i64],
    current: usize,
) -> ApiResult<Vec<i64>> {
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    if current + unique.len() > MAX_GROUP_MEMBERS {
        return Err(ApiError::validation(
            "too_many_members",
            format!("a group has at most {MAX_GROUP_MEMBERS} members"),
        ));
    }
    if state.store.count_existing_users(&unique).await? != unique.len() {
        return Err(ApiError::validation(
            "unknown_user",
            "one of the user ids does not exist",
        ));
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(clean_title("  Family ").expect("ok"), "Family");
        assert!(clean_title("").is_err());
        assert!(clean_title(&"x".repeat(101)).is_err());
    }
}
