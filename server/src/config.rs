//! Server configuration: one clap struct, every flag with an environment fallback.
//! Defaults give a working server on a laptop with no set-up (SQLite in `./data`).

use std::{fmt, net::SocketAddr, num::NonZeroU32, path::PathBuf, time::Duration};

use clap::Parser;
use ipnet::IpNet;

#[derive(Clone, Parser)]
#[command(
    name = "chatapp-server",
    version,
    about = "ChatApp server: HTTP API, WebSocket and web UI"
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the printed address says which).
    #[arg(long, env = "CHATAPP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, uploads and the generated secret key.
    #[arg(long, env = "CHATAPP_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://…` for PostgreSQL; default is the SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Secret for signing CSRF tokens; generated and kept in the data dir when absent.
    #[arg(long, env = "CHATAPP_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Comma-separated proxy addresses or networks whose X-Forwarded-For / X-Forwarded-Proto are trusted.
    #[arg(long, env = "CHATAPP_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// Public origin (e.g. `https://chat.example.org`); when set, cookie requests must come from it.
    /// When absent, the request's own `Host` is the origin.
    #[arg(long, env = "CHATAPP_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,

    /// Sign-in and registration attempts allowed per account per window (0: no limit).
    #[arg(long, env = "CHATAPP_AUTH_RATE_PER_ACCOUNT", default_value_t = 10)]
    pub auth_rate_per_account: u32,

    /// Sign-in and registration attempts allowed per client address per window (0: no limit).
    #[arg(long, env = "CHATAPP_AUTH_RATE_PER_ADDRESS", default_value_t = 60)]
    pub auth_rate_per_address: u32,

    /// Seconds between WebSocket pings; a connection silent for 2.5 intervals is closed.
    #[arg(long, env = "CHATAPP_WS_PING_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_ping_secs: u64,

    /// Events queued per WebSocket connection before a slow client is disconnected.
    #[arg(long, env = "CHATAPP_WS_QUEUE", default_value_t = 512)]
    pub ws_queue: usize,

    /// Client frames per second allowed per WebSocket connection (sustained).
    #[arg(long, env = "CHATAPP_WS_FRAMES_PER_SECOND", default_value = "20")]
    pub ws_frames_per_second: NonZeroU32,

    /// Client frames allowed in a burst per WebSocket connection.
    #[arg(long, env = "CHATAPP_WS_FRAMES_BURST", default_value = "60")]
    pub ws_frames_burst: NonZeroU32,

    /// Message writer tasks (group commit); default 1. More can help when PostgreSQL is
    /// on another machine (more transactions in flight), at the cost of smaller batches.
    #[arg(long, env = "CHATAPP_DB_WRITERS")]
    pub db_writers: Option<usize>,

    /// Size cap for the SQLite database in MiB (0: none). Writes past it are refused with
    /// 507 `storage_full`, as when the disk is full; the server recovers once space is freed.
    #[arg(long, env = "CHATAPP_SQLITE_MAX_SIZE_MB", default_value_t = 0)]
    pub sqlite_max_size_mb: u64,

    /// The rate-limit window in seconds: the allowance refills evenly over it.
    #[arg(long, env = "CHATAPP_AUTH_RATE_WINDOW_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_rate_window_secs: u64,
}

impl Config {
    pub fn ws_ping_interval(&self) -> Duration {
        Duration::from_secs(self.ws_ping_secs)
    }

    /// The database URL to use: the configured one, or the SQLite file in the data dir.
    pub fn effective_database_url(&self) -> String {
        match self.database_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => url.to_owned(),
            _ => format!("sqlite://{}", self.data_dir.join("chatapp.db").display()),
        }
    }
}

/// Never print the secret key or a database password.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("public_origin", &self.public_origin)
            .field("auth_rate_per_account", &self.auth_rate_per_account)
            .field("auth_rate_per_address", &self.auth_rate_per_address)
            .field("auth_rate_window_secs", &self.auth_rate_window_secs)
            .field("ws_ping_secs", &self.ws_ping_secs)
            .field("ws_queue", &self.ws_queue)
            .field("ws_frames_per_second", &self.ws_frames_per_second)
            .field("ws_frames_burst", &self.ws_frames_burst)
            .field("db_writers", &self.db_writers)
            .field("sqlite_max_size_mb", &self.sqlite_max_size_mb)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_database_password() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("sqlite://data/chatapp.db"),
            "sqlite://data/chatapp.db"
        );
    }

    #[test]
    fn defaults_work_without_arguments() {
        let config = Config::try_parse_from(["chatapp-server"]).expect("defaults parse");
        assert_eq!(config.listen.port(), 8080);
        assert!(config.effective_database_url().starts_with("sqlite://"));
        assert!(config.effective_database_url().ends_with("chatapp.db"));
    }
}
