//! The reference: a minimal in-memory WebSocket broadcast relay with no persistence and
//! no authentication, speaking the same frames (`send` → `ack` to the sender, `message`
//! to every other connection of the group). Built the same way as the server's hub
//! (axum, a bounded queue per connection, each event serialised once), so the ratio
//! between the two is the price of everything else: auth, storage, durability.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
};

use axum::{
    Router,
    extract::{
        Query, State,
        ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    response::Response,
    routing::get,
    serve::ListenerExt,
};
use chatapp_protocol::{ClientEvent, MessageKind, ServerEvent};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

/// A connection: its id and its outbound queue.
type Member = (u64, mpsc::Sender<Utf8Bytes>);

#[derive(Default)]
struct Relay {
    /// group id → its members' connections.
    groups: RwLock<HashMap<i64, Vec<Member>>>,
    next_conn: AtomicI64,
    next_message: AtomicI64,
}

#[derive(serde::Deserialize)]
struct Params {
    user: i64,
    group: i64,
}

pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let relay = Arc::new(Relay::default());
    let app = Router::new()
        .route("/api/ws", get(upgrade))
        .with_state(relay);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(
    State(relay): State<Arc<Relay>>,
    Query(p): Query<Params>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| run(relay, p, socket))
}

async fn run(relay: Arc<Relay>, p: Params, socket: WebSocket) {
    let id = u64::try_from(relay.next_conn.fetch_add(1, Ordering::Relaxed)).unwrap_or_default();
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(512);
    relay
        .groups
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(p.group)
        .or_default()
        .push((id, tx.clone()));
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.feed(Message::Text(frame)).await.is_err() {
                return;
            }
            while let Ok(frame) = rx.try_recv() {
                if sink.feed(Message::Text(frame)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else { continue };
        let Ok(ClientEvent::Send {
            conversation_id,
            client_id,
            body,
            ..
        }) = serde_json::from_str::<ClientEvent>(&text)
        else {
            continue;
        };
        let seq = relay.next_message.fetch_add(1, Ordering::Relaxed) + 1;
        let message = chatapp_protocol::Message {
            id: seq,
            conversation_id,
            seq,
            sender_id: p.user,
            kind: MessageKind::Text,
            body,
            attachment: None,
            client_id: Some(client_id.clone()),
            created_at: time_now(),
            // The same shape as the server's messages, so the frames are as large.
            rev: 0,
            edited_at: None,
            deleted_at: None,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            played_by: Vec::new(),
        };
        let frame = Utf8Bytes::from(
            serde_json::to_string(&ServerEvent::Message {
                message: message.clone(),
            })
            .unwrap_or_default(),
        );
        {
            let groups = relay.groups.read().unwrap_or_else(|e| e.into_inner());
            for (conn, queue) in groups.get(&conversation_id).into_iter().flatten() {
                if *conn != id {
                    let _ = queue.try_send(frame.clone());
                }
            }
        }
        let ack = ServerEvent::Ack { client_id, message };
        let _ = tx.try_send(Utf8Bytes::from(
            serde_json::to_string(&ack).unwrap_or_default(),
        ));
    }
    writer.abort();
    if let Some(list) = relay
        .groups
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(&p.group)
    {
        list.retain(|(conn, _)| *conn != id);
    }
}

fn time_now() -> chatapp_protocol::OffsetDateTime {
    chatapp_protocol::OffsetDateTime::now_utc()
}
