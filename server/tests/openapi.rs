//! The OpenAPI document (`/api/openapi.json`) against what the server does: which
//! operations are public and which need a session, that every error is documented with
//! the `ErrorBody` shape, and — against the real server binary — that requests without
//! credentials, with a cookie but no CSRF token, with malformed path ids, the wrong
//! Content-Type, malformed JSON or an oversized body get statuses (and content types)
//! the document lists for that operation. `scripts/api-fuzz` fuzzes the same contract
//! with schemathesis.

mod support;

use std::collections::BTreeSet;

use chatapp_testkit::LocalServer;
use reqwest::{Method, header};
use serde_json::{Value, json};
use support::{Backend, Raw, Resp, TestServer};

/// The operations anyone may call: everything else needs a Bearer token or the cookie.
const PUBLIC: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/api/server"),
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
];

/// Operations that count against a rate limit (429 with `Retry-After`).
const RATE_LIMITED: &[(&str, &str)] = &[
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/conversations/{id}/messages"),
    ("post", "/api/conversations/{id}/voice"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

struct Operation<'a> {
    method: &'a str,
    path: &'a str,
    op: &'a Value,
}

impl Operation<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    fn is_public(&self) -> bool {
        PUBLIC.contains(&(self.method, self.path))
    }

    fn statuses(&self) -> BTreeSet<u16> {
        self.op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: no responses", self.name()))
            .keys()
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("{}: status {s}", self.name()))
            })
            .collect()
    }

    fn params(&self, location: &str) -> Vec<&Value> {
        self.op["parameters"]
            .as_array()
            .map(|all| all.iter().filter(|p| p["in"] == location).collect())
            .unwrap_or_default()
    }

    /// The request body's content type, if it takes a body.
    fn body_type(&self) -> Option<&str> {
        let content = self.op["requestBody"]["content"].as_object()?;
        assert_eq!(content.len(), 1, "{}: one body content type", self.name());
        content.keys().next().map(String::as_str)
    }
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                all.push(Operation { method, path, op });
            }
        }
    }
    all
}

fn document() -> Value {
    let (_, openapi) = chatapp_server::api();
    serde_json::to_value(&openapi).expect("the document serializes")
}

#[test]
fn security_schemes_are_bearer_and_the_session_cookie() {
    let doc = document();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["cookie"]["type"], "apiKey");
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(
        schemes["cookie"]["name"],
        chatapp_server::auth::SESSION_COOKIE
    );
    assert_eq!(schemes.as_object().map(|s| s.len()), Some(2));
    // By default an operation needs one of the two.
    assert_eq!(doc["security"], json!([{"bearer": []}, {"cookie": []}]));
}

#[test]
fn only_health_register_and_sign_in_are_public() {
    let doc = document();
    let ops = operations(&doc);
    for public in PUBLIC {
        assert!(
            ops.iter().any(|o| (o.method, o.path) == *public),
            "{public:?} is not documented"
        );
    }
    for op in &ops {
        let effective = op.op.get("security").unwrap_or(&doc["security"]);
        if op.is_public() {
            assert_eq!(effective, &json!([{}]), "{} must be public", op.name());
        } else {
            assert_eq!(
                effective,
                &json!([{"bearer": []}, {"cookie": []}]),
                "{} must need a Bearer token or the session cookie",
                op.name()
            );
        }
    }
}

#[test]
fn every_operation_documents_the_errors_its_extractors_can_give() {
    let doc = document();
    for op in operations(&doc) {
        let name = op.name();
        let statuses = op.statuses();
        let needs = |status: u16, why: &str| {
            assert!(
                statuses.contains(&status),
                "{name}: {status} ({why}) is not documented; documented: {statuses:?}"
            );
        };
        if !op.is_public() {
            needs(401, "no or a bad session");
            needs(500, "internal error");
            needs(507, "storage full");
            if op.method != "get" || op.path == "/api/ws" {
                needs(403, "cookie session without same origin / CSRF token");
            }
        }
        if !op.params("path").is_empty() {
            needs(400, "path parameter");
        }
        if !op.params("query").is_empty() {
            needs(400, "query parameter");
        }
        if op.body_type().is_some() {
            needs(400, "malformed body");
            needs(408, "body too slow");
            needs(413, "body too large");
            needs(415, "wrong Content-Type");
        }
        if RATE_LIMITED.contains(&(op.method, op.path)) {
            needs(429, "rate limit");
            assert!(
                op.op["responses"]["429"]["headers"]
                    .get("Retry-After")
                    .is_some(),
                "{name}: 429 without Retry-After"
            );
        }
    }
}

#[test]
fn every_error_is_an_error_body() {
    let doc = document();
    for op in operations(&doc) {
        for (status, response) in op.op["responses"].as_object().expect("responses") {
            let status: u16 = status.parse().expect("status");
            if status < 400 || (op.path, status) == ("/healthz", 503) {
                continue;
            }
            if (op.path, status) == ("/api/ws", 400) {
                // axum's handshake rejection, in plain text.
                assert!(response["content"].get("text/plain").is_some());
                continue;
            }
            assert_eq!(
                response["content"],
                json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}),
                "{} {status}",
                op.name()
            );
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{} {status} has no description",
                op.name()
            );
        }
    }
}

/// What a probe got, checked against the operation's documented responses.
#[track_caller]
fn check_documented(op: &Operation<'_>, what: &str, status: u16, content_type: &str, body: &Value) {
    let name = op.name();
    let response = op.op["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| {
            panic!(
                "{name} ({what}): answered {status}, documented {:?}; body {body}",
                op.statuses()
            )
        });
    if let Some(content) = response["content"].as_object() {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        assert!(
            content.contains_key(media_type),
            "{name} ({what}): {status} as {content_type:?}, documented {:?}",
            content.keys().collect::<Vec<_>>()
        );
        if media_type == "application/json" && status >= 400 {
            assert!(
                body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                "{name} ({what}): {status} is not an ErrorBody: {body}"
            );
        }
    }
}

/// Checks the answer `resp` is documented for `op`; returns the status.
#[track_caller]
fn probe(op: &Operation<'_>, what: &str, resp: Resp) -> u16 {
    let status = resp.status.as_u16();
    let content_type = resp
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    check_documented(op, what, status, &content_type, &resp.body);
    status
}

/// `method path` with `headers` (and `body` of `content_type`) straight into the server's
/// router through [`Raw::request`], for the headers a client does not send (another
/// `Authorization` scheme, the session cookie without its CSRF token).
async fn with_headers(
    server: &LocalServer,
    method: Method,
    path: &str,
    headers: &[(header::HeaderName, String)],
    body: Option<(&str, &'static str)>,
) -> Resp {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let (content_type, body) = match body {
        Some((content_type, body)) => (Some(content_type), axum::body::Body::from(body)),
        None => (None, axum::body::Body::empty()),
    };
    Raw::new(server)
        .request(method, path, &headers, content_type, body)
        .await
}

/// The path with every `{param}` replaced: integers by `id`, strings by `"x"`; or every
/// one by `bad` when given.
fn fill_path(op: &Operation<'_>, id: i64, bad: Option<&str>) -> String {
    let mut path = op.path.to_owned();
    for param in op.params("path") {
        let name = param["name"].as_str().expect("name");
        let value = match bad {
            Some(bad) => bad.to_owned(),
            None if param["schema"]["type"] == "integer" => id.to_string(),
            None => "x".to_owned(),
        };
        path = path.replace(&format!("{{{name}}}"), &value);
    }
    path
}

/// The probes send what no client would (no or foreign credentials, malformed ids, the
/// wrong Content-Type, broken or oversized JSON): in-process into `router()` ([`Raw`]),
/// since none of it depends on the transport (body limits and timeouts are layers of
/// the router).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_as_documented() {
    let server = TestServer::start_local(Backend::Sqlite, &[]).await;
    let raw = Raw::new(&server);
    let doc = raw.get("/api/openapi.json").await.expect(200);
    assert_eq!(doc, document(), "the served document is api()'s");
    let (alice, _) = server.register("alice").await;
    let (_bob, bob_id) = server.register("bob").await;
    // A conversation both are in, so ids name something real.
    let conversation = alice.direct_conversation(bob_id).await.expect("direct").id;
    let token = alice.token().expect("token");
    let signed_in = raw.with_token(&token);
    let big = json!({ "padding": "x".repeat(chatapp_server::JSON_BODY_LIMIT + 1) }).to_string();

    for op in operations(&doc) {
        let method: Method = op.method.to_uppercase().parse().expect("method");
        let path = fill_path(&op, conversation, None);
        let body_type = op.body_type();
        let json_body =
            (body_type == Some("application/json")).then_some(("application/json", "{}"));
        let with_body = |raw: &Raw, path: &str| {
            let (raw, method, path) = (raw.clone(), method.clone(), path.to_owned());
            async move {
                match json_body {
                    Some((content_type, body)) => {
                        raw.send(method, &path, Some(content_type), body).await
                    }
                    None => {
                        raw.send(method, &path, None, axum::body::Body::empty())
                            .await
                    }
                }
            }
        };

        // No credentials: public operations answer, the others refuse with 401.
        let status = probe(&op, "no credentials", with_body(&raw, &path).await);
        if op.is_public() {
            assert_ne!(status, 401, "{} is public", op.name());
        } else {
            assert_eq!(status, 401, "{} without credentials", op.name());
            // An unknown token, and another scheme than Bearer: 401 too.
            for authorization in ["Bearer not-a-session", "Basic YWxpY2U6cHc="] {
                let resp = with_headers(
                    &server,
                    method.clone(),
                    &path,
                    &[(header::AUTHORIZATION, authorization.to_owned())],
                    json_body,
                )
                .await;
                let status = probe(&op, authorization, resp);
                assert_eq!(status, 401, "{} with {authorization}", op.name());
            }
            // The session cookie without Origin and CSRF token: refused where it must be.
            let resp = with_headers(
                &server,
                method.clone(),
                &path,
                &[(
                    header::COOKIE,
                    format!("{}={token}", chatapp_server::auth::SESSION_COOKIE),
                )],
                json_body,
            )
            .await;
            let status = probe(&op, "cookie without CSRF token", resp);
            if op.method != "get" {
                assert_eq!(status, 403, "{} with a bare cookie", op.name());
            }
        }

        // Signing out would end the session the probes below use.
        if op.path == "/api/auth/logout" {
            continue;
        }
        if !op.params("path").is_empty() {
            for bad in ["not-a-number", "99999999999999999999", "%00"] {
                let resp = with_body(&signed_in, &fill_path(&op, conversation, Some(bad))).await;
                probe(&op, &format!("path {bad}"), resp);
            }
        }
        if !op.params("query").is_empty() {
            let resp = signed_in
                .send(
                    method.clone(),
                    &format!("{path}?limit=x"),
                    None,
                    axum::body::Body::empty(),
                )
                .await;
            assert_eq!(probe(&op, "query", resp), 400, "{}", op.name());
        }
        if let Some(body_type) = body_type {
            let resp = signed_in
                .send(method.clone(), &path, Some("text/plain"), "hello")
                .await;
            let status = probe(&op, "text/plain body", resp);
            assert_eq!(status, 415, "{} with a text/plain body", op.name());
            if body_type == "application/json" {
                let resp = signed_in
                    .send(
                        method.clone(),
                        &path,
                        Some("application/json"),
                        "{\"unterminated",
                    )
                    .await;
                assert_eq!(probe(&op, "malformed JSON", resp), 400);
                let resp = signed_in
                    .send(method.clone(), &path, Some("application/json"), big.clone())
                    .await;
                assert_eq!(probe(&op, "oversized JSON", resp), 413);
            } else {
                let resp = signed_in
                    .send(
                        method.clone(),
                        &path,
                        Some("multipart/form-data"),
                        "no boundary",
                    )
                    .await;
                probe(&op, "multipart without boundary", resp);
            }
        }
    }
}
