//! Group commit: sends from every connection and REST request are queued to the writer
//! tasks (`--db-writers`, one by default), each of which stores whatever has queued up in
//! one transaction, so one durable commit (fsync) covers many messages. Nothing is
//! answered before commit.
//!
//! Jobs are sharded by conversation, so one conversation's sends keep their order and
//! two writers never contend for the same conversation row. Each committed batch, with
//! the answers owed for it, is delivered in commit order and, within it, in seq order by
//! the [`Deliver`] (the new messages to the members, each acknowledgement to the
//! connection that sent it) before anyone is answered: so every connection gets a
//! conversation's messages and its own acknowledgements in seq order, and none sees a
//! gap to fill from the store or its own message come back. A writer on its own thread
//! hands the batches to a delivery task on the main runtime and goes on; one on the main
//! runtime delivers them itself (see [`Handoff`]).

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
    /// The answered message's id (checked to be of the same conversation).
    pub reply_to_id: Option<i64>,
    /// The members mentioned (ascending ids).
    pub mentions: Vec<i64>,
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

type Reply = oneshot::Sender<StoreResult<(MessageRow, bool)>>;

struct Job {
    message: OwnedNewMessage,
    reply: Reply,
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
                if own_thread {
                    let (done_tx, done_rx) = mpsc::channel(DELIVERY_QUEUE);
                    tokio::spawn(deliver_batches(done_rx, Arc::clone(&deliver)));
                    let handoff = Handoff::Task(done_tx);
                    let spawned = std::thread::Builder::new()
                        .name(format!("msg-writer-{i}"))
                        .spawn(move || {
                            match tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                            {
                                Ok(rt) => rt.block_on(run(store, rx, handoff)),
                                Err(err) => tracing::error!(error = %err, "message writer runtime"),
                            }
                        });
                    if let Err(err) = spawned {
                        tracing::error!(error = %err, "cannot start a message writer thread");
                    }
                } else {
                    tokio::spawn(run(store, rx, Handoff::Inline(Arc::clone(&deliver))));
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
        let started = std::time::Instant::now();
        let (reply, answer) = oneshot::channel();
        self.shards[shard]
            .send(Job { message, reply })
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        let result = answer
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        if result.is_ok() {
            crate::metrics::acknowledged(started.elapsed());
        }
        result
    }
}

/// A committed batch on its way to delivery, with the answers owed for it.
struct Done {
    committed: Vec<Committed>,
    replies: Vec<(Reply, StoreResult<(MessageRow, bool)>)>,
}

/// Committed batches waiting for delivery before the writer waits for the delivery task.
const DELIVERY_QUEUE: usize = 64;

/// Where a writer's committed batches go.
enum Handoff {
    /// A writer on a thread of its own (SQLite) hands them to a delivery task on the main
    /// runtime and goes on committing: the fan-out wakes the connections' tasks from
    /// inside their runtime, and the next commit overlaps the last delivery.
    Task(mpsc::Sender<Done>),
    /// A writer on the main runtime (PostgreSQL) delivers each batch itself before it
    /// takes the next: overlapping them there made the writer's round trips to the
    /// database wait behind the woken connections' tasks (BENCHMARKS.md, section 9).
    Inline(Arc<dyn Deliver>),
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, handoff: Handoff) {
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
                reply_to_id: job.message.reply_to_id,
                mentions: &job.message.mentions,
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
        crate::metrics::sent(committed.iter().filter(|c| c.created).count());
        let replies = jobs.drain(..).map(|job| job.reply).zip(results).collect();
        let done = Done { committed, replies };
        match &handoff {
            Handoff::Task(task) => {
                if task.send(done).await.is_err() {
                    return;
                }
            }
            Handoff::Inline(deliver) => deliver_done(deliver.as_ref(), done).await,
        }
    }
}

/// Delivers each committed batch, in commit order, then answers its senders.
async fn deliver_batches(mut batches: mpsc::Receiver<Done>, deliver: Arc<dyn Deliver>) {
    while let Some(done) = batches.recv().await {
        deliver_done(deliver.as_ref(), done).await;
    }
}

/// Delivers one committed batch (messages and acknowledgements in seq order), then
/// answers its senders.
async fn deliver_done(deliver: &dyn Deliver, Done { committed, replies }: Done) {
    if !committed.is_empty() {
        deliver.committed(&committed).await;
    }
    for (reply, result) in replies {
        let _ = reply.send(result);
    }
}
