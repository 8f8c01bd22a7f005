//! Hostile or careless input over real HTTP and WebSocket, on SQLite and PostgreSQL: NUL
//! in any text, look-alike emails, bidi overrides and invisible names, one sign-in
//! allowance per account, and the security headers on API answers.

mod support;

use chatapp_client::{Api, ClientError};
use chatapp_protocol::{AuthResponse, LoginRequest, RegisterRequest, UpdateMeRequest};
use reqwest::Method;
use support::{Backend, ClientEvent, Refused, TestServer, Ws};

on_both_backends!(
    nul_in_any_text_is_refused_with_400,
    the_sign_in_limit_counts_username_and_email_as_one_account,
    api_answers_are_not_stored_by_caches_nor_sniffed,
    labels_refuse_bidi_overrides_and_invisible_only_text,
    fullwidth_emails_are_the_same_account,
);

async fn nul_in_any_text_is_refused_with_400(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.api();
    let (alice, _) = server.register_api("alice").await;
    let (_, bob_id) = server.register_api("bob").await;
    let direct = alice.direct_conversation(bob_id).await.expect("direct").id;

    let good = RegisterRequest {
        username: "carol".into(),
        email: "carol@example.org".into(),
        password: "password-carol".into(),
        display_name: Some("Carol".into()),
        invite: None,
    };
    let nul = |text: &str| format!("{text}\u{0}x");
    for field in ["username", "email", "password", "display_name"] {
        let mut req = good.clone();
        match field {
            "username" => req.username = nul(&req.username),
            "email" => req.email = nul(&req.email),
            "password" => req.password = nul(&req.password),
            _ => req.display_name = Some(nul("Carol")),
        }
        anon.register(&req).await.refused(400, "invalid_text");
    }
    anon.login("alice\u{0}", "password-alice")
        .await
        .refused(400, "invalid_text");
    anon.login("alice", "password-alice\u{0}")
        .await
        .refused(400, "invalid_text");
    alice
        .search_users("b\u{0}", None)
        .await
        .refused(400, "invalid_text");
    alice
        .send_message(direct, "hi\u{0}", Some("n1"))
        .await
        .refused(400, "invalid_text");
    alice
        .update_me(&UpdateMeRequest {
            display_name: Some("A\u{0}".into()),
            ..UpdateMeRequest::default()
        })
        .await
        .refused(400, "invalid_text");
    alice
        .create_group("t\u{0}", &[bob_id])
        .await
        .refused(400, "invalid_text");

    let mut ws = Ws::connect(&server.base, &alice.token().expect("token")).await;
    ws.send(&ClientEvent::Send {
        conversation_id: direct,
        client_id: "n2".into(),
        body: "hi\u{0}".into(),
        reply_to_id: None,
    })
    .await;
    let ev = ws.next_of("error").await;
    assert_eq!(ev["code"], "invalid_text", "{ev}");
    assert_eq!(ev["client_id"], "n2", "{ev}");
    ws.close().await;

    // Nothing of it was stored; the server is fine.
    let page = alice.history(direct, None, None).await.expect("history");
    assert!(page.messages.is_empty());
    anon.register(&good).await.expect("registered");
}

async fn the_sign_in_limit_counts_username_and_email_as_one_account(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &[
            "--auth-rate-per-account",
            "3",
            "--auth-rate-per-address",
            "100000",
            "--auth-rate-window-secs",
            "3600",
        ],
    )
    .await;
    let anon = server.api();
    server.register_api("alice").await;
    let wrong = "not-the-password";
    // Registration counted as the first attempt on the account.
    for login in ["alice", "ａｌｉｃｅ@example.org"] {
        anon.login(login, wrong)
            .await
            .refused(401, "bad_credentials");
    }
    // The fourth attempt on the same account, by another of its names, is limited.
    anon.login("Alice@Example.org", wrong)
        .await
        .refused(429, "rate_limited");
    anon.login("alice@example.org", "password-alice")
        .await
        .refused(429, "rate_limited");
    // Another account is not affected.
    server.register_api("bob").await;
    anon.login("bob@example.org", "password-bob")
        .await
        .expect("bob signs in");
}

async fn api_answers_are_not_stored_by_caches_nor_sniffed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.api();
    server.register_api("alice").await;
    // The headers of the answers as a client receives them, over HTTP: the client's
    // requests (`Api::request`), read as responses.
    let login = anon
        .request(Method::POST, "/api/auth/login")
        .json(&LoginRequest {
            login: "alice".into(),
            password: "password-alice".into(),
        })
        .send()
        .await
        .expect("login answered");
    assert_eq!(login.status().as_u16(), 200);
    let login_headers = login.headers().clone();
    let auth: AuthResponse = login.json().await.expect("auth response");
    let alice = anon.with_token(&auth.token);
    let headers = |api: &Api, path: &str| {
        let req = api.request(Method::GET, path);
        async move { req.send().await.expect("answered").headers().clone() }
    };
    let responses = [
        ("login", login_headers),
        ("me", headers(&alice, "/api/me").await),
        ("error", headers(&alice, "/api/conversations/999999").await),
        ("unknown", headers(&alice, "/api/nothing-here").await),
        ("openapi", headers(&anon, "/api/openapi.json").await),
    ];
    for (what, headers) in responses {
        assert_eq!(
            headers.get("cache-control").map(|v| v.to_str().ok()),
            Some(Some("no-store")),
            "{what}: {headers:?}"
        );
        assert_eq!(
            headers
                .get("x-content-type-options")
                .map(|v| v.to_str().ok()),
            Some(Some("nosniff")),
            "{what}: {headers:?}"
        );
    }
}

/// Asserts a 400 refusal with `code` whose message names `field`.
#[track_caller]
fn refused_naming<T: std::fmt::Debug>(result: Result<T, ClientError>, code: &str, field: &str) {
    match result {
        Err(ClientError::Api {
            status,
            code: got,
            message,
            ..
        }) => {
            assert_eq!((status.as_u16(), got.as_str()), (400, code), "{message}");
            assert!(message.contains(field), "{message} names {field}");
        }
        other => panic!("expected a 400 {code} refusal, got {other:?}"),
    }
}

async fn labels_refuse_bidi_overrides_and_invisible_only_text(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.api();
    let (alice, _) = server.register_api("alice").await;
    let (_, bob_id) = server.register_api("bob").await;

    let display_name = |name: &str| UpdateMeRequest {
        display_name: Some(name.to_owned()),
        ..UpdateMeRequest::default()
    };
    for name in [
        "evil\u{202E}gpj.exe",
        "a\u{2066}b\u{2069}",
        "\u{200B}\u{200D}",
        "\u{3164}",
        "\u{FEFF} \u{2060}",
        // Hidden inside a name that looks like someone else's.
        "a\u{200B}l\u{200B}i\u{200B}c\u{200B}e",
        "al\u{AD}ice",
        "ali\u{200D}ce",
    ] {
        refused_naming(
            anon.register(&RegisterRequest {
                username: "carol".into(),
                email: "carol@example.org".into(),
                password: "password-carol".into(),
                display_name: Some(name.to_owned()),
                invite: None,
            })
            .await,
            "invalid_display_name",
            "display name",
        );
        refused_naming(
            alice.update_me(&display_name(name)).await,
            "invalid_display_name",
            "display name",
        );
        refused_naming(
            alice.create_group(name, &[bob_id]).await,
            "invalid_title",
            "title",
        );
    }
    let group = alice
        .create_group("Team", &[bob_id])
        .await
        .expect("group")
        .id;
    refused_naming(
        alice.rename_conversation(group, "x\u{202D}y").await,
        "invalid_title",
        "title",
    );
    // Real names in any script, with marks and emoji, still pass.
    for name in [
        "عليّ",
        "Zoë",
        "José",
        "山田 太郎",
        "👍 Ann",
        "👩\u{200D}💻 Ann",
        "می\u{200C}خواهم",
    ] {
        alice
            .update_me(&display_name(name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // A look-alike name (Cyrillic а) shares its look-alike key with the original, so
    // clients can show the two apart by username.
    let me = alice
        .update_me(&display_name("Bob"))
        .await
        .expect("renamed");
    let bob = alice.user(bob_id).await.expect("bob");
    assert_eq!(bob.display_name, "bob");
    assert_eq!(me.name_key, bob.name_key);
    let me = alice
        .update_me(&display_name("\u{430}bob"))
        .await
        .expect("renamed");
    assert_ne!(me.name_key, bob.name_key);
    let me = alice
        .update_me(&display_name("b\u{43E}b"))
        .await
        .expect("renamed");
    assert_eq!(me.name_key, bob.name_key, "Cyrillic о looks like o");
}

async fn fullwidth_emails_are_the_same_account(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.api();
    server.register_api("alice").await;
    let register = |username: &str, email: &str| RegisterRequest {
        username: username.to_owned(),
        email: email.to_owned(),
        password: format!("password-{username}"),
        display_name: None,
        invite: None,
    };
    anon.register(&register("alice2", "ＡＬＩＣＥ@ｅｘａｍｐｌｅ.ｏｒｇ"))
        .await
        .refused(409, "email_taken");
    anon.login("ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｏｒｇ", "password-alice")
        .await
        .expect("alice signs in");

    let bob = server.api();
    let auth = bob
        .register(&register("bob", "ｂｏｂ@Ｅｘａｍｐｌｅ.ｏｒｇ"))
        .await
        .expect("bob registered");
    assert_eq!(auth.user.email, "bob@Example.org");
    bob.update_me(&UpdateMeRequest {
        email: Some("ａｌｉｃｅ@example.org".into()),
        current_password: Some("password-bob".into()),
        ..UpdateMeRequest::default()
    })
    .await
    .refused(409, "email_taken");
    anon.login("bob@example.org", "password-bob")
        .await
        .expect("bob signs in");
}
