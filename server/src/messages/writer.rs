//! Group commit: sends from every connection and REST request are queued to the writer
//! tasks (`--db-writers`, one by default), each of which stores whatever has queued up in
//! one transaction, so one durable commit (fsync) covers many messages. Nothing is
//! answered before commit.
//!
//! Jobs are sharded by conversation, so one conversation's sends keep their order and
//! two writers never contend for the same conversation row. After each commit the writer
//! hands the batch, in seq order, to its [`Deliver`] (the new messages to the members,
//! each acknowledgement to the connection that sent it) before it answers anyone or takes
//! the next batch: so every connection gets a conversation's messages and its own
//! acknowledgements in seq order, and none sees a gap to fill from the store or its own
//! message come back.

use std::sync::Arc;

use chatapp_protocol::MessageKind;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::store::{FileMeta, MessageRow, NewMessage, Store, StoreError, StoreResult};

/// Most messages stored in one transaction.
const MAX_BATCH: usize = 256;
/// Pending sends per writer before senders wait.
const QUEUE: usize = 4096;

pub struct OwnedNewMessage {
    pub conversation_id: i64,
    pub sender_id: i64,
    pub kind: MessageKind,
    pub body: String,
    pub client_id: Option<String>,
    /// A voice message's file (already in the blob store).
    pub file: Option<FileMeta>,
    /// The WebSocket connection that sent it, which gets the acknowledgement (none for
    /// REST: the answer is the acknowledgement).
    pub origin: Option<Origin>,
}

/// The connection a message was sent on, and the sender's id for it.
#[derive(Debug, Clone)]
pub struct Origin {
    pub user_id: i64,
    pub conn_id: u64,
    pub client_id: String,
}

/// A message as committed: the row, whether this send stored it (a retried `client_id`
/// finds the stored one) and where it was sent from.
pub struct Committed {
    pub row: MessageRow,
    pub created: bool,
    pub origin: Option<Origin>,
}

/// What happens to each committed batch, before the writer answers or goes on: the
/// messages and the acknowledgements are delivered, in seq order.
pub trait Deliver: Send + Sync + 'static {
    fn committed<'a>(&'a self, batch: &'a [Committed]) -> BoxFuture<'a, ()>;
}

struct Job {
    message: OwnedNewMessage,
    reply: oneshot::Sender<StoreResult<(MessageRow, bool)>>,
}

#[derive(Clone)]
pub struct MessageWriter {
    shards: Vec<mpsc::Sender<Job>>,
}

impl MessageWriter {
    /// Starts `writers` writer tasks on `store`. With `own_thread` each runs on a thread
    /// of its own (its own small runtime), so its many short waits on the database are
    /// not queued behind the WebSocket work on the shared runtime: used for SQLite,
    /// whose connections are not tied to a runtime.
    pub fn start(
        store: Store,
        writers: usize,
        own_thread: bool,
        deliver: Arc<dyn Deliver>,
    ) -> Self {
        let shards = (0..writers.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let store = store.clone();
                let deliver = Arc::clone(&deliver);
                if own_thread {
                    let spawned = std::thread::Builder::new()
                        .name(format!("msg-writer-{i}"))
                        .spawn(move || {
                            match tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                            {
                                Ok(rt) => rt.block_on(run(store, rx, deliver)),
                                Err(err) => tracing::error!(error = %err, "message writer runtime"),
                            }
                        });
                    if let Err(err) = spawned {
                        tracing::error!(error = %err, "cannot start a message writer thread");
                    }
                } else {
                    tokio::spawn(run(store, rx, deliver));
                }
                tx
            })
            .collect();
        Self { shards }
    }

    /// Stores a message (or finds the one stored under its `client_id`); answers after
    /// commit and delivery.
    pub async fn write(&self, message: OwnedNewMessage) -> StoreResult<(MessageRow, bool)> {
        let shard = usize::try_from(message.conversation_id.unsigned_abs()).unwrap_or_default()
            % self.shards.len();
        let (reply, answer) = oneshot::channel();
        self.shards[shard]
            .send(Job { message, reply })
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, deliver: Arc<dyn Deliver>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let batch: Vec<NewMessage<'_>> = jobs
            .iter()
            .map(|job| NewMessage {
                conversation_id: job.message.conversation_id,
                sender_id: job.message.sender_id,
                kind: job.message.kind,
                body: &job.message.body,
                client_id: job.message.client_id.as_deref(),
                file: job.message.file.as_ref(),
            })
            .collect();
        let started = std::time::Instant::now();
        let results = if batch.len() == 1 {
            vec![store.insert_message(&batch[0]).await]
        } else {
            store.insert_messages(&batch).await
        };
        tracing::debug!(
            size = batch.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch stored"
        );
        drop(batch);
        // In seq order: a conversation's sends are in one shard, stored in queue order.
        let committed: Vec<Committed> = jobs
            .iter_mut()
            .zip(&results)
            .filter_map(|(job, result)| {
                let (row, created) = result.as_ref().ok()?;
                Some(Committed {
                    row: row.clone(),
                    created: *created,
                    origin: job.message.origin.take(),
                })
            })
            .collect();
        if !committed.is_empty() {
            deliver.committed(&committed).await;
        }
        for (job, result) in jobs.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}
