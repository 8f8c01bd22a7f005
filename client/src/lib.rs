//! `chatapp-client`: the one Rust client of ChatApp, built on the `protocol` crate's
//! wire types. The desktop app, the server's end-to-end tests and the benchmark use it.
//!
//! Three layers, each usable alone:
//!
//! - [`Api`]: every REST route as a typed method (`register`, `login`, `logout`, `me`,
//!   `update_me`, `put_avatar`, `delete_avatar`, `search_users`, `user`, `conversations`,
//!   `direct_conversation`, `create_group`, `conversation`, `rename_conversation`,
//!   `add_members`, `remove_member`, `history`, `send_message`, `mark_read`,
//!   `upload_voice` (streamed, with [`UploadProgress`]), `download`, `health`). The
//!   session is a Bearer token; clones share it. Refusals come back as
//!   [`ClientError::Api`]` { status, code, message, retry_after }`.
//! - [`Socket`]: one WebSocket to `/api/ws` (Bearer header, TCP_NODELAY), typed events,
//!   the close code. No policy.
//! - [`Realtime`]: the managed connection. It keeps per-conversation cursors, sends
//!   `resume` with them on every connection, reconnects by itself with exponential
//!   backoff and jitter ([`Backoff`]), delivers each message exactly once and in seq order
//!   per conversation (duplicates dropped by `(conversation_id, seq)`, holes filled from
//!   history), answers pings, and sends an outbox: [`Realtime::send`] returns the
//!   `client_id` at once and the message is sent with that `client_id` on every
//!   connection until acked ([`OutboxEvent::Acked`]) or refused for good
//!   ([`OutboxEvent::Failed`]); `rate_limited` and `storage_full` are retried later
//!   ([`OutboxEvent::Deferred`]). Close code 4001 (or a 401) ends it:
//!   [`ConnectionState::SessionEnded`], no reconnection. The outbox
//!   ([`Realtime::pending`], [`PendingMessage`] is serde) and the cursors
//!   ([`Realtime::cursors`]) can be saved and handed back through [`RealtimeOptions`].
//!
//! Events come out of a bounded `tokio::sync::mpsc::Receiver<`[`Event`]`>`:
//! [`Event::Server`] (a [`protocol::ServerEvent`]), [`Event::State`] (connection state
//! changes) and [`Event::Outbox`].
//!
//! ```no_run
//! use chatapp_client::{Api, ConnectionState, Event, OutboxEvent, Realtime, RealtimeOptions, Upload};
//! use chatapp_client::protocol::ServerEvent;
//!
//! # async fn demo() -> Result<(), chatapp_client::ClientError> {
//! let api = Api::new("http://127.0.0.1:8080")?;
//! api.login("ann", "correct horse battery staple").await?; // the token is kept in `api`
//! let ben = api.search_users("ben", None).await?.remove(0);
//! let chat = api.direct_conversation(ben.id).await?;
//!
//! let (rt, mut events) = Realtime::start(api.clone(), RealtimeOptions::default());
//! let client_id = rt.send(chat.id, "hello"); // queued; sent when live, until acked
//!
//! let (tx, progress) = tokio::sync::watch::channel(Default::default());
//! let wav = std::fs::read("note.wav").expect("a recording");
//! let voice = api.upload_voice(chat.id, Upload::wav(wav).progress(tx)).await?;
//! println!("{} ms, {:?} sent", voice.attachment.map_or(0, |a| a.duration_ms.unwrap_or(0)), *progress.borrow());
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Server(ServerEvent::Message { message }) => println!("{}: {}", message.sender_id, message.body),
//!         Event::Outbox(OutboxEvent::Acked { client_id: id, message }) if id == client_id => {
//!             println!("stored as seq {}", message.seq)
//!         }
//!         Event::State(ConnectionState::SessionEnded { .. }) => break, // sign in again
//!         Event::State(state) => println!("{state:?}"),
//!         _ => {}
//!     }
//! }
//! // Before quitting: save `rt.pending()` and `rt.cursors()` for the next start.
//! rt.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod backoff;
mod error;
mod outbox;
mod realtime;
mod sequencer;
mod socket;

pub use chatapp_protocol as protocol;

pub use api::{Api, Download, Upload, UploadProgress, file_path};
pub use backoff::Backoff;
pub use error::{ClientError, Result, StatusCode};
pub use outbox::{PendingMessage, new_client_id};
pub use realtime::{ConnectionState, Event, OutboxEvent, Realtime, RealtimeOptions};
pub use socket::{Socket, WsStream};
/// The WebSocket library's types (frames, errors), as used by [`Socket`].
pub use tokio_tungstenite::tungstenite;
