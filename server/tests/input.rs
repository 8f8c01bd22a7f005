//! Hostile or careless input over real HTTP and WebSocket, on SQLite and PostgreSQL: NUL
//! in any text, look-alike emails, bidi overrides and invisible names, one sign-in
//! allowance per account, and the security headers on API answers.

mod support;

use chatapp_protocol::{RegisterRequest, UpdateMeRequest};
use serde_json::json;
use support::{Backend, Client, ClientEvent, Refused, TestServer, Ws};

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
    let anon = server.client();
    anon.register("alice").await;
    let wrong = |login: &str| json!({"login": login, "password": "not-the-password"});
    // Registration counted as the first attempt on the account.
    for login in ["alice", "ａｌｉｃｅ@example.org"] {
        anon.post("/api/auth/login", wrong(login))
            .await
            .expect_error(401, "bad_credentials");
    }
    // The fourth attempt on the same account, by another of its names, is limited.
    anon.post("/api/auth/login", wrong("Alice@Example.org"))
        .await
        .expect_error(429, "rate_limited");
    anon.post(
        "/api/auth/login",
        json!({"login": "alice@example.org", "password": "password-alice"}),
    )
    .await
    .expect_error(429, "rate_limited");
    // Another account is not affected.
    anon.register("bob").await;
    anon.post(
        "/api/auth/login",
        json!({"login": "bob@example.org", "password": "password-bob"}),
    )
    .await
    .expect(200);
}

async fn api_answers_are_not_stored_by_caches_nor_sniffed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    anon.register("alice").await;
    let login = anon
        .post(
            "/api/auth/login",
            json!({"login": "alice", "password": "password-alice"}),
        )
        .await;
    assert_eq!(login.status.as_u16(), 200);
    let token = login.body["token"].as_str().expect("token").to_owned();
    let alice = anon.with_token(&token);
    let responses = [
        ("login", login.headers),
        ("me", alice.get("/api/me").await.headers),
        (
            "error",
            alice.get("/api/conversations/999999").await.headers,
        ),
        ("unknown", alice.get("/api/nothing-here").await.headers),
        ("openapi", anon.get("/api/openapi.json").await.headers),
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

async fn labels_refuse_bidi_overrides_and_invisible_only_text(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (alice, _) = anon.register("alice").await;
    let (_, bob_id) = anon.register("bob").await;

    let expect_refused = |resp: support::Resp, code: &str, field: &str| {
        let message = resp.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        resp.expect_error(400, code);
        assert!(message.contains(field), "{message} names {field}");
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
        expect_refused(
            anon.post(
                "/api/auth/register",
                json!({"username": "carol", "email": "carol@example.org",
                       "password": "password-carol", "display_name": name}),
            )
            .await,
            "invalid_display_name",
            "display name",
        );
        expect_refused(
            alice.patch("/api/me", json!({"display_name": name})).await,
            "invalid_display_name",
            "display name",
        );
        expect_refused(
            alice
                .post(
                    "/api/conversations",
                    json!({"kind": "group", "title": name, "member_ids": [bob_id]}),
                )
                .await,
            "invalid_title",
            "title",
        );
    }
    let group = alice.group_with("Team", &[bob_id]).await;
    expect_refused(
        alice
            .patch(
                &format!("/api/conversations/{group}"),
                json!({"title": "x\u{202D}y"}),
            )
            .await,
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
            .patch("/api/me", json!({"display_name": name}))
            .await
            .expect(200);
    }
    // A look-alike name (Cyrillic а) shares its look-alike key with the original, so
    // clients can show the two apart by username.
    let me = alice
        .patch("/api/me", json!({"display_name": "Bob"}))
        .await
        .expect(200);
    let bob = alice.get(&format!("/api/users/{bob_id}")).await.expect(200);
    assert_eq!(bob["display_name"], "bob");
    assert_eq!(me["name_key"], bob["name_key"]);
    let me = alice
        .patch("/api/me", json!({"display_name": "\u{430}bob"}))
        .await
        .expect(200);
    assert_ne!(me["name_key"], bob["name_key"]);
    let me = alice
        .patch("/api/me", json!({"display_name": "b\u{43E}b"}))
        .await
        .expect(200);
    assert_eq!(me["name_key"], bob["name_key"], "Cyrillic о looks like o");
}

async fn fullwidth_emails_are_the_same_account(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    anon.register("alice").await;
    anon.post(
        "/api/auth/register",
        json!({"username": "alice2", "email": "ＡＬＩＣＥ@ｅｘａｍｐｌｅ.ｏｒｇ",
               "password": "password-alice2"}),
    )
    .await
    .expect_error(409, "email_taken");
    anon.post(
        "/api/auth/login",
        json!({"login": "ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｏｒｇ", "password": "password-alice"}),
    )
    .await
    .expect(200);

    let bob = anon
        .post(
            "/api/auth/register",
            json!({"username": "bob", "email": "ｂｏｂ@Ｅｘａｍｐｌｅ.ｏｒｇ",
                   "password": "password-bob"}),
        )
        .await
        .expect(201);
    assert_eq!(bob["user"]["email"], "bob@Example.org");
    let bob = Client::new(&server.base).with_token(bob["token"].as_str().expect("token"));
    bob.patch(
        "/api/me",
        json!({"email": "ａｌｉｃｅ@example.org", "current_password": "password-bob"}),
    )
    .await
    .expect_error(409, "email_taken");
    anon.post(
        "/api/auth/login",
        json!({"login": "bob@example.org", "password": "password-bob"}),
    )
    .await
    .expect(200);
}
