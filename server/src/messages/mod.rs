//! Sending messages and moving read positions: the rules, then the writer and the
//! publishing (the wire view of a message is in `views`).

pub mod changes;
pub mod routes;
pub mod writer;

use std::sync::Weak;

use chatapp_protocol::{MAX_BODY_CHARS, MAX_CLIENT_ID_LEN, MessageKind, ReadState, ServerEvent};
use futures_util::future::BoxFuture;

use crate::{
    AppInner, AppState,
    error::{ApiError, ApiResult},
    events::Change,
    realtime::{Outbound, encode},
    store::MessageRow,
    views,
};
use writer::{Committed, Deliver, Origin, OwnedNewMessage};

/// A text message to send (REST or WebSocket).
pub struct NewText {
    pub conversation_id: i64,
    pub body: String,
    pub client_id: Option<String>,
    /// The id of the message (of the same conversation) it answers.
    pub reply_to_id: Option<i64>,
}

/// Sends a text message (REST or WebSocket): validates, stores it (group commit); the
/// writer then delivers it to the members' connections and the acknowledgement to
/// `origin`'s (see [`Delivery`]). Returns the message and whether it is new (a retried
/// `client_id` is not).
pub async fn send_text(
    state: &AppState,
    sender_id: i64,
    text: NewText,
    origin: Option<Origin>,
) -> ApiResult<(MessageRow, bool)> {
    let NewText {
        conversation_id,
        body,
        client_id,
        reply_to_id,
    } = text;
    validate_body(&body)?;
    if let Some(client_id) = &client_id {
        validate_client_id(client_id)?;
    }
    state.user_limits.check_send(sender_id)?;
    if let Some(id) = reply_to_id {
        check_reply(state, sender_id, conversation_id, id).await?;
    }
    let mentions = mentions_in(state, conversation_id, &body).await?;
    let written = state
        .writer
        .write(OwnedNewMessage {
            conversation_id,
            sender_id,
            kind: MessageKind::Text,
            body,
            client_id,
            file: None,
            reply_to_id,
            mentions,
            origin,
        })
        .await?;
    Ok(written)
}

/// A reply must answer a message of its own conversation that is still there. (Messages
/// never move between conversations and a deleted one stays deleted, so checking before
/// the store is as good as checking in its transaction.)
pub(crate) async fn check_reply(
    state: &AppState,
    sender_id: i64,
    conversation_id: i64,
    reply_to_id: i64,
) -> ApiResult<()> {
    // Not a member: the conversation does not exist for the sender.
    state.store.membership(conversation_id, sender_id).await?;
    match state.store.message_in(conversation_id, reply_to_id).await? {
        Some(row) if row.deleted_at.is_none() => Ok(()),
        Some(_) => Err(ApiError::validation(
            "invalid_reply",
            "the message answered was deleted",
        )),
        None => Err(ApiError::validation(
            "invalid_reply",
            "reply_to_id is not a message of this conversation",
        )),
    }
}

/// The members of the conversation that `body` mentions as `@username` (ignoring case),
/// by ascending id. Only a body with an `@` costs a look at the members.
pub async fn mentions_in(
    state: &AppState,
    conversation_id: i64,
    body: &str,
) -> ApiResult<Vec<i64>> {
    let names = mentioned_names(body);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let members = state.store.conversation_members(conversation_id).await?;
    let mut ids: Vec<i64> = members
        .iter()
        .filter(|m| names.contains(&m.user.username.to_lowercase()))
        .map(|m| m.user.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The lowercase usernames written as `@name` in `body`: an `@` at the start or after a
/// character that is not part of a name, then the name's characters (letters, digits,
/// `_`, `.`, `-`; a trailing `.` or `-` is punctuation, not name).
fn mentioned_names(body: &str) -> Vec<String> {
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut names = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in body.char_indices() {
        if c == '@' && !prev.is_some_and(is_name) {
            let rest = &body[i + 1..];
            let end = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
            let name = rest[..end].trim_end_matches(['.', '-']);
            if name.len() >= 3 {
                names.push(name.to_lowercase());
            }
        }
        prev = Some(c);
    }
    names
}

/// What the writer does with each committed batch, in seq order: a new message is
/// published (to every connection of every member here and on the other instances but the
/// one that sent it), and the sending connection gets its `ack` (also for a retry) in the
/// same place in its queue.
pub(crate) struct Delivery(pub(crate) Weak<AppInner>);

impl Deliver for Delivery {
    fn committed<'a>(&'a self, batch: &'a [Committed]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(inner) = self.0.upgrade() else {
                return;
            };
            let state = AppState(inner);
            for committed in batch {
                let row = &committed.row;
                if committed.created {
                    state
                        .publish_message(row, committed.origin.as_ref().map(|o| o.conn_id))
                        .await;
                }
                if let Some(origin) = &committed.origin {
                    let frame = encode(&ServerEvent::Ack {
                        client_id: origin.client_id.clone(),
                        message: views::message(row),
                    });
                    state.hub.send_to_conn(
                        origin.user_id,
                        origin.conn_id,
                        Outbound::Message {
                            conversation_id: row.conversation_id,
                            seq: row.seq,
                            frame,
                            ack: true,
                        },
                    );
                }
            }
        })
    }
}

/// Moves `user_id`'s read position forward (never back) to `seq` and tells the members.
pub async fn mark_read(
    state: &AppState,
    user_id: i64,
    conversation_id: i64,
    seq: i64,
) -> ApiResult<ReadState> {
    let row = state.store.membership(conversation_id, user_id).await?;
    let last_seq = row.conversation.last_seq;
    if seq < 0 || seq > last_seq {
        return Err(ApiError::validation(
            "invalid_seq",
            format!("seq must be between 0 and {last_seq}"),
        ));
    }
    let last_read_seq = state.store.mark_read(conversation_id, user_id, seq).await?;
    if last_read_seq > row.last_read_seq {
        state
            .publish(Change::Read {
                conversation_id,
                user_id,
                seq: last_read_seq,
            })
            .await;
    }
    Ok(ReadState {
        conversation_id,
        last_read_seq,
        unread_count: (last_seq - last_read_seq).max(0),
    })
}

/// Most words in one search.
const MAX_SEARCH_TERMS: usize = 8;

/// The words of a search query, lowercase: runs of letters and digits (at most eight,
/// each at most 64 characters). `empty_query` when there is none.
pub fn search_terms(q: &str) -> ApiResult<Vec<String>> {
    crate::text::check_no_nul(q)?;
    let terms: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(64).collect::<String>().to_lowercase())
        .take(MAX_SEARCH_TERMS)
        .collect();
    if terms.is_empty() {
        return Err(ApiError::validation(
            "empty_query",
            "a search needs at least one word",
        ));
    }
    Ok(terms)
}

/// A text body must have something other than whitespace and at most 4,000 characters.
pub fn validate_body(body: &str) -> ApiResult<()> {
    // HTTP bodies are checked where JSON is accepted; WebSocket frames arrive here.
    crate::text::check_no_nul(body)?;
    if body.trim().is_empty() {
        return Err(ApiError::validation("empty_body", "message body is empty"));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::validation(
            "body_too_long",
            format!("message body is longer than {MAX_BODY_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A `client_id` is 1–64 printable ASCII characters.
pub fn validate_client_id(client_id: &str) -> ApiResult<()> {
    if client_id.is_empty()
        || client_id.len() > MAX_CLIENT_ID_LEN
        || !client_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::validation(
            "invalid_client_id",
            format!("client_id must be 1–{MAX_CLIENT_ID_LEN} printable ASCII characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(validate_body("hi").is_ok());
        assert!(validate_body(" \n\t").is_err());
        assert!(validate_body(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(validate_body(&"é".repeat(MAX_BODY_CHARS + 1)).is_err());
    }

    #[test]
    fn mentions() {
        assert_eq!(
            mentioned_names("hi @Ann, and @bob.smith."),
            ["ann", "bob.smith"]
        );
        assert_eq!(mentioned_names("@ann"), ["ann"]);
        assert!(mentioned_names("mail ann@example.org").is_empty());
        assert!(mentioned_names("@ @a @ab").is_empty());
        assert_eq!(mentioned_names("(@carl-) @dé_ja"), ["carl", "dé_ja"]);
    }

    #[test]
    fn search_words() {
        assert_eq!(
            search_terms("Hello, World!").ok(),
            Some(vec!["hello".into(), "world".into()])
        );
        assert_eq!(
            search_terms("\"x\" OR y*").ok(),
            Some(vec!["x".into(), "or".into(), "y".into()])
        );
        assert!(search_terms("  ").is_err());
        assert!(search_terms("*:'&").is_err());
    }

    #[test]
    fn client_ids() {
        assert!(validate_client_id("0b6f9c1e-4a1b-4f2e-9d7a-2c3b4d5e6f70").is_ok());
        assert!(validate_client_id("").is_err());
        assert!(validate_client_id("has space").is_err());
        assert!(validate_client_id(&"x".repeat(65)).is_err());
    }
}
