//! Messages as the API shows them, and the rules for sending.

pub mod routes;

use chatapp_protocol::{MAX_BODY_CHARS, MAX_CLIENT_ID_LEN, Message, MessageKind};

use crate::{
    error::{ApiError, ApiResult},
    store::{MessageRow, time_of},
};

pub fn message_view(row: &MessageRow) -> Message {
    Message {
        id: row.id,
        conversation_id: row.conversation_id,
        seq: row.seq,
        sender_id: row.sender_id,
        kind: if row.kind == "voice" {
            MessageKind::Voice
        } else {
            MessageKind::Text
        },
        body: row.body.clone(),
        attachment: None,
        client_id: row.client_id.clone(),
        created_at: time_of(row.created_at),
    }
}

/// A text body must have something other than whitespace and at most 4,000 characters.
pub fn validate_body(body: &str) -> ApiResult<()> {
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
    fn client_ids() {
        assert!(validate_client_id("0b6f9c1e-4a1b-4f2e-9d7a-2c3b4d5e6f70").is_ok());
        assert!(validate_client_id("").is_err());
        assert!(validate_client_id("has space").is_err());
        assert!(validate_client_id(&"x".repeat(65)).is_err());
    }
}
