//! Events between server instances sharing one PostgreSQL database.
//! (Filled in by the PostgreSQL LISTEN/NOTIFY implementation; with SQLite there is only
//! one instance and nothing to tell.)

use serde::{Deserialize, Serialize};

/// What one instance tells the others: ids only; the receiver reads the rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Notice {
    Message {
        conversation_id: i64,
        seq: i64,
    },
    Typing {
        conversation_id: i64,
        user_id: i64,
    },
    Read {
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    },
    Conversation {
        conversation_id: i64,
        removed: Vec<i64>,
    },
    UserUpdated {
        user_id: i64,
    },
    Presence {
        user_id: i64,
        online: bool,
    },
}

/// The link to the other instances (none on SQLite).
#[derive(Default)]
pub struct Fanout {}

impl Fanout {
    pub fn local() -> Self {
        Self {}
    }

    /// Tells the other instances (after the change was committed).
    pub fn notify(&self, _notice: Notice) {}

    /// Whether another instance has a connection of `user_id`.
    pub fn online_elsewhere(&self, _user_id: i64) -> bool {
        false
    }
}
