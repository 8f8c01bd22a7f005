//! What no client sends gets the error shape (in-process, into the router); and the
//! rest of the surface: health, the OpenAPI document, the web UI.

use reqwest::Method;
use serde_json::json;

use crate::browser;
use crate::support::{Backend, Raw, TestServer};

crate::on_both_backends!(malformed_requests_get_the_error_shape);

async fn malformed_requests_get_the_error_shape(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (ann, _) = server.register("ann").await;
    let as_ann = raw.as_user(&ann);

    let json = Some("application/json");
    as_ann
        .send(Method::POST, "/api/conversations", json, "{not json")
        .await
        .expect_error(400, "invalid_json");
    as_ann
        .send(
            Method::POST,
            "/api/conversations",
            json,
            r#"{"kind":"group","title":7}"#,
        )
        .await
        .expect_error(400, "invalid_body");
    as_ann
        .send(
            Method::POST,
            "/api/conversations",
            Some("text/plain"),
            r#"{"kind":"group","title":"x"}"#,
        )
        .await
        .expect_error(415, "unsupported_media_type");
    as_ann
        .send(
            Method::POST,
            "/api/conversations",
            json,
            format!(r#"{{"kind":"group","title":"{}"}}"#, "x".repeat(100_000)),
        )
        .await
        .expect_error(413, "payload_too_large");
    as_ann
        .send(Method::POST, "/api/auth/login", json, "[]")
        .await
        .expect_error(400, "invalid_body");
    as_ann
        .get("/api/conversations/not-a-number")
        .await
        .expect_error(400, "invalid_path");
    as_ann
        .get("/api/no/such/route")
        .await
        .expect_error(404, "not_found");
    as_ann
        .send(
            Method::PUT,
            "/api/conversations",
            None,
            axum::body::Body::empty(),
        )
        .await
        .expect_error(405, "method_not_allowed");
    assert!(
        ann.conversations().await.expect("list").is_empty(),
        "nothing was created"
    );

    // The rest of the surface: health, OpenAPI generated from the routes, the web UI.
    assert_eq!(server.api().health().await.expect("health").status, "ok");
    // (The client has no call for the document: it is read raw.)
    let openapi = raw.get("/api/openapi.json").await.expect(200);
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/me",
        "/api/users",
        "/api/users/{id}",
        "/api/conversations",
        "/api/conversations/{id}",
        "/api/conversations/{id}/members",
        "/api/conversations/{id}/members/{user_id}",
        "/api/conversations/{id}/messages",
        "/api/conversations/{id}/read",
        "/healthz",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    // Health, the server's description, register and sign-in are public (an empty requirement); every other
    // operation needs the Bearer token or the session cookie (tests/openapi.rs checks
    // the rest of the document against the server).
    let schemes = &openapi["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(schemes["cookie"]["name"], "chatapp_session");
    let authenticated = json!([{"bearer": []}, {"cookie": []}]);
    let public_requirement = json!([{}]);
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let public = matches!(
                (method.as_str(), path.as_str()),
                ("get", "/healthz" | "/api/server")
                    | ("post", "/api/auth/register" | "/api/auth/login")
            );
            let security = operation.get("security").unwrap_or(&openapi["security"]);
            if public {
                assert_eq!(security, &public_requirement, "{method} {path} is public");
            } else {
                assert_eq!(security, &authenticated, "{method} {path} needs a session");
            }
        }
    }
    // The web UI is a browser's page.
    let page = browser(&server, Method::GET, "/", &[], None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(page.headers.contains_key("content-security-policy"));
    assert!(
        std::str::from_utf8(&page.bytes)
            .expect("html")
            .contains("<title>ChatApp</title>")
    );
}
