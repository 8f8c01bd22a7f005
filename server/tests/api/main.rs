//! The REST API journey, one module per resource, on SQLite and on PostgreSQL (a fresh
//! database per server). Everything a client sends goes through `chatapp-client` with
//! `chatapp-protocol` values. What no client sends (malformed JSON, wrong types, unknown
//! fields, wrong content types, query strings the client cannot form) goes in-process into
//! the router through `support::Raw`, and so do the few requests whose status or headers
//! the client does not show; what only a browser sends (cookies, `Origin`, the web page)
//! goes into the router through [`browser`].

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod conversations;
mod malformed;
mod messages;
mod read_state;
mod statuses;
mod users;

use axum::body::{Body, Bytes};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// A protocol value as the JSON body of a [`support::Raw`] request.
pub fn body<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("a protocol value is JSON")
}

/// The JSON of a [`support::Raw`] answer as a protocol value.
#[track_caller]
pub fn typed<T: DeserializeOwned>(json: Value) -> T {
    serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("not a {}: {e}: {json}", std::any::type_name::<T>()))
}

/// An answer to [`browser`]: status, headers and the body as it came.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
}

impl Answer {
    /// As a [`support::Resp`] (the body as JSON), for its `expect` and `expect_error`.
    pub fn json(self) -> support::Resp {
        support::Resp {
            status: self.status,
            headers: self.headers,
            body: serde_json::from_slice(&self.bytes).unwrap_or(Value::Null),
        }
    }
}

/// A request as a browser sends it (with `headers` such as `Cookie`, `Origin` and
/// `X-CSRF-Token`, and `Host` set to the server's address), straight into the router of
/// `server` as [`support::Raw`] does, from 127.0.0.1. `json` is sent as
/// `application/json`.
pub async fn browser(
    server: &chatapp_testkit::LocalServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<String>,
) -> Answer {
    use tower::ServiceExt as _;
    let router = chatapp_server::router(server.state().clone()).layer(
        axum::extract::connect_info::MockConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40_000,
        ))),
    );
    let host = server.base.trim_start_matches("http://");
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let body = match json {
        Some(json) => {
            req = req.header("content-type", "application/json");
            Body::from(json)
        }
        None => Body::empty(),
    };
    let resp = router
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("the router answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        bytes,
    }
}
