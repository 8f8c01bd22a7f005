//! Stored rows as the API and the WebSocket show them: pure conversions to the
//! `protocol` types, shared by the handlers and the delivery of changes.

use chatapp_protocol::{
    Attachment, Me, Message, MessageKind, Played, Reaction, ReplyPreview, Thumbnail, User,
};

use crate::store::{MessageRow, ReplyRow, UserRow, time_of};

pub fn avatar_url(avatar_id: Option<&str>) -> Option<String> {
    avatar_id.map(|id| format!("/api/files/{id}"))
}

/// The public view of an account. `online`: connected to any instance
/// (`AppState::is_online`).
pub fn public_user(row: &UserRow, online: bool) -> User {
    User {
        id: row.id,
        username: row.username.clone(),
        display_name: row.display_name.clone(),
        name_key: crate::text::name_key(&row.display_name),
        avatar_url: avatar_url(row.avatar_id.as_deref()),
        avatar_small_url: avatar_url(row.avatar_small_id.as_deref()),
        online: online && row.deleted_at.is_none(),
        last_seen: row.last_seen_at.map(time_of),
        deleted: row.deleted_at.is_some(),
    }
}

/// The owner's view of their account.
pub fn me(row: &UserRow, online: bool) -> Me {
    Me {
        id: row.id,
        username: row.username.clone(),
        display_name: row.display_name.clone(),
        name_key: crate::text::name_key(&row.display_name),
        email: row.email.clone(),
        avatar_url: avatar_url(row.avatar_id.as_deref()),
        avatar_small_url: avatar_url(row.avatar_small_id.as_deref()),
        is_admin: row.is_admin(),
        online,
        last_seen: row.last_seen_at.map(time_of),
        created_at: time_of(row.created_at),
    }
}

/// A stored message as the API and the WebSocket show it.
pub fn message(row: &MessageRow) -> Message {
    Message {
        id: row.id,
        conversation_id: row.conversation_id,
        seq: row.seq,
        sender_id: row.sender_id,
        kind: kind_of(&row.kind),
        body: row.body.clone(),
        attachment: row.file_id.as_ref().map(|id| Attachment {
            id: id.clone(),
            url: format!("/api/files/{id}"),
            mime: row.file_mime.clone().unwrap_or_default(),
            size: row.file_size.unwrap_or_default(),
            duration_ms: row.file_duration_ms,
            waveform: row
                .file_waveform
                .as_deref()
                .map(hex_decode)
                .unwrap_or_default(),
            width: row.file_width.and_then(|w| u32::try_from(w).ok()),
            height: row.file_height.and_then(|h| u32::try_from(h).ok()),
            thumbnail: row.thumb_id.as_ref().map(|id| Thumbnail {
                url: format!("/api/files/{id}"),
                mime: row.thumb_mime.clone().unwrap_or_default(),
                size: row.thumb_size.unwrap_or_default(),
                width: row
                    .thumb_width
                    .and_then(|w| u32::try_from(w).ok())
                    .unwrap_or_default(),
                height: row
                    .thumb_height
                    .and_then(|h| u32::try_from(h).ok())
                    .unwrap_or_default(),
            }),
        }),
        client_id: row.client_id.clone(),
        created_at: time_of(row.created_at),
        rev: row.rev,
        edited_at: row.edited_at.map(time_of),
        deleted_at: row.deleted_at.map(time_of),
        reply_to: row.reply.as_ref().map(|r| Box::new(reply_preview(r))),
        reactions: serde_json::from_str::<Vec<Reaction>>(&row.reactions).unwrap_or_default(),
        mentions: serde_json::from_str::<Vec<i64>>(&row.mentions).unwrap_or_default(),
        played_by: row
            .played()
            .into_iter()
            .map(|p| Played {
                user_id: p.user_id,
                at: time_of(p.at),
            })
            .collect(),
    }
}

/// Longest excerpt a reply shows of the message it answers, in characters.
const EXCERPT_CHARS: usize = 200;

/// What a reply shows of the message it answers: the first line of its text.
fn reply_preview(row: &ReplyRow) -> ReplyPreview {
    let deleted = row.deleted_at.is_some();
    let first_line = row
        .body
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    ReplyPreview {
        id: row.id,
        seq: row.seq,
        sender_id: row.sender_id,
        kind: kind_of(&row.kind),
        excerpt: if deleted {
            String::new()
        } else {
            first_line.trim().chars().take(EXCERPT_CHARS).collect()
        },
        duration_ms: if deleted { None } else { row.file_duration_ms },
        deleted,
    }
}

/// A stored message kind (the column's CHECK allows these three).
fn kind_of(kind: &str) -> MessageKind {
    match kind {
        "voice" => MessageKind::Voice,
        "photo" => MessageKind::Photo,
        _ => MessageKind::Text,
    }
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
