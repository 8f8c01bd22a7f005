//! The storage interface: the one seam between HTTP and SQL. One query layer over
//! sqlx `Any` with portable SQL (`$1` placeholders, `RETURNING`), branching only where
//! the databases truly differ. Every method answers one question the server asks;
//! "not found" and "conflict" are values, not strings to parse.
//!
//! `instances` is the PostgreSQL-only part: the bookkeeping of server instances sharing
//! one database and their LISTEN/NOTIFY channel.
//!
//! SQLite gets a single-connection write pool (writes are serialised by SQLite anyway;
//! doing it in the pool avoids `SQLITE_BUSY` on lock upgrades) and a separate read pool.
//! PostgreSQL uses one pool for both.

mod conversations;
mod files;
pub mod instances;
mod invites;
mod messages;
mod sessions;
mod tx;
mod users;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    AnyPool, Executor,
    any::AnyPoolOptions,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use time::OffsetDateTime;

pub use conversations::{ConversationRow, MemberRow, MembershipRow};
pub use files::FileRow;
pub use invites::InviteRow;
pub use messages::{
    ChangeOutcome, FileMeta, ImageMeta, MessageChange, MessageRow, NewMessage, ReplyRow,
};
pub use users::{
    AdminActionRow, DELETED_NAME, DELETED_USERNAME_GRACE_DAYS, DeletedAccount, EmailClash, NewUser,
    ProfileUpdate, UserRow,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{1}")]
    Conflict(&'static str, &'static str),
    /// Not allowed as things stand (an invite used up, say): the code and why.
    #[error("{1}")]
    Refused(&'static str, &'static str),
    /// The database cannot grow (disk full, or the operator's size cap): nothing was
    /// written. Goes away by itself once space is freed.
    #[error("storage is full")]
    Full(#[source] sqlx::Error),
    #[error(transparent)]
    Db(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => Self::NotFound,
            other if is_storage_full(&other) => Self::Full(other),
            other => Self::Db(other),
        }
    }
}

/// SQLite's `SQLITE_FULL` (13, "database or disk is full", also past `max_page_count`)
/// or PostgreSQL's `disk_full` (SQLSTATE 53100).
fn is_storage_full(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    match db.code().as_deref() {
        Some("53100") => true,
        // SQLite reports extended result codes; the primary code is the low byte.
        Some(code) => code.parse::<i32>().is_ok_and(|c| c & 0xff == 13),
        None => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One connection pool's connections: open, and of those idle.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub name: &'static str,
    pub size: u32,
    pub idle: u32,
}

#[derive(Clone)]
pub struct Store {
    /// Reads (and, on PostgreSQL, writes too).
    read: AnyPool,
    /// Writes. On SQLite a single connection; on PostgreSQL the same pool as `read`.
    write: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Commits are durable (`synchronous = FULL`: the WAL is synced at every commit). The
/// WAL is checkpointed by a background task, not by whichever commit crosses the
/// threshold, so no message waits behind a checkpoint's disk writes.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0;";

/// Pages left under the SQLite size cap below which the database counts as full: a
/// message with its index entries needs a few.
const FULL_BELOW_PAGES: i64 = 16;

/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Operator settings for storage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    /// SQLite only: the largest the database may grow, in bytes (0: no cap). Past it,
    /// writes fail as on a full disk (`PRAGMA max_page_count` on every connection).
    pub sqlite_max_bytes: u64,
}

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite://…`), creating the SQLite file if
    /// needed, and applies the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    /// [`Store::connect`] with operator settings.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url).await?
        } else if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, options.sqlite_max_bytes).await?
        } else {
            anyhow::bail!("unsupported database URL scheme (expected postgres:// or sqlite://)")
        };
        // The data steps (migration 0009), after the schema's migrations.
        let clashes = store
            .normalize_legacy_emails()
            .await
            .context("normalizing the emails stored before NFKC")?;
        for clash in clashes {
            tracing::warn!(
                user_id = clash.user_id,
                email = clash.email,
                normalized = clash.normalized,
                other_user_id = clash.other_user_id,
                "an email stored before normalization is another account's once normalized; \
                 left as it is, for an operator to settle"
            );
        }
        Ok(store)
    }

    async fn connect_postgres(url: &str) -> anyhow::Result<Self> {
        let pg = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::migrate!("../migrations/postgres")
            .run(&pg)
            .await
            .context("applying PostgreSQL migrations")?;
        pg.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
            backend: Backend::Postgres,
        })
    }

    async fn connect_sqlite(url: &str, max_bytes: u64) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .context("parsing the SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Off while migrating, as SQLite asks for schema changes that rebuild a table
            // (the pragma cannot change inside the transaction sqlx runs a migration in);
            // every reference is checked once they are applied. The pools below turn
            // foreign keys on (`SQLITE_PRAGMAS`).
            .foreign_keys(false);
        let setup = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .context("opening the SQLite database")?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&setup)
            .await
            .context("applying SQLite migrations")?;
        let dangling: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check")
                .fetch_all(&setup)
                .await
                .context("checking foreign keys after the migrations")?;
        if let Some((table, rowid, parent)) = dangling.first() {
            anyhow::bail!(
                "the database has {} row(s) referring to rows that do not exist (first: {table} \
                 row {rowid}, referring to {parent}); restore a backup",
                dangling.len()
            );
        }
        setup.close().await;

        let pool = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                // A local file: no need to ping it before every use.
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        conn.execute(SQLITE_PRAGMAS).await?;
                        if max_bytes > 0 {
                            let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
                                .fetch_one(&mut *conn)
                                .await?;
                            let pages = max_bytes / u64::try_from(page_size.max(1)).unwrap_or(1);
                            conn.execute(
                                format!("PRAGMA max_page_count = {}", pages.max(1)).as_str(),
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
                .connect(url)
        };
        let write = pool(1).await.context("opening the SQLite database")?;
        let read = pool(4).await.context("opening the SQLite database")?;
        tokio::spawn(checkpoint_loop(read.clone()));
        Ok(Self {
            read,
            write,
            backend: Backend::Sqlite,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pools' sizes, for the metrics.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let stats = |name, pool: &AnyPool| PoolStats {
            name,
            size: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        };
        match self.backend {
            Backend::Sqlite => vec![stats("read", &self.read), stats("write", &self.write)],
            // One pool for both.
            Backend::Postgres => vec![stats("shared", &self.read)],
        }
    }

    /// Opens a write transaction (the one way the store begins one; see [`tx`]).
    async fn write_tx(&self) -> StoreResult<tx::WriteTx> {
        tx::WriteTx::begin(&self.write).await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Why the database cannot take writes now, if it cannot: on SQLite, fewer than
    /// [`FULL_BELOW_PAGES`] pages left under the size cap (`--sqlite-max-size-mb`),
    /// counting pages freed inside the file. `None` when it can (or has no cap). An
    /// error when the database does not answer.
    pub async fn full_reason(&self) -> StoreResult<Option<String>> {
        if self.backend != Backend::Sqlite {
            self.ping().await?;
            return Ok(None);
        }
        let mut conn = self.read.acquire().await?;
        let mut pragma = async |name: &str| -> StoreResult<i64> {
            Ok(sqlx::query_scalar(&format!("PRAGMA {name}"))
                .fetch_one(&mut *conn)
                .await?)
        };
        let cap = pragma("max_page_count").await?;
        let used = pragma("page_count").await?;
        let free = pragma("freelist_count").await?;
        let page_size = pragma("page_size").await?;
        let left = cap.saturating_sub(used).saturating_add(free);
        Ok((left < FULL_BELOW_PAGES).then(|| {
            format!(
                "storage full: the database is at its size cap ({} MiB)",
                cap.saturating_mul(page_size) / (1024 * 1024)
            )
        }))
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Copies committed WAL frames into the database file without blocking the writer, until
/// the pool closes.
async fn checkpoint_loop(pool: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %err, "WAL checkpoint failed");
        }
    }
}

/// Now, in UTC milliseconds since the epoch (how timestamps are stored).
pub fn now_ms() -> i64 {
    ms_of(OffsetDateTime::now_utc())
}

pub fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A stored timestamp back to a date-time (clamped to the epoch if corrupt).
pub fn time_of(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `$first, $first+1, …` (`count` of them) for an `IN (…)` list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_prefix_escapes_wildcards() {
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }

    #[test]
    fn time_round_trips_at_millisecond_precision() {
        let ms = 1_764_000_000_123;
        assert_eq!(ms_of(time_of(ms)), ms);
    }
}
