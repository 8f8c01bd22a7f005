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

use axum::body::Body;
use reqwest::Method;
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
) -> support::Resp {
    let host = server.base.trim_start_matches("http://");
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    let (content_type, body) = match json {
        Some(json) => (Some("application/json"), Body::from(json)),
        None => (None, Body::empty()),
    };
    support::Raw::new(server)
        .request(method, path, &all, content_type, body)
        .await
}
