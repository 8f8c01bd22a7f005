//! Starts `chatapp-server` for tests and the benchmark, one way for all of them: on
//! SQLite in a temporary data dir or on a fresh PostgreSQL database (created here,
//! dropped when the server is dropped), either in-process (the server's own
//! [`chatapp_server::Server`] on a runtime of its own, in a thread of this process) or as
//! the binary (for what only a process shows: a crash, signals, its log, its CPU and
//! memory). Either way it listens on a real socket on port 0, and it is stopped and
//! waited for when the [`TestServer`] is dropped.
//!
//! ```ignore
//! let server = Launch::new(Backend::Postgres).args(&["--ws-queue", "4"]).start().await;
//! let (alice, _) = server.register("alice").await;
//! ```

use std::{
    io::{BufRead, BufReader},
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Parser;
use nix::{sys::signal::Signal, unistd::Pid};
use sqlx::{Connection, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the PostgreSQL server for tests is: a database that exists, used to create and
/// drop one fresh database per test server (`CHATAPP_TEST_POSTGRES_URL`, by default the
/// local server the README's set-up starts).
pub fn postgres_admin_url() -> String {
    std::env::var("CHATAPP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh PostgreSQL database, dropped (with its connections) when this is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin: String,
}

impl TestDatabase {
    /// Creates `chatapp_test_<pid>_<nanos>` on the server of `postgres_admin_url()`.
    pub async fn create() -> Self {
        Self::create_on(&postgres_admin_url(), "chatapp_test").await
    }

    /// Creates a database named `<prefix>_<pid>_<nanos>` on the server of `admin` (the
    /// URL of a database that exists there).
    pub async fn create_on(admin: &str, prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        let mut conn = PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL not reachable at {admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .expect("the admin URL names a database");
        Self {
            url: format!("{base}/{name}"),
            name,
            admin: admin.to_owned(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Spawns `cmd` (a server that prints `listening on http://HOST:PORT` as its first line
/// on stdout, as `chatapp-server` and the benchmark's relay do) and waits for that line;
/// the child and the address printed. Its stdout is drained afterwards so that it never
/// blocks on a full pipe; the caller keeps the child, and ends and waits for it.
pub fn spawn_listening(cmd: &mut Command) -> std::io::Result<(Child, String)> {
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next();
    let base = match first
        .as_ref()
        .and_then(|l| l.as_ref().ok())
        .and_then(|l| l.strip_prefix("listening on "))
    {
        Some(base) => base.to_owned(),
        None => {
            let _ = child.kill();
            let status = child.wait();
            return Err(std::io::Error::other(format!(
                "the server did not start: first line {first:?}, exit {status:?}"
            )));
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((child, base))
}

/// How to start a server: the backend, its flags, in-process or as a binary.
pub struct Launch {
    backend: Backend,
    args: Vec<String>,
    binary: Option<PathBuf>,
    log_level: Option<String>,
    capture_log: bool,
    database_url: Option<String>,
    postgres_admin: Option<String>,
}

impl Launch {
    /// An in-process server on `backend` with the server's default flags.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            args: Vec::new(),
            binary: None,
            log_level: None,
            capture_log: false,
            database_url: None,
            postgres_admin: None,
        }
    }

    /// Creates its PostgreSQL database on the server of `admin_url` (a database that
    /// exists there) instead of `postgres_admin_url()`.
    pub fn postgres_admin(mut self, admin_url: &str) -> Self {
        self.postgres_admin = Some(admin_url.to_owned());
        self
    }

    /// Adds command-line flags (a flag given twice takes its last value).
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs the binary at `path` instead of the server in-process.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// The binary's `RUST_LOG` (by default `CHATAPP_TEST_LOG`, else `warn`).
    pub fn log_level(mut self, rust_log: &str) -> Self {
        self.log_level = Some(rust_log.to_owned());
        self
    }

    /// Keeps what the binary logs (stderr) in [`TestServer::log`] instead of passing it
    /// through.
    pub fn capture_log(mut self) -> Self {
        self.capture_log = true;
        self
    }

    /// Another instance on the PostgreSQL database of `other` (a second process or
    /// server of a multi-instance set-up); the database stays `other`'s.
    pub fn sharing(mut self, other: &TestServer) -> Self {
        let db = other.database.as_ref().expect("a PostgreSQL server");
        self.backend = Backend::Postgres;
        self.database_url = Some(db.url.clone());
        self
    }

    /// The data dir, the database created (if any), its URL and the full flags.
    async fn storage(&mut self) -> (tempfile::TempDir, Option<TestDatabase>, String, Vec<String>) {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database = match (self.backend, &self.database_url) {
            (Backend::Postgres, None) => Some(match &self.postgres_admin {
                Some(admin) => TestDatabase::create_on(admin, "chatapp_test").await,
                None => TestDatabase::create().await,
            }),
            _ => None,
        };
        let database_url = match (&self.database_url, &database) {
            (Some(url), _) => url.clone(),
            (None, Some(db)) => db.url.clone(),
            (None, None) => format!("sqlite://{}", data_dir.path().join("chatapp.db").display()),
        };
        let mut args = vec![
            "--data-dir".to_owned(),
            data_dir.path().display().to_string(),
            "--database-url".to_owned(),
            database_url.clone(),
        ];
        args.append(&mut self.args);
        (data_dir, database, database_url, args)
    }

    /// Starts it on the runtime of the caller (in-process only), so that the caller can
    /// reach its state: `chatapp_server::router(state)` answers requests without a
    /// socket (axum's examples/testing), for input no client would send.
    pub async fn start_here(mut self) -> LocalServer {
        assert!(
            self.binary.is_none(),
            "start_here runs the server in-process"
        );
        let (data_dir, database, _, args) = self.storage().await;
        let config = parse_config("127.0.0.1:0", args);
        let listener = tokio::net::TcpListener::bind(config.listen_addr())
            .await
            .expect("bind");
        let server = chatapp_server::Server::start(config, listener)
            .await
            .unwrap_or_else(|e| panic!("the server did not start: {e:#}"));
        LocalServer {
            base: format!("http://{}", server.addr()),
            server: Some(server),
            data_dir,
            database,
        }
    }

    /// Creates its storage and starts it; returns once it accepts connections.
    pub async fn start(mut self) -> TestServer {
        let (data_dir, database, database_url, args) = self.storage().await;
        let mut server = TestServer {
            running: Running::Stopped,
            base: String::new(),
            addr: String::new(),
            backend: self.backend,
            data_dir,
            database,
            database_url,
            args,
            binary: self.binary,
            log_level: self.log_level,
            capture_log: self.capture_log,
            log: Arc::default(),
        };
        server.spawn("127.0.0.1:0");
        server
    }
}

fn parse_config(listen: &str, args: Vec<String>) -> chatapp_server::Config {
    let argv = ["chatapp-server", "--listen", listen]
        .into_iter()
        .map(str::to_owned)
        .chain(args);
    chatapp_server::Config::try_parse_from(argv).unwrap_or_else(|e| panic!("server flags: {e}"))
}

/// A server running on the caller's runtime ([`Launch::start_here`]).
pub struct LocalServer {
    server: Option<chatapp_server::Server>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub database: Option<TestDatabase>,
}

impl LocalServer {
    /// Its state, for `chatapp_server::router`.
    pub fn state(&self) -> &chatapp_server::AppState {
        self.server.as_ref().expect("running").state()
    }

    /// Stops it gracefully (else it ends with the caller's runtime).
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// A `chatapp-client` REST client for it, not signed in.
    pub fn api(&self) -> chatapp_client::Api {
        chatapp_client::Api::new(&self.base).expect("server address")
    }

    /// Registers `name` as [`TestServer::register`] does.
    pub async fn register(&self, name: &str) -> (chatapp_client::Api, i64) {
        register(self.api(), name).await
    }
}

/// Registers `name` (password `password-<name>`, email `<name>@example.org`) with `api`,
/// which then holds their session; it and the user id.
pub async fn register(api: chatapp_client::Api, name: &str) -> (chatapp_client::Api, i64) {
    let auth = api
        .register(&chatapp_protocol::RegisterRequest {
            username: name.to_owned(),
            email: format!("{name}@example.org"),
            password: format!("password-{name}"),
            display_name: None,
            invite: None,
        })
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e}"));
    (api, auth.user.id)
}

enum Running {
    Stopped,
    InProcess(InProcess),
    Binary(Child),
}

/// A server running on a runtime of its own in a thread of this process.
struct InProcess {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// A running server (in-process or a child process); stopped and waited for when
/// dropped, then its data dir and database are removed.
pub struct TestServer {
    running: Running,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    /// The database created for it (none on SQLite or when sharing another's).
    pub database: Option<TestDatabase>,
    database_url: String,
    args: Vec<String>,
    binary: Option<PathBuf>,
    log_level: Option<String>,
    capture_log: bool,
    /// The binary's stderr lines, when captured ([`Launch::capture_log`]).
    pub log: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    fn spawn(&mut self, listen: &str) {
        assert!(matches!(self.running, Running::Stopped), "already running");
        let base = match self.binary.clone() {
            Some(binary) => self.spawn_binary(&binary, listen),
            None => self.spawn_in_process(listen),
        };
        self.addr = base.trim_start_matches("http://").to_owned();
        self.base = base;
    }

    fn spawn_in_process(&mut self, listen: &str) -> String {
        let config = parse_config(listen, self.args.clone());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("chatapp-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("chatapp-server")
                    .enable_all()
                    .build()
                    .expect("server runtime");
                runtime.block_on(async move {
                    let started = async {
                        let listener = tokio::net::TcpListener::bind(config.listen_addr()).await?;
                        chatapp_server::Server::start(config, listener).await
                    };
                    match started.await {
                        Ok(server) => {
                            let _ = started_tx.send(Ok(server.addr()));
                            let _ = stop_rx.await;
                            server.stop().await;
                        }
                        Err(e) => {
                            let _ = started_tx.send(Err(format!("{e:#}")));
                        }
                    }
                });
            })
            .expect("server thread");
        match started_rx.recv() {
            Ok(Ok(addr)) => {
                self.running = Running::InProcess(InProcess {
                    stop: stop_tx,
                    thread,
                });
                format!("http://{addr}")
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                panic!("the server did not start: {e}")
            }
            Err(_) => {
                let _ = thread.join();
                panic!("the server thread ended before it started")
            }
        }
    }

    fn spawn_binary(&mut self, binary: &PathBuf, listen: &str) -> String {
        let rust_log = self
            .log_level
            .clone()
            .unwrap_or_else(|| std::env::var("CHATAPP_TEST_LOG").unwrap_or_else(|_| "warn".into()));
        let mut cmd = Command::new(binary);
        cmd.arg("--listen")
            .arg(listen)
            .args(&self.args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", rust_log)
            .stderr(if self.capture_log {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        let (mut child, base) = spawn_listening(&mut cmd)
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&self.log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().expect("log").push(line);
                }
            });
        }
        self.running = Running::Binary(child);
        base
    }

    /// Whether it is running (not stopped or killed).
    pub fn is_running(&self) -> bool {
        !matches!(self.running, Running::Stopped)
    }

    /// Whether it runs as a child process (`Launch::binary`).
    pub fn is_binary(&self) -> bool {
        self.binary.is_some()
    }

    /// Stops it gracefully (in-process: `Server::stop`; the binary: SIGTERM, then waits
    /// up to 30 s before SIGKILL) and waits for it. The exit status (in-process: success
    /// once it has stopped).
    pub fn stop(&mut self) -> ExitStatus {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Stopped => panic!("not running"),
            Running::InProcess(server) => {
                let _ = server.stop.send(());
                match server.thread.join() {
                    Ok(()) => ExitStatus::from_raw(0),
                    Err(_) => ExitStatus::from_raw(1 << 8),
                }
            }
            Running::Binary(mut child) => {
                let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
                let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if let Some(status) = child.try_wait().expect("wait") {
                        return status;
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        return child.wait().expect("wait");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Kills the binary with SIGKILL (a crash: no shutdown code runs) and reaps it.
    pub fn kill9(&mut self) -> ExitStatus {
        let Running::Binary(mut child) = std::mem::replace(&mut self.running, Running::Stopped)
        else {
            panic!("kill9 needs a server started as the binary (Launch::binary)")
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, Signal::SIGKILL).expect("SIGKILL");
        child.wait().expect("wait")
    }

    /// The binary's process id.
    pub fn pid(&self) -> u32 {
        match &self.running {
            Running::Binary(child) => child.id(),
            _ => panic!("a process id needs a running binary (Launch::binary)"),
        }
    }

    /// Starts it again on the same data dir and database (a new port).
    pub fn restart(&mut self) {
        self.spawn("127.0.0.1:0");
    }

    /// Starts it again on the same data dir, database and port, so that clients holding
    /// its address reconnect by themselves (the listener sets `SO_REUSEADDR`, so
    /// connections of a killed process in TIME_WAIT do not block it).
    pub fn restart_on_same_port(&mut self) {
        let addr = self.addr.clone();
        self.spawn(&addr);
        assert_eq!(self.addr, addr, "restarted on the same port");
    }

    /// The URL of its database (SQLite file or PostgreSQL).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// A direct connection to its database (to set up or check what the API cannot).
    pub async fn db(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        <sqlx::AnyConnection as Connection>::connect(&self.database_url)
            .await
            .expect("database")
    }

    /// A `chatapp-client` REST client for it, not signed in.
    pub fn api(&self) -> chatapp_client::Api {
        chatapp_client::Api::new(&self.base).expect("server address")
    }

    /// Registers `name` (password `password-<name>`, email `<name>@example.org`); the
    /// client signed in as them and their user id.
    pub async fn register(&self, name: &str) -> (chatapp_client::Api, i64) {
        register(self.api(), name).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Stopped => {}
            Running::InProcess(server) => {
                let _ = server.stop.send(());
                let _ = server.thread.join();
            }
            Running::Binary(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
