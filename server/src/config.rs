//! Server configuration: one clap struct, every flag with an environment fallback.
//! Defaults give a working server on a laptop with no set-up (SQLite in `./data`).

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    num::{NonZeroU32, NonZeroUsize},
    path::PathBuf,
    time::Duration,
};

use clap::Parser;
use ipnet::IpNet;

#[derive(Clone, Parser)]
#[command(
    name = "chatapp-server",
    version,
    about = "ChatApp server: HTTP API, WebSocket and web UI",
    // A flag given twice takes its last value (e.g. a wrapper's defaults, then overrides).
    args_override_self = true
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the printed address says which).
    /// Default: all addresses at `--port` when that is given, else 127.0.0.1:8080.
    #[arg(long, env = "CHATAPP_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Port to listen on, on all addresses, when `--listen` is not given: platforms that
    /// run services (Heroku, Render, Fly.io, Cloud Run…) say which port in `PORT`.
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,

    /// Address to serve Prometheus metrics on (`GET /metrics`); none by default. Give it
    /// an address of its own that only the monitoring reaches (e.g. 127.0.0.1:9090): the
    /// metrics are never served on `--listen`.
    #[arg(long, env = "CHATAPP_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Who may create an account: `open` (anyone who reaches the server), `invite`
    /// (whoever has an invite an admin made) or `closed` (only admins and the operator's
    /// CLI create accounts). A server others can reach should not stay `open`.
    #[arg(long, env = "CHATAPP_REGISTRATION", default_value = "open", value_parser = registration_mode)]
    pub registration: chatapp_protocol::Registration,

    /// Directory for the SQLite database, uploads and the generated secret key.
    #[arg(long, env = "CHATAPP_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://…` for PostgreSQL; default is the SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Secret for signing CSRF tokens; generated and kept in the data dir when absent.
    #[arg(long, env = "CHATAPP_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Comma-separated proxy addresses or networks whose X-Forwarded-For / X-Forwarded-Proto
    /// are trusted (`127.0.0.1` is `127.0.0.1/32`).
    #[arg(long, env = "CHATAPP_TRUSTED_PROXIES", value_delimiter = ',', value_parser = address_or_network)]
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

    /// Client frames per second allowed per user, over all of the user's WebSocket
    /// connections together (sustained).
    #[arg(long, env = "CHATAPP_WS_FRAMES_PER_SECOND", default_value = "20")]
    pub ws_frames_per_second: NonZeroU32,

    /// Client frames allowed in a burst per user (all of the user's WebSockets together).
    #[arg(long, env = "CHATAPP_WS_FRAMES_BURST", default_value = "60")]
    pub ws_frames_burst: NonZeroU32,

    /// Open WebSocket connections allowed per user (0: no limit).
    #[arg(long, env = "CHATAPP_WS_MAX_PER_USER", default_value_t = 32)]
    pub ws_max_per_user: usize,

    /// Open WebSocket connections allowed per client address (0: no limit).
    #[arg(long, env = "CHATAPP_WS_MAX_PER_ADDRESS", default_value_t = 256)]
    pub ws_max_per_address: usize,

    /// Messages (text and voice) a user may send per second, over REST and all of the
    /// user's WebSockets together, sustained (0: no limit).
    #[arg(long, env = "CHATAPP_SEND_RATE_PER_USER", default_value_t = 10)]
    pub send_rate_per_user: u32,

    /// Messages a user may send in a burst.
    #[arg(long, env = "CHATAPP_SEND_BURST_PER_USER", default_value = "60")]
    pub send_burst_per_user: NonZeroU32,

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

    /// Seconds a client may take to send a request's headers; a slower connection is closed.
    #[arg(long, env = "CHATAPP_HEADER_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,

    /// Seconds a request body may pause between bytes before the request is refused (408).
    #[arg(long, env = "CHATAPP_BODY_IDLE_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_idle_timeout_secs: u64,

    /// Seconds a whole request body may take (a 16 MB voice message at 0.5 Mbit/s needs
    /// about 270 s) before the request is refused (408).
    #[arg(long, env = "CHATAPP_BODY_TIMEOUT_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub body_timeout_secs: u64,

    /// Media decodes (voice analysis, avatar thumbnails) run at the same time; more wait
    /// their turn. Default: the number of CPU cores.
    #[arg(long, env = "CHATAPP_MEDIA_WORKERS")]
    pub media_workers: Option<NonZeroUsize>,
}

/// The default address: on this machine only, so that a server started to try it is not
/// reachable from elsewhere.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// `open`, `invite` or `closed`.
fn registration_mode(text: &str) -> Result<chatapp_protocol::Registration, String> {
    use chatapp_protocol::Registration;
    match text.to_ascii_lowercase().as_str() {
        "open" => Ok(Registration::Open),
        "invite" => Ok(Registration::Invite),
        "closed" => Ok(Registration::Closed),
        _ => Err(format!("`{text}`: expected open, invite or closed")),
    }
}

/// An address or a network: a bare address is the network of that address alone.
fn address_or_network(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{value}` is neither an address nor a network (such as 10.0.0.0/8)"))
}

impl Config {
    /// Where to listen: `--listen`, else all addresses at `--port` (`PORT`), else
    /// 127.0.0.1:8080.
    pub fn listen_addr(&self) -> SocketAddr {
        match (self.listen, self.port) {
            (Some(listen), _) => listen,
            (None, Some(port)) => {
                SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port)
            }
            (None, None) => DEFAULT_LISTEN,
        }
    }

    pub fn ws_ping_interval(&self) -> Duration {
        Duration::from_secs(self.ws_ping_secs)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    pub fn body_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.body_idle_timeout_secs)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    /// How many media decodes may run at once: the configured number, or the cores.
    pub fn media_workers(&self) -> usize {
        self.media_workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
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
            .field("port", &self.port)
            .field("metrics_listen", &self.metrics_listen)
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
            .field("registration", &self.registration)
            .field("auth_rate_per_account", &self.auth_rate_per_account)
            .field("auth_rate_per_address", &self.auth_rate_per_address)
            .field("auth_rate_window_secs", &self.auth_rate_window_secs)
            .field("ws_ping_secs", &self.ws_ping_secs)
            .field("ws_queue", &self.ws_queue)
            .field("ws_frames_per_second", &self.ws_frames_per_second)
            .field("ws_frames_burst", &self.ws_frames_burst)
            .field("ws_max_per_user", &self.ws_max_per_user)
            .field("ws_max_per_address", &self.ws_max_per_address)
            .field("send_rate_per_user", &self.send_rate_per_user)
            .field("send_burst_per_user", &self.send_burst_per_user)
            .field("db_writers", &self.db_writers)
            .field("header_timeout_secs", &self.header_timeout_secs)
            .field("body_idle_timeout_secs", &self.body_idle_timeout_secs)
            .field("body_timeout_secs", &self.body_timeout_secs)
            .field("media_workers", &self.media_workers)
            .field("sqlite_max_size_mb", &self.sqlite_max_size_mb)
            .finish()
    }
}

/// The log filter from `RUST_LOG` (default `info`). The audio decoder (symphonia, which
/// logs through `log` at INFO for every file it opens and at WARN for every damaged frame
/// of a bad upload) is kept at `error` unless `RUST_LOG` names it: a refused upload is
/// answered with its reason, not written to the log.
pub fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let spec = rust_log.map(str::trim).filter(|s| !s.is_empty());
    let filter = spec
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    if spec.is_some_and(|spec| spec.contains("symphonia")) {
        return filter;
    }
    match "symphonia=error".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
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
    fn audio_decoder_logs_only_errors_unless_asked() {
        assert_eq!(log_filter(None).to_string(), "symphonia=error,info");
        assert_eq!(
            log_filter(Some("debug")).to_string(),
            "symphonia=error,debug"
        );
        assert_eq!(
            log_filter(Some("info,symphonia_core=debug")).to_string(),
            "symphonia_core=debug,info"
        );
    }

    #[test]
    fn defaults_work_without_arguments() {
        let config = Config::try_parse_from(["chatapp-server"]).expect("defaults parse");
        assert_eq!(
            config.listen_addr(),
            "127.0.0.1:8080".parse().expect("an address")
        );
        assert!(config.effective_database_url().starts_with("sqlite://"));
        assert!(config.effective_database_url().ends_with("chatapp.db"));
    }

    #[test]
    fn port_listens_on_all_addresses_unless_listen_is_given() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("chatapp-server").chain(args.iter().copied()))
                .expect("parses")
                .listen_addr()
        };
        assert_eq!(
            parse(&["--port", "9000"]),
            "0.0.0.0:9000".parse().expect("an address")
        );
        assert_eq!(
            parse(&["--port", "9000", "--listen", "127.0.0.1:7000"]),
            "127.0.0.1:7000".parse().expect("an address")
        );
    }

    #[test]
    fn a_trusted_proxy_may_be_an_address_or_a_network() {
        let parse = |value: &str| {
            Config::try_parse_from(["chatapp-server", "--trusted-proxies", value])
                .map(|c| c.trusted_proxies)
        };
        assert_eq!(
            parse("127.0.0.1, 10.0.0.0/8,::1").expect("parses"),
            ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
                .map(|n| n.parse::<IpNet>().expect("a network"))
        );
        let refused = parse("localhost").expect_err("not an address");
        assert!(
            refused
                .to_string()
                .contains("neither an address nor a network"),
            "{refused}"
        );
    }
}
