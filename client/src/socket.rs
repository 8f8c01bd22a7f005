//! One WebSocket connection to `/api/ws`, no policy: connect (Bearer, TCP_NODELAY), read
//! `hello`, send and receive protocol events, see the close code. [`crate::Realtime`] builds
//! reconnection, resume and the outbox on top; tests and the benchmark use it directly.

use std::collections::BTreeMap;

use chatapp_protocol::{ClientEvent, Me, ServerEvent};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message as Frame,
        client::IntoClientRequest,
        http::{HeaderName, HeaderValue},
    },
};

use crate::{
    Api,
    error::{ClientError, Result},
};

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket to the server speaking the protocol's events.
pub struct Socket {
    stream: WsStream,
    /// The close frame's code, once the server sent one.
    close_code: Option<u16>,
}

impl Socket {
    /// Opens `/api/ws` with the [`Api`]'s token and reads `hello`.
    pub async fn connect(api: &Api) -> Result<(Self, Me)> {
        let token = api.token().ok_or(ClientError::NotSignedIn)?;
        let bearer = format!("Bearer {token}");
        let mut socket = Self::open(&api.ws_url(), &[("authorization", &bearer)]).await?;
        let me = socket.hello().await?;
        Ok((socket, me))
    }

    /// Opens a WebSocket at `url` with the given headers (TCP_NODELAY); reads nothing.
    /// A refused handshake is a [`ClientError::Api`] (e.g. 401 `unauthorized`).
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Result<Self> {
        let mut req = url.into_client_request().map_err(ClientError::from_ws)?;
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::from_ws(tungstenite::Error::HttpFormat(e.into())))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| ClientError::from_ws(tungstenite::Error::HttpFormat(e.into())))?;
            req.headers_mut().insert(name, value);
        }
        let (stream, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .map_err(ClientError::from_ws)?;
        Ok(Self {
            stream,
            close_code: None,
        })
    }

    /// Reads the server's greeting.
    pub async fn hello(&mut self) -> Result<Me> {
        match self.next_event().await? {
            Some(ServerEvent::Hello { user }) => Ok(user),
            Some(other) => Err(ClientError::Decode {
                status: reqwest::StatusCode::SWITCHING_PROTOCOLS,
                detail: format!("expected hello, got {other:?}"),
            }),
            None => Err(closed()),
        }
    }

    pub async fn send(&mut self, event: &ClientEvent) -> Result<()> {
        let text = serde_json::to_string(event).map_err(|e| ClientError::Decode {
            status: reqwest::StatusCode::OK,
            detail: e.to_string(),
        })?;
        self.send_frame(Frame::text(text)).await
    }

    /// Queues an event without flushing (follow with [`Socket::flush`]).
    pub async fn feed(&mut self, event: &ClientEvent) -> Result<()> {
        let text = serde_json::to_string(event).map_err(|e| ClientError::Decode {
            status: reqwest::StatusCode::OK,
            detail: e.to_string(),
        })?;
        self.stream
            .feed(Frame::text(text))
            .await
            .map_err(ClientError::from_ws)
    }

    pub async fn flush(&mut self) -> Result<()> {
        self.stream.flush().await.map_err(ClientError::from_ws)
    }

    /// Sends any frame as it is (including malformed ones, for tests).
    pub async fn send_frame(&mut self, frame: Frame) -> Result<()> {
        self.stream.send(frame).await.map_err(ClientError::from_ws)
    }

    /// The next text frame, raw; `None` once the connection is closed (see
    /// [`Socket::close_code`]). Pings are answered by the WebSocket layer.
    pub async fn next_text(&mut self) -> Result<Option<tungstenite::Utf8Bytes>> {
        loop {
            match self.stream.next().await {
                Some(Ok(Frame::Text(text))) => return Ok(Some(text)),
                Some(Ok(Frame::Close(frame))) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    return Ok(None);
                }
                Some(Ok(_)) => {}
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                ))
                | None => return Ok(None),
                Some(Err(err)) => return Err(ClientError::from_ws(err)),
            }
        }
    }

    /// The next event; `None` once the connection is closed.
    pub async fn next_event(&mut self) -> Result<Option<ServerEvent>> {
        let Some(text) = self.next_text().await? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClientError::Decode {
                status: reqwest::StatusCode::SWITCHING_PROTOCOLS,
                detail: format!("event: {e}"),
            })
    }

    /// Sends `resume {cursors}` and reads until `synced`; what was replayed.
    pub async fn resume(&mut self, cursors: &BTreeMap<i64, i64>) -> Result<Vec<ServerEvent>> {
        self.resume_with_changes(cursors, &BTreeMap::new()).await
    }

    /// Sends `resume {cursors, changes}` and reads until `synced`; what was replayed
    /// (`message` events, then `message_updated` for the changes).
    pub async fn resume_with_changes(
        &mut self,
        cursors: &BTreeMap<i64, i64>,
        changes: &BTreeMap<i64, i64>,
    ) -> Result<Vec<ServerEvent>> {
        self.send(&ClientEvent::Resume {
            cursors: cursors.clone(),
            changes: changes.clone(),
        })
        .await?;
        let mut replayed = Vec::new();
        loop {
            match self.next_event().await? {
                Some(ServerEvent::Synced) => return Ok(replayed),
                Some(ev) => replayed.push(ev),
                None => return Err(closed()),
            }
        }
    }

    /// The code of the server's close frame, once one was read.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// Closes politely (a close frame without a code) and reads until the server's answer.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
        while let Some(Ok(_)) = self.stream.next().await {}
    }

    pub fn get_mut(&mut self) -> &mut WsStream {
        &mut self.stream
    }

    /// The raw stream, for a hot loop that parses frames its own way (the benchmark).
    pub fn into_inner(self) -> WsStream {
        self.stream
    }
}

fn closed() -> ClientError {
    ClientError::WebSocket(Box::new(tungstenite::Error::ConnectionClosed))
}
