//! Test support for the server's tests: servers from `chatapp-testkit` (in-process by
//! default, the binary where a test needs the process) with generous limits, the scenario
//! macro for both databases, the WebSocket reader (`Ws`), refusals of `chatapp-client`
//! calls (`Refused`), and `Raw` requests into the router for what no client sends.

#![allow(dead_code)]

pub mod media;

/// A child process (a server binary the test started), killed and waited for when
/// dropped, whatever the test does.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;

#[allow(unused_imports)]
pub use chatapp_testkit::{Backend, Launch, TestDatabase, postgres_admin_url};

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

/// A server for a test ([`chatapp_testkit::TestServer`]): in-process unless a test needs
/// the process itself (a crash, signals, its log, several processes on one database).
pub struct TestServer(chatapp_testkit::TestServer);

impl std::ops::Deref for TestServer {
    type Target = chatapp_testkit::TestServer;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for TestServer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl TestServer {
    /// The binary these tests were built with.
    pub const BINARY: &str = env!("CARGO_BIN_EXE_chatapp-server");

    /// An in-process server with generous limits.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// An in-process server with generous limits and `extra` flags.
    pub async fn start_with(backend: Backend, extra: &[&str]) -> Self {
        Self(
            Launch::new(backend)
                .args(GENEROUS_LIMITS)
                .args(extra)
                .start()
                .await,
        )
    }

    /// The server binary with generous limits and `extra` flags.
    pub async fn start_binary(backend: Backend, extra: &[&str]) -> Self {
        Self(
            Launch::new(backend)
                .binary(Self::BINARY)
                .args(GENEROUS_LIMITS)
                .args(extra)
                .start()
                .await,
        )
    }

    /// An in-process server with generous limits and `extra` flags on this test's
    /// runtime, for [`Raw`] requests into its router.
    pub async fn start_local(backend: Backend, extra: &[&str]) -> chatapp_testkit::LocalServer {
        Launch::new(backend)
            .args(GENEROUS_LIMITS)
            .args(extra)
            .start_here()
            .await
    }

    /// A second server process on the PostgreSQL database of `other`.
    pub async fn start_sharing(other: &TestServer, extra: &[&str]) -> Self {
        Self(
            Launch::new(Backend::Postgres)
                .sharing(other)
                .binary(Self::BINARY)
                .args(GENEROUS_LIMITS)
                .args(extra)
                .start()
                .await,
        )
    }

    /// The server binary with `RUST_LOG=rust_log`, keeping what it logs in `log`.
    pub async fn start_capturing_log(backend: Backend, rust_log: &str) -> Self {
        Self(
            Launch::new(backend)
                .binary(Self::BINARY)
                .args(&[
                    "--auth-rate-per-account",
                    "1000",
                    "--auth-rate-per-address",
                    "100000",
                ])
                .log_level(rust_log)
                .capture_log()
                .start()
                .await,
        )
    }

    /// Registers `name` through `chatapp-client` (see
    /// [`chatapp_testkit::TestServer::register`]).
    pub async fn register_api(&self, name: &str) -> (chatapp_client::Api, i64) {
        self.0.register(name).await
    }
}

/// A response: status, headers, the body as JSON (`Value::Null` when empty or not JSON)
/// and as it came.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub bytes: axum::body::Bytes,
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
            changes: Default::default(),
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

/// Asserts that a `chatapp-client` call was refused with `status` and `code` (the error
/// shape with a message), returning nothing else: the refusal is the result.
pub trait Refused {
    #[track_caller]
    fn refused(self, status: u16, code: &str);
}

impl<T: std::fmt::Debug> Refused for Result<T, ClientError> {
    #[track_caller]
    fn refused(self, status: u16, code: &str) {
        refused_as("the call", self, status, code);
    }
}

/// Asserts that `result` is the server's refusal with `status` and `code` (the error
/// shape, a message), saying `what` was refused when it is not; the message.
#[track_caller]
pub fn refused_as<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, ClientError>,
    status: u16,
    code: &str,
) -> String {
    match result {
        Err(ClientError::Api {
            status: got,
            code: got_code,
            message,
            ..
        }) => {
            assert_eq!(
                (got.as_u16(), got_code.as_str()),
                (status, code),
                "{what}: refused with another status or code ({message})"
            );
            assert!(!message.is_empty(), "{what}: an error without a message");
            message
        }
        Err(other) => panic!("{what}: expected a {status} {code} refusal, got {other}"),
        Ok(value) => panic!("{what}: expected a {status} {code} refusal, got {value:?}"),
    }
}

/// Requests straight into the server's router in this process, no socket (axum's
/// examples/testing): for malformed or hostile input that `chatapp-client` cannot send
/// (broken JSON, wrong content types, NUL in text, unknown fields). Set up the rest of the
/// test through `chatapp-client` on the same server's `base`.
#[derive(Clone)]
pub struct Raw {
    router: axum::Router,
    token: Option<String>,
}

impl Raw {
    /// Raw access to `server` (started with [`Launch::start_here`]), as a client on
    /// 127.0.0.1.
    pub fn new(server: &chatapp_testkit::LocalServer) -> Self {
        let router = chatapp_server::router(server.state().clone()).layer(
            axum::extract::connect_info::MockConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40_000,
            ))),
        );
        Self {
            router,
            token: None,
        }
    }

    /// The same, signed in with `token` (a bearer token).
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The same, signed in as `api`'s session.
    pub fn as_user(&self, api: &chatapp_client::Api) -> Self {
        self.with_token(&api.token().expect("signed in"))
    }

    /// Sends `method path` with `body` of `content_type` (none when `None`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<axum::body::Body>,
    ) -> Resp {
        self.request(method, path, &[], content_type, body).await
    }

    /// Sends `method path` with request `headers` (e.g. `Cookie`, `Origin`, `Host`, another
    /// `Authorization` scheme: they replace the bearer token) and `body` of `content_type`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: impl Into<axum::body::Body>,
    ) -> Resp {
        use tower::ServiceExt as _;
        let mut req = axum::http::Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(token) = &self.token
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body.into()).expect("request"))
            .await
            .expect("the router answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        Resp {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            bytes,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, axum::body::Body::empty())
            .await
    }

    /// `body` as JSON (which may be anything a client could write: unknown fields, NUL).
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::POST,
            path,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::PATCH,
            path,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, axum::body::Body::empty())
            .await
    }
}
