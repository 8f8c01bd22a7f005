//! Write transactions that never hand a connection back in an unknown state.
//!
//! sqlx's `Transaction` keeps its own count of open transactions and only lowers it when
//! its `COMMIT`/`ROLLBACK` succeeds. When SQLite ends a transaction on its own (a
//! `SQLITE_FULL` at `COMMIT`, or a statement error without a statement journal), the
//! `ROLLBACK` sqlx sends on drop fails ("no transaction is active"), the count stays at
//! one, and the connection goes back to the pool believing it is inside a transaction:
//! the next `begin` issues `SAVEPOINT` instead of `BEGIN`, a later `ROLLBACK TO` leaves
//! a transaction open, and from then on every "commit" only releases a nested savepoint
//! (and every single statement joins the open transaction): acknowledged, never durable.
//!
//! [`WriteTx`] issues `BEGIN`/`COMMIT`/`ROLLBACK` itself, so sqlx never counts, and keeps
//! the pooled connection in hand: a commit or rollback that fails closes the connection
//! (SQLite rolls back whatever was open; the pool opens a fresh one), so every later write
//! starts from a clean connection, on SQLite and PostgreSQL alike.

use std::ops::{Deref, DerefMut};

use sqlx::{Any, AnyConnection, AnyPool, Executor, pool::PoolConnection};

use super::StoreResult;

/// An open write transaction on a pooled connection. Use `&mut *tx` as the executor;
/// end it with [`WriteTx::commit`] or [`WriteTx::rollback`]. Dropped without either
/// (an error returned with `?`, a cancelled request), it rolls back before the
/// connection is reused, or closes the connection if that fails.
pub(super) struct WriteTx {
    /// `Some` until the transaction ends.
    conn: Option<PoolConnection<Any>>,
}

impl WriteTx {
    pub(super) async fn begin(pool: &AnyPool) -> StoreResult<Self> {
        let mut conn = pool.acquire().await?;
        if let Err(err) = conn.execute("BEGIN").await {
            conn.close_on_drop();
            return Err(err.into());
        }
        Ok(Self { conn: Some(conn) })
    }

    /// Commits. On failure nothing was committed: the transaction is rolled back (if
    /// the database has not done so already) and the connection is closed.
    pub(super) async fn commit(mut self) -> StoreResult<()> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        match conn.execute("COMMIT").await {
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::warn!(error = %err, "commit failed; rolling back and closing the connection");
                let _ = conn.execute("ROLLBACK").await;
                conn.close_on_drop();
                Err(err.into())
            }
        }
    }

    /// Rolls back; if that fails, the connection is closed instead of reused.
    pub(super) async fn rollback(mut self) -> StoreResult<()> {
        if let Some(conn) = self.conn.take() {
            rollback_or_close(conn).await;
        }
        Ok(())
    }
}

async fn rollback_or_close(mut conn: PoolConnection<Any>) {
    if let Err(err) = conn.execute("ROLLBACK").await {
        tracing::warn!(error = %err, "rollback failed; closing the connection");
        conn.close_on_drop();
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            // The connection returns to the pool only after the rollback.
            Ok(runtime) => {
                runtime.spawn(rollback_or_close(conn));
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match &self.conn {
            Some(conn) => conn,
            None => unreachable!("a WriteTx is used only while open"),
        }
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable!("a WriteTx is used only while open"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;

    /// SQLite ends a transaction by itself (`INSERT OR ROLLBACK` here; `SQLITE_FULL` at
    /// `COMMIT` does the same), then undoes only one statement of the next transaction:
    /// afterwards a commit must still be a commit, seen by other connections.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_sqlite_ended_by_itself_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.expect("store");
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .execute(&store.write)
            .await
            .expect("table");
        sqlx::query("INSERT INTO t (k) VALUES (1)")
            .execute(&store.write)
            .await
            .expect("row");

        let mut tx = store.write_tx().await.expect("begin");
        let ended = sqlx::query("INSERT OR ROLLBACK INTO t (k) VALUES (1)")
            .execute(&mut *tx)
            .await;
        assert!(ended.is_err(), "the conflict ends the transaction");
        drop(tx);

        let mut tx = store.write_tx().await.expect("begin");
        sqlx::query("INSERT INTO t (k) VALUES (2)")
            .execute(&mut *tx)
            .await
            .expect("row");
        let undone = sqlx::query("INSERT INTO t (k) VALUES (3), (1)")
            .execute(&mut *tx)
            .await;
        assert!(undone.is_err(), "the conflict undoes the statement only");
        drop(tx);

        let mut tx = store.write_tx().await.expect("begin");
        sqlx::query("INSERT INTO t (k) VALUES (4)")
            .execute(&mut *tx)
            .await
            .expect("row");
        tx.commit().await.expect("commit");
        sqlx::query("INSERT INTO t (k) VALUES (5)")
            .execute(&store.write)
            .await
            .expect("single statement");

        let seen: Vec<i64> = sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(&store.read)
            .await
            .expect("read");
        assert_eq!(seen, [1, 4, 5], "committed = visible to other connections");
        store.close().await;
    }
}
