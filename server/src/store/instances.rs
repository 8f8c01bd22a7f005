//! PostgreSQL only: the bookkeeping of server instances that share one database, and the
//! channel they tell each other about changes on (LISTEN/NOTIFY). Each instance is a row
//! in `instances` (heartbeat), lists its connected users in `presence`, and purges the
//! rows of instances that stopped heartbeating. What travels on the channel is the events
//! module's business; this part only stores and carries text.

use std::str::FromStr;

use rand::RngCore;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};

use super::{StoreResult, now_ms};

/// The NOTIFY channel of the instances.
const CHANNEL: &str = "chatapp_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
pub const MAX_PAYLOAD: usize = 7000;

/// This instance's row and its own small pool (so that a busy main pool never delays a
/// heartbeat or a notification).
pub struct Instances {
    /// This instance's id (random per process).
    id: String,
    url: String,
    pool: PgPool,
}

impl Instances {
    /// Connects to the PostgreSQL at `url` and registers this instance.
    pub async fn register(url: &str) -> anyhow::Result<Self> {
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let options = PgConnectOptions::from_str(url)?.application_name("chatapp-fanout");
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::query("INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2)")
            .bind(&id)
            .bind(now_ms())
            .execute(&pool)
            .await?;
        Ok(Self {
            id,
            url: url.to_owned(),
            pool,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records that this instance has (or no longer has) a connection of `user_id`.
    pub async fn set_present(&self, user_id: i64, present: bool) -> StoreResult<()> {
        let sql = if present {
            "INSERT INTO presence (instance_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM presence WHERE instance_id = $1 AND user_id = $2"
        };
        sqlx::query(sql)
            .bind(&self.id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Who is connected to the other instances that heartbeated since `alive_since_ms`:
    /// `(user_id, instance_id)`.
    pub async fn present_elsewhere(&self, alive_since_ms: i64) -> StoreResult<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT p.user_id, p.instance_id FROM presence p JOIN instances i ON i.id = p.instance_id \
             WHERE p.instance_id <> $1 AND i.heartbeat_at > $2",
        )
        .bind(&self.id)
        .bind(alive_since_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Heartbeats (re-registering if a peer purged this instance after a long pause, e.g.
    /// a suspended machine).
    pub async fn heartbeat(&self) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
        )
        .bind(&self.id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the instances silent since before `dead_before_ms`; returns who was
    /// connected to them: `(instance_id, user_id)`.
    pub async fn purge_dead(&self, dead_before_ms: i64) -> StoreResult<Vec<(String, i64)>> {
        let dead: Vec<(String, i64)> = sqlx::query_as(
            "SELECT p.instance_id, p.user_id FROM presence p JOIN instances i ON i.id = p.instance_id \
             WHERE i.heartbeat_at < $1",
        )
        .bind(dead_before_ms)
        .fetch_all(&self.pool)
        .await?;
        let purged = sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
            .bind(dead_before_ms)
            .execute(&self.pool)
            .await?;
        Ok(if purged.rows_affected() > 0 {
            dead
        } else {
            Vec::new()
        })
    }

    /// Graceful stop: this instance's rows go; returns the users it had connected.
    pub async fn leave(&self) -> StoreResult<Vec<i64>> {
        let users: Vec<i64> =
            sqlx::query_scalar("DELETE FROM presence WHERE instance_id = $1 RETURNING user_id")
                .bind(&self.id)
                .fetch_all(&self.pool)
                .await?;
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(&self.id)
            .execute(&self.pool)
            .await?;
        Ok(users)
    }

    /// Sends `payload` (at most [`MAX_PAYLOAD`] bytes) to every listening instance.
    pub async fn notify(&self, payload: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A new connection listening on the instances' channel.
    pub async fn listen(&self) -> StoreResult<PgListener> {
        let options = PgConnectOptions::from_str(&self.url)?.application_name("chatapp-listener");
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }
}

/// Sends `payload` (at most [`MAX_PAYLOAD`] bytes) to every instance listening on the
/// PostgreSQL at `url`, from outside any instance (the operator's CLI).
pub async fn notify_from_outside(url: &str, payload: &str) -> anyhow::Result<()> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = PgConnectOptions::from_str(url)?
        .application_name("chatapp-cli")
        .connect()
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
