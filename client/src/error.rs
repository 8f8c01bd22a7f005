//! The one error type of the client: the server's error shape as a value, plus what can go
//! wrong on the way (transport, decoding, the WebSocket).

use std::time::Duration;

use chatapp_protocol::ErrorBody;
pub use reqwest::StatusCode;
use tokio_tungstenite::tungstenite;

/// What a call to the server can end with, other than its answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused: its `{"error": {"code", "message"}}` with the HTTP status
    /// (and `Retry-After` on 429).
    #[error("{message} ({status}, {code})")]
    Api {
        status: StatusCode,
        /// Stable machine-readable code, e.g. `not_found`, `rate_limited`.
        code: String,
        /// Human-readable explanation from the server.
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer: the server is unreachable, the connection broke, or it timed out.
    #[error("cannot reach the server: {0}")]
    Transport(#[source] reqwest::Error),
    /// An answer that is not what the contract says (not JSON, or the wrong shape).
    #[error("unexpected answer from the server ({status}): {detail}")]
    Decode { status: StatusCode, detail: String },
    /// The WebSocket failed (handshake or stream) without an HTTP error answer.
    #[error("WebSocket: {0}")]
    WebSocket(#[source] Box<tungstenite::Error>),
    /// The server address cannot be used.
    #[error("invalid server address {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The call needs a session and there is no token.
    #[error("not signed in")]
    NotSignedIn,
    /// The server answered with a redirect. The client never follows one: the token and
    /// the password go only to the address the person chose, never on to another scheme
    /// or host.
    #[error("the server redirects ({status}) to {location:?}")]
    Redirected {
        status: StatusCode,
        /// The `Location` the server named (empty when it named none).
        location: String,
    },
}

impl ClientError {
    /// The server's error code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of a refusal or an undecodable answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. }
            | Self::Decode { status, .. }
            | Self::Redirected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The session is gone (401, or no token): sign in again; retrying will not help.
    pub fn is_session_ended(&self) -> bool {
        matches!(self, Self::NotSignedIn) || self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    /// Trying the same call again later may succeed: no answer, 408, 429, 5xx (including
    /// 507 `storage_full`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::WebSocket(_) => true,
            Self::Api { status, .. } => {
                *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
            }
            _ => false,
        }
    }

    /// Builds the error for a non-success answer from its status, headers and body.
    pub(crate) fn from_answer(
        status: StatusCode,
        retry_after: Option<&reqwest::header::HeaderValue>,
        body: &[u8],
    ) -> Self {
        let retry_after = retry_after
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => Self::Api {
                status,
                code: error.code,
                message: error.message,
                retry_after,
            },
            // A proxy's page or an empty body: keep the status, name it as a code.
            Err(_) => Self::Api {
                status,
                code: format!("http_{}", status.as_u16()),
                message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                retry_after,
            },
        }
    }

    /// A WebSocket error; a refused handshake becomes [`ClientError::Api`] (e.g. 401).
    pub(crate) fn from_ws(err: tungstenite::Error) -> Self {
        match err {
            tungstenite::Error::Http(response) => {
                let status = StatusCode::from_u16(response.status().as_u16())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| reqwest::header::HeaderValue::from_bytes(v.as_bytes()).ok());
                let body = response.body().as_deref().unwrap_or_default();
                Self::from_answer(status, retry_after.as_ref(), body)
            }
            other => Self::WebSocket(Box::new(other)),
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(err: reqwest::Error) -> Self {
        Self::Transport(err)
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shape_becomes_a_typed_error() {
        let retry = reqwest::header::HeaderValue::from_static("7");
        let err = ClientError::from_answer(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&retry),
            br#"{"error":{"code":"rate_limited","message":"slow down"}}"#,
        );
        assert_eq!(err.code(), Some("rate_limited"));
        assert!(err.is_retryable());
        assert!(matches!(
            err,
            ClientError::Api { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        let other = ClientError::from_answer(StatusCode::UNAUTHORIZED, None, b"<html>");
        assert!(other.is_session_ended());
        assert_eq!(other.code(), Some("http_401"));
        assert!(!other.is_retryable());
    }
}
