//! Changing a message after it was sent: edit, delete, react, played. The rules are here; the
//! store applies a change atomically under the conversation's change lock (and answers
//! a change that changes nothing with the message as it is, so a retry is harmless);
//! what changed is published as `Change::MessageChanged`, which every member's
//! connections get as `message_updated`, live or on resume.

use crate::{
    AppState,
    error::{ApiError, ApiResult},
    events::{Change, Local},
    store::{ChangeOutcome, MessageChange, MessageRow},
};

/// Replaces the text of your own text message or the caption of your own photo (a blank
/// one removes the caption); mentions follow the new text.
pub async fn edit(
    state: &AppState,
    actor: i64,
    conversation_id: i64,
    seq: i64,
    mut body: String,
) -> ApiResult<MessageRow> {
    // Blank: no caption, which only a photo may be left with.
    let blank = body.trim().is_empty();
    if blank {
        crate::text::check_no_nul(&body)?;
        body.clear();
    } else {
        super::validate_body(&body)?;
    }
    // Changes share the sender's allowance with sends: a flood of edits is a flood.
    state.user_limits.check_send(actor)?;
    let mentions = super::mentions_in(state, conversation_id, &body).await?;
    let outcome = state
        .store
        .change_message(
            conversation_id,
            seq,
            actor,
            MessageChange::Edit {
                body: &body,
                mentions: &mentions,
            },
            |row| {
                if row.sender_id != actor {
                    return Err(ApiError::Forbidden(
                        "only the sender may edit a message".into(),
                    ));
                }
                not_deleted(row)?;
                if row.kind == "voice" {
                    return Err(ApiError::validation(
                        "not_text",
                        "only text messages and photo captions can be edited",
                    ));
                }
                if blank && row.kind != "photo" {
                    return Err(ApiError::validation("empty_body", "message body is empty"));
                }
                Ok(())
            },
        )
        .await?;
    Ok(published(state, outcome).await)
}

/// Deletes a message for everyone: your own, or any in a group you own. Its text, file,
/// reactions and mentions go; a tombstone stays in its place. Deleting again changes
/// nothing.
pub async fn delete(
    state: &AppState,
    actor: i64,
    conversation_id: i64,
    seq: i64,
) -> ApiResult<MessageRow> {
    state.user_limits.check_send(actor)?;
    let membership = state.store.membership(conversation_id, actor).await?;
    let owns_group = membership.conversation.owner_id == Some(actor);
    let outcome = state
        .store
        .change_message(conversation_id, seq, actor, MessageChange::Delete, |row| {
            if row.sender_id != actor && !owns_group {
                return Err(ApiError::Forbidden(
                    "only the sender or the group's owner may delete a message".into(),
                ));
            }
            Ok(())
        })
        .await?;
    if let ChangeOutcome::Changed { removed_files, .. } = &outcome {
        // After the commit: a crash before this leaves an orphan that start-up removes.
        for file in removed_files {
            state.media.forget(file).await;
        }
    }
    Ok(published(state, outcome).await)
}

/// Makes the messages of deleted accounts that still carry a file (voice, photo)
/// tombstones, each published like any deletion, and deletes their files. Run after an
/// account is deleted and at start-up (for a deletion a crash interrupted).
pub async fn remove_files_of_deleted_accounts(state: &AppState) -> ApiResult<usize> {
    let mut done = 0;
    loop {
        let batch = state.store.files_of_deleted_accounts(100).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for (conversation_id, seq) in batch {
            let outcome = state
                .store
                .delete_message_of_deleted_account(conversation_id, seq)
                .await?;
            if let ChangeOutcome::Changed { removed_files, .. } = &outcome {
                for file in removed_files {
                    state.media.forget(file).await;
                }
            }
            published(state, outcome).await;
            done += 1;
        }
    }
}

/// Adds (`on`) or takes back your reaction with `emoji` (one emoji) on a message.
pub async fn react(
    state: &AppState,
    actor: i64,
    conversation_id: i64,
    seq: i64,
    emoji: &str,
    on: bool,
) -> ApiResult<MessageRow> {
    let emoji = one_emoji(emoji)?;
    state.user_limits.check_send(actor)?;
    let outcome = state
        .store
        .change_message(
            conversation_id,
            seq,
            actor,
            MessageChange::React { emoji, on },
            not_deleted,
        )
        .await?;
    Ok(published(state, outcome).await)
}

/// Marks the voice message at `seq` played by `actor`, a member who did not send it.
/// Marking it again changes nothing.
pub async fn played(
    state: &AppState,
    actor: i64,
    conversation_id: i64,
    seq: i64,
) -> ApiResult<MessageRow> {
    state.user_limits.check_send(actor)?;
    let outcome = state
        .store
        .change_message(conversation_id, seq, actor, MessageChange::Played, |row| {
            not_deleted(row)?;
            if row.kind != "voice" {
                return Err(ApiError::validation(
                    "not_voice",
                    "only voice messages are played",
                ));
            }
            if row.sender_id == actor {
                return Err(ApiError::validation(
                    "own_message",
                    "your own voice message is not marked played",
                ));
            }
            Ok(())
        })
        .await?;
    Ok(published_as(state, outcome, Some(actor)).await)
}

/// 409 `message_deleted` for a tombstone: nothing about it changes any more.
fn not_deleted(row: &MessageRow) -> ApiResult<()> {
    if row.deleted_at.is_some() {
        return Err(ApiError::Conflict(
            "message_deleted",
            "this message was deleted".into(),
        ));
    }
    Ok(())
}

/// Publishes what changed (nothing for an unchanged message) and gives the message.
async fn published(state: &AppState, outcome: ChangeOutcome) -> MessageRow {
    published_as(state, outcome, None).await
}

/// [`published`], saying when the change was `played_by` a member playing it.
async fn published_as(
    state: &AppState,
    outcome: ChangeOutcome,
    played_by: Option<i64>,
) -> MessageRow {
    match outcome {
        ChangeOutcome::Changed { row, .. } => {
            let change = Change::MessageChanged {
                conversation_id: row.conversation_id,
                seq: row.seq,
                rev: row.rev,
                played_by,
            };
            state
                .publish_with(
                    change,
                    Local {
                        row: Some(&row),
                        origin: None,
                    },
                )
                .await;
            row
        }
        ChangeOutcome::Unchanged(row) => row,
    }
}

/// `text` if it is exactly one emoji (with its skin tone, if any), in its fully qualified
/// form (so that "❤" and "❤️" are the same reaction, and "👍" and "👍️": pickers add the
/// emoji variation selector to emojis that have no need of it).
pub fn one_emoji(text: &str) -> ApiResult<&'static str> {
    emojis::get(text)
        .or_else(|| emojis::get(&text.replace('\u{fe0f}', "")))
        .map(emojis::Emoji::as_str)
        .ok_or_else(|| ApiError::validation("invalid_emoji", "a reaction is exactly one emoji"))
}

#[cfg(test)]
mod tests {
    use super::one_emoji;

    #[test]
    fn emojis() {
        assert_eq!(one_emoji("👍").ok(), Some("👍"));
        assert_eq!(one_emoji("👍🏽").ok(), Some("👍🏽"));
        assert_eq!(one_emoji("❤").ok(), Some("❤️"));
        assert_eq!(one_emoji("👍\u{fe0f}").ok(), Some("👍"));
        assert_eq!(one_emoji("☺\u{fe0f}").ok(), Some("☺️"));
        assert_eq!(one_emoji("🇫🇷").ok(), Some("🇫🇷"));
        assert_eq!(one_emoji("👨‍👩‍👧").ok(), Some("👨‍👩‍👧"));
        for bad in ["", "a", "👍👍", "👍 ", ":+1:", "thumbs_up", "1"] {
            assert!(one_emoji(bad).is_err(), "{bad:?} accepted");
        }
    }
}
