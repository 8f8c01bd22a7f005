//! Test support: start the real `chatapp-server` binary on an ephemeral port (SQLite in a
//! temporary data dir, or a fresh PostgreSQL database), talk to it over real HTTP, and
//! stop it (SIGTERM, then wait) when the test ends.

#![allow(dead_code)]

pub mod media;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the PostgreSQL server for tests is (a database that exists, used to create and
/// drop one fresh database per test server).
pub fn postgres_admin_url() -> String {
    std::env::var("CHATAPP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh PostgreSQL database, dropped when this is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin = postgres_admin_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let name = format!("chatapp_test_{}_{}", std::process::id(), nanos);
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL for tests not reachable at {admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .expect("admin url has a database");
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = postgres_admin_url();
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

/// A running `chatapp-server` process.
pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    pub addr: String,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub database: Option<TestDatabase>,
    args: Vec<String>,
    /// When set: the server runs with this `RUST_LOG` and its stderr is kept in `log`.
    log_level: Option<String>,
    /// The server's stderr lines, when captured (see [`TestServer::start_capturing_log`]).
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Limits every test server starts with: generous, since tests register many users and
/// send in bursts. A test of a limit sets it again (the last occurrence of a flag wins).
const GENEROUS_LIMITS: &[&str] = &[
    "--auth-rate-per-account",
    "1000",
    "--auth-rate-per-address",
    "100000",
    "--send-rate-per-user",
    "0",
];

impl TestServer {
    /// Starts a server with generous limits.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Starts a second server process on the PostgreSQL database of `other`.
    pub async fn start_sharing(other: &TestServer, extra: &[&str]) -> Self {
        let url = other
            .database
            .as_ref()
            .expect("a PostgreSQL server")
            .url
            .clone();
        let mut args: Vec<String> = GENEROUS_LIMITS.iter().map(|s| (*s).to_owned()).collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let data_dir = tempfile::tempdir().expect("temp dir");
        args.splice(
            0..0,
            [
                "--data-dir".to_owned(),
                data_dir.path().display().to_string(),
                "--database-url".to_owned(),
                url,
            ],
        );
        let mut server = Self {
            child: None,
            base: String::new(),
            addr: String::new(),
            backend: Backend::Postgres,
            data_dir,
            database: None,
            args,
            log_level: None,
            log: Arc::default(),
        };
        server.spawn("127.0.0.1:0");
        server
    }

    /// Starts a server (as [`TestServer::start`]) with `RUST_LOG=rust_log`, keeping what
    /// it logs in `log`.
    pub async fn start_capturing_log(backend: Backend, rust_log: &str) -> Self {
        Self::launch(
            backend,
            &[
                "--auth-rate-per-account",
                "1000",
                "--auth-rate-per-address",
                "100000",
            ],
            Some(rust_log.to_owned()),
        )
        .await
    }

    pub async fn start_with(backend: Backend, extra: &[&str]) -> Self {
        Self::launch(backend, extra, None).await
    }

    async fn launch(backend: Backend, extra: &[&str], log_level: Option<String>) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let mut args: Vec<String> =
            vec!["--data-dir".into(), data_dir.path().display().to_string()];
        if let Some(db) = &database {
            args.push("--database-url".into());
            args.push(db.url.clone());
        }
        args.extend(GENEROUS_LIMITS.iter().map(|s| (*s).to_owned()));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut server = Self {
            child: None,
            base: String::new(),
            addr: String::new(),
            backend,
            data_dir,
            database,
            args,
            log_level,
            log: Arc::default(),
        };
        server.spawn("127.0.0.1:0");
        server
    }

    fn spawn(&mut self, listen: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatapp-server"))
            .arg("--listen")
            .arg(listen)
            .args(&self.args)
            .env_remove("DATABASE_URL")
            .env(
                "RUST_LOG",
                self.log_level.clone().unwrap_or_else(|| {
                    std::env::var("CHATAPP_TEST_LOG").unwrap_or_else(|_| "warn".into())
                }),
            )
            .stdout(Stdio::piped())
            .stderr(if self.log_level.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("spawn chatapp-server");
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&self.log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().expect("log").push(line);
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = match lines.next() {
            Some(Ok(line)) => line,
            other => {
                let status = child.wait();
                panic!("server did not start: {other:?}, exit {status:?}");
            }
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.addr = base.trim_start_matches("http://").to_owned();
        self.base = base;
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL (a crash: no shutdown code runs) and reaps it.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, Signal::SIGKILL).expect("SIGKILL");
        child.wait().expect("wait")
    }

    /// Starts the server again on the same data dir and database (a new port).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.spawn("127.0.0.1:0");
    }

    /// Starts the server again on the same data dir, database and port, so clients
    /// holding its address reconnect by themselves (the server's listener sets
    /// `SO_REUSEADDR`, so connections of the killed process in TIME_WAIT do not block it).
    pub fn restart_on_same_port(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        let addr = self.addr.clone();
        self.spawn(&addr);
        assert_eq!(self.addr, addr, "restarted on the same port");
    }

    /// A `chatapp-client` REST client for this server, not signed in.
    pub fn api(&self) -> chatapp_client::Api {
        chatapp_client::Api::new(&self.base).expect("server address")
    }

    /// Registers `name` (password `password-<name>`, email `<name>@example.org`) through
    /// `chatapp-client`; the signed-in client and the user id.
    pub async fn register_api(&self, name: &str) -> (chatapp_client::Api, i64) {
        let api = self.api();
        let auth = api
            .register(&chatapp_protocol::RegisterRequest {
                username: name.to_owned(),
                email: format!("{name}@example.org"),
                password: format!("password-{name}"),
                display_name: None,
            })
            .await
            .expect("register");
        (api, auth.user.id)
    }

    /// A direct connection to this server's database (to set up what the API cannot).
    pub async fn db(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match &self.database {
            Some(db) => db.url.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.path().join("chatapp.db").display()
            ),
        };
        <sqlx::AnyConnection as Connection>::connect(&url)
            .await
            .expect("database")
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().expect("running").id()).expect("pid")
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
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

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A thin JSON-over-HTTP client that keeps a bearer token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

/// A response: status, headers and the body as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an error response: status, the `{"error":{"code","message"}}` shape and the code.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        let error = self
            .body
            .get("error")
            .unwrap_or_else(|| panic!("no error object in {}", self.body));
        assert_eq!(error["code"], code, "body: {}", self.body);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without message: {}",
            self.body
        );
    }
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            base: base.to_owned(),
            token: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The same client (and token) against another address, e.g. after a restart.
    pub fn with_base(&self, base: &str) -> Self {
        Self {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    pub async fn send(req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        Self::send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        Self::send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        Self::send(self.request(Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        Self::send(self.request(Method::DELETE, path)).await
    }

    /// Creates the direct conversation with `user_id` (asserting it is new); its id.
    pub async fn direct_with(&self, user_id: i64) -> i64 {
        self.post(
            "/api/conversations",
            json!({"kind": "direct", "user_id": user_id}),
        )
        .await
        .expect(201)["id"]
            .as_i64()
            .expect("id")
    }

    /// Creates a group owned by this user with `members`; its id.
    pub async fn group_with(&self, title: &str, members: &[i64]) -> i64 {
        self.post(
            "/api/conversations",
            json!({"kind": "group", "title": title, "member_ids": members}),
        )
        .await
        .expect(201)["id"]
            .as_i64()
            .expect("id")
    }

    /// Every message of a conversation, read page by page (newest page first).
    pub async fn whole_history(&self, conversation: i64) -> Vec<Value> {
        let mut all = Vec::new();
        let mut before = None::<i64>;
        loop {
            let path = match before {
                Some(b) => {
                    format!("/api/conversations/{conversation}/messages?limit=100&before_seq={b}")
                }
                None => format!("/api/conversations/{conversation}/messages?limit=100"),
            };
            let page = self.get(&path).await.expect(200);
            let messages = page["messages"].as_array().expect("messages").clone();
            before = messages.first().map(|m| m["seq"].as_i64().expect("seq"));
            all.extend(messages);
            if page["has_more"] == false {
                return all;
            }
        }
    }

    /// Registers `name` (password `password-<name>`, email `<name>@example.org`) and returns
    /// a client signed in as them plus their user id.
    pub async fn register(&self, name: &str) -> (Client, i64) {
        let body = self
            .post(
                "/api/auth/register",
                json!({"username": name, "email": format!("{name}@example.org"), "password": format!("password-{name}")}),
            )
            .await
            .expect(201);
        let token = body["token"].as_str().expect("token");
        (
            self.with_token(token),
            body["user"]["id"].as_i64().expect("id"),
        )
    }
}

/// Runs each named scenario once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario($crate::support::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario($crate::support::Backend::Postgres).await;
                }
            }
        )*
    };
}

use chatapp_client::{ClientError, Socket};
pub use chatapp_protocol::ClientEvent;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for an event it expects. Generous: a slow machine only makes
/// a passing test slower, never a failing one.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

/// A WebSocket client for tests: `chatapp-client`'s [`Socket`], read as raw JSON so that
/// tests see exactly what the server sent.
pub struct Ws {
    socket: Socket,
    /// The `hello` user.
    pub hello: Value,
}

/// The status a refused WebSocket handshake was answered with (and it had the error shape).
#[track_caller]
pub fn refused_status(result: Result<Ws, ClientError>) -> u16 {
    match result {
        Err(ClientError::Api { status, code, .. }) => {
            assert!(!code.is_empty(), "an error code");
            status.as_u16()
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a socket"),
    }
}

impl Ws {
    fn ws_url(base: &str) -> String {
        format!("{}/api/ws", base.replacen("http://", "ws://", 1))
    }

    /// Connects with a bearer token and reads `hello`.
    pub async fn connect(base: &str, token: &str) -> Self {
        Self::connect_with(base, &[("authorization", &format!("Bearer {token}"))])
            .await
            .expect("WebSocket handshake")
    }

    /// Connects with the given headers; the handshake's refusal as the client's typed error.
    pub async fn connect_with(base: &str, headers: &[(&str, &str)]) -> Result<Self, ClientError> {
        let socket = Socket::open(&Self::ws_url(base), headers).await?;
        let mut ws = Self {
            socket,
            hello: Value::Null,
        };
        let hello = ws.next_json().await;
        assert_eq!(hello["type"], "hello", "first event is hello: {hello}");
        ws.hello = hello;
        Ok(ws)
    }

    /// Connects and sends `resume` with `cursors`; returns after `synced` with what was replayed.
    pub async fn connect_and_resume(
        base: &str,
        token: &str,
        cursors: &[(i64, i64)],
    ) -> (Self, Vec<Value>) {
        let mut ws = Self::connect(base, token).await;
        let replayed = ws.resume(cursors).await;
        (ws, replayed)
    }

    pub async fn resume(&mut self, cursors: &[(i64, i64)]) -> Vec<Value> {
        self.send(&ClientEvent::Resume {
            cursors: cursors.iter().copied().collect(),
        })
        .await;
        let mut replayed = Vec::new();
        loop {
            let ev = self.next_json().await;
            if ev["type"] == "synced" {
                return replayed;
            }
            replayed.push(ev);
        }
    }

    pub async fn send(&mut self, event: &ClientEvent) {
        self.socket.send(event).await.expect("ws send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.socket.send_frame(message).await.expect("ws send");
    }

    /// The next event (skipping control frames), as JSON.
    pub async fn next_json(&mut self) -> Value {
        match tokio::time::timeout(EVENT_WAIT, self.next_frame()).await {
            Ok(Some(v)) => v,
            Ok(None) => panic!("connection closed while waiting for an event"),
            Err(_) => panic!("no event within {EVENT_WAIT:?}"),
        }
    }

    /// The next event as JSON, or `None` when the server closed the connection.
    pub async fn next_frame(&mut self) -> Option<Value> {
        let text = self.socket.next_text().await.ok()??;
        Some(serde_json::from_str(&text).expect("event JSON"))
    }

    /// Reads (and drops) events until the server closes the connection; the close
    /// frame's code (`None` when the connection ended without one).
    pub async fn close_code(&mut self) -> Option<u16> {
        let wait = async { while let Ok(Some(_)) = self.socket.next_text().await {} };
        tokio::time::timeout(EVENT_WAIT, wait)
            .await
            .expect("the server closes the connection");
        self.socket.close_code()
    }

    /// The next event of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let ev = self.next_json().await;
            if ev["type"] == kind {
                return ev;
            }
        }
    }

    /// Asserts that nothing is pending: a `ping` is answered by `pong` before any
    /// other event (the server's per-connection queue is first in, first out).
    pub async fn expect_quiet(&mut self) {
        self.expect_quiet_but(&[]).await;
    }

    /// Like [`Ws::expect_quiet`], but events of the `ignored` types may come first.
    pub async fn expect_quiet_but(&mut self, ignored: &[&str]) {
        self.send(&ClientEvent::Ping).await;
        loop {
            let ev = self.next_json().await;
            let kind = ev["type"].as_str().unwrap_or_default();
            if ignored.contains(&kind) {
                continue;
            }
            assert_eq!(kind, "pong", "unexpected event before pong: {ev}");
            return;
        }
    }

    pub async fn close(self) {
        self.socket.close().await;
    }
}
