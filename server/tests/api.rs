//! The API journey over real HTTP against the real server binary, on SQLite and on
//! PostgreSQL (a fresh database per server).

mod support;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Backend, Client, TestServer};

on_both_backends!(
    accounts_register_login_and_profile,
    password_change_needs_old_password_and_ends_other_sessions,
    logout_revokes_the_token,
    sessions_end_after_30_days_unused,
    user_search_and_profiles,
    direct_conversation_is_get_or_create,
    group_membership_rules,
    send_is_idempotent_and_validated,
    paging_returns_every_seq_exactly_once,
    read_position_feeds_unread_counts,
    conversation_list_is_newest_activity_first,
    non_members_get_404_everywhere,
    malformed_requests_get_the_error_shape,
    cookie_requests_need_same_origin_and_csrf_token,
    sign_in_is_rate_limited,
);

async fn accounts_register_login_and_profile(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();

    let body = anon
        .post("/api/auth/register", json!({"username": "Ann.Lee", "email": "Ann@Example.org", "password": "correct horse", "display_name": "  Ann Lee "}))
        .await
        .expect(201);
    assert_eq!(body["user"]["username"], "Ann.Lee");
    assert_eq!(body["user"]["display_name"], "Ann Lee");
    assert!(body["token"].as_str().is_some_and(|t| t.len() >= 32));
    assert!(body["csrf_token"].is_string());

    // Duplicates ignore case, for usernames and emails.
    anon.post(
        "/api/auth/register",
        json!({"username": "ann.lee", "email": "other@example.org", "password": "correct horse"}),
    )
    .await
    .expect_error(409, "username_taken");
    anon.post(
        "/api/auth/register",
        json!({"username": "ann2", "email": "ANN@example.ORG", "password": "correct horse"}),
    )
    .await
    .expect_error(409, "email_taken");
    // Bad fields.
    for (body, code) in [
        (
            json!({"username": "bo", "email": "bo@example.org", "password": "correct horse"}),
            "invalid_username",
        ),
        (
            json!({"username": "bo b", "email": "bo@example.org", "password": "correct horse"}),
            "invalid_username",
        ),
        (
            json!({"username": "bob", "email": "not-an-email", "password": "correct horse"}),
            "invalid_email",
        ),
        (
            json!({"username": "bob", "email": "bob@example.org", "password": "short"}),
            "weak_password",
        ),
    ] {
        anon.post("/api/auth/register", body)
            .await
            .expect_error(400, code);
    }
    // Nothing of the refused attempts was stored: "bob" is still free.
    anon.post(
        "/api/auth/register",
        json!({"username": "bob", "email": "bob@example.org", "password": "correct horse"}),
    )
    .await
    .expect(201);

    // Login by email (any case) and by username (any case).
    let by_email = anon
        .post(
            "/api/auth/login",
            json!({"login": "ann@EXAMPLE.org", "password": "correct horse"}),
        )
        .await
        .expect(200);
    assert_eq!(by_email["user"]["username"], "Ann.Lee");
    let by_name = anon
        .post(
            "/api/auth/login",
            json!({"login": "ANN.LEE", "password": "correct horse"}),
        )
        .await
        .expect(200);
    assert_ne!(
        by_name["token"], by_email["token"],
        "each login is its own session"
    );

    // Wrong password and unknown account look the same.
    let wrong = anon
        .post(
            "/api/auth/login",
            json!({"login": "ann.lee", "password": "wrong horse"}),
        )
        .await;
    let unknown = anon
        .post(
            "/api/auth/login",
            json!({"login": "nobody", "password": "wrong horse"}),
        )
        .await;
    assert_eq!(wrong.body, unknown.body);
    wrong.expect_error(401, "bad_credentials");

    // /api/me with the token; PATCH display name.
    let ann = anon.with_token(by_email["token"].as_str().expect("token"));
    let me = ann.get("/api/me").await.expect(200);
    assert_eq!(me["email"], "Ann@Example.org");
    assert!(me.get("online").is_some() && me.get("last_seen").is_some());
    let me = ann
        .patch("/api/me", json!({"display_name": "Annie"}))
        .await
        .expect(200);
    assert_eq!(me["display_name"], "Annie");
    ann.patch("/api/me", json!({"display_name": "   "}))
        .await
        .expect_error(400, "invalid_display_name");
    ann.patch("/api/me", json!({"nickname": "x"}))
        .await
        .expect_error(400, "invalid_body");
    anon.get("/api/me").await.expect_error(401, "unauthorized");
    anon.with_token("not-a-token")
        .get("/api/me")
        .await
        .expect_error(401, "unauthorized");
}

async fn password_change_needs_old_password_and_ends_other_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (first, _) = anon.register("carol").await;
    let second = anon.with_token(
        anon.post(
            "/api/auth/login",
            json!({"login": "carol", "password": "password-carol"}),
        )
        .await
        .expect(200)["token"]
            .as_str()
            .expect("token"),
    );

    first
        .patch("/api/me", json!({"new_password": "a new secret"}))
        .await
        .expect_error(403, "forbidden");
    first
        .patch(
            "/api/me",
            json!({"new_password": "a new secret", "current_password": "wrong"}),
        )
        .await
        .expect_error(403, "forbidden");
    first
        .patch(
            "/api/me",
            json!({"new_password": "short", "current_password": "password-carol"}),
        )
        .await
        .expect_error(400, "weak_password");
    // Nothing changed so far: the other session still works.
    second.get("/api/me").await.expect(200);

    first
        .patch(
            "/api/me",
            json!({"new_password": "a new secret", "current_password": "password-carol"}),
        )
        .await
        .expect(200);
    first.get("/api/me").await.expect(200);
    second
        .get("/api/me")
        .await
        .expect_error(401, "unauthorized");
    anon.post(
        "/api/auth/login",
        json!({"login": "carol", "password": "password-carol"}),
    )
    .await
    .expect_error(401, "bad_credentials");
    anon.post(
        "/api/auth/login",
        json!({"login": "carol", "password": "a new secret"}),
    )
    .await
    .expect(200);

    // Email change also needs the password, and stays unique.
    anon.register("dave").await;
    first
        .patch(
            "/api/me",
            json!({"email": "DAVE@example.org", "current_password": "a new secret"}),
        )
        .await
        .expect_error(409, "email_taken");
    let me = first
        .patch(
            "/api/me",
            json!({"email": "carol@new.example.org", "current_password": "a new secret"}),
        )
        .await
        .expect(200);
    assert_eq!(me["email"], "carol@new.example.org");
}

async fn logout_revokes_the_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (erin, _) = server.client().register("erin").await;
    erin.get("/api/me").await.expect(200);
    let resp = erin.post("/api/auth/logout", json!({})).await;
    assert_eq!(resp.status, 204);
    // The browser drops what it cached for this session (voice messages, avatars).
    assert_eq!(resp.headers["clear-site-data"], "\"cache\"");
    erin.get("/api/me").await.expect_error(401, "unauthorized");
    erin.post("/api/auth/logout", json!({}))
        .await
        .expect_error(401, "unauthorized");
}

async fn sessions_end_after_30_days_unused(backend: Backend) {
    const HOUR_MS: i64 = 60 * 60 * 1000;
    let server = TestServer::start(backend).await;
    let (ann, ann_id) = server.client().register("ann").await;
    let mut db = server.db().await;
    let created = last_used(&mut db, ann_id).await.expect("session row");

    // Used two hours ago: still valid, and this use is written down.
    sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE user_id = $2")
        .bind(created - 2 * HOUR_MS)
        .bind(ann_id)
        .execute(&mut db)
        .await
        .expect("update");
    ann.get("/api/me").await.expect(200);
    assert!(
        last_used(&mut db, ann_id).await.expect("row") >= created,
        "use recorded"
    );

    // Unused for 31 days: ended, and the row is gone.
    sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE user_id = $2")
        .bind(created - 31 * 24 * HOUR_MS)
        .bind(ann_id)
        .execute(&mut db)
        .await
        .expect("update");
    ann.get("/api/me").await.expect_error(401, "unauthorized");
    assert_eq!(
        last_used(&mut db, ann_id).await,
        None,
        "the expired session was deleted"
    );
}

async fn last_used(db: &mut sqlx::AnyConnection, user_id: i64) -> Option<i64> {
    sqlx::query_scalar::<_, i64>("SELECT last_used_at FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(db)
        .await
        .expect("select")
}

async fn user_search_and_profiles(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (alice, alice_id) = anon.register("alice").await;
    let (_, alfred_id) = anon.register("alfred").await;
    let (bob, _) = anon.register("bob").await;
    anon.register("al_x").await;
    bob.patch("/api/me", json!({"display_name": "Albert Bob"}))
        .await
        .expect(200);

    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|u| u["username"].as_str().expect("username").to_owned())
            .collect()
    };
    // Prefix of username or display name, case-insensitive, never yourself.
    assert_eq!(
        names(alice.get("/api/users?q=AL").await.expect(200)),
        ["al_x", "alfred", "bob"]
    );
    assert_eq!(
        names(alice.get("/api/users?q=albert").await.expect(200)),
        ["bob"]
    );
    assert_eq!(
        names(alice.get("/api/users?q=al&limit=1").await.expect(200)),
        ["al_x"]
    );
    // LIKE wildcards are literal.
    assert_eq!(
        names(alice.get("/api/users?q=al_").await.expect(200)),
        ["al_x"]
    );
    assert!(names(alice.get("/api/users?q=%25").await.expect(200)).is_empty());
    alice
        .get("/api/users?q=")
        .await
        .expect_error(400, "invalid_query");
    alice
        .get("/api/users")
        .await
        .expect_error(400, "invalid_query");
    anon.get("/api/users?q=al")
        .await
        .expect_error(401, "unauthorized");

    let profile = alice
        .get(&format!("/api/users/{alfred_id}"))
        .await
        .expect(200);
    assert_eq!(profile["username"], "alfred");
    assert_eq!(profile["online"], false);
    assert!(
        profile.get("last_seen").is_some(),
        "last_seen is present (null until real-time)"
    );
    assert!(profile.get("email").is_none(), "emails are private");
    assert!(profile.get("password_hash").is_none());
    alice
        .get("/api/users/999999")
        .await
        .expect_error(404, "not_found");
    alice
        .get("/api/users/abc")
        .await
        .expect_error(400, "invalid_path");
    assert_eq!(
        alice
            .get(&format!("/api/users/{alice_id}"))
            .await
            .expect(200)["id"],
        alice_id
    );
}

async fn direct_conversation_is_get_or_create(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, ann_id) = anon.register("ann").await;
    let (ben, ben_id) = anon.register("ben").await;

    let created = ann
        .post(
            "/api/conversations",
            json!({"kind": "direct", "user_id": ben_id}),
        )
        .await
        .expect(201);
    assert_eq!(created["kind"], "direct");
    assert_eq!(created["title"], Value::Null);
    let ids: BTreeSet<i64> = created["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, BTreeSet::from([ann_id, ben_id]));
    let again = ann
        .post(
            "/api/conversations",
            json!({"kind": "direct", "user_id": ben_id}),
        )
        .await
        .expect(200);
    let other_side = ben
        .post(
            "/api/conversations",
            json!({"kind": "direct", "user_id": ann_id}),
        )
        .await
        .expect(200);
    assert_eq!(again["id"], created["id"]);
    assert_eq!(other_side["id"], created["id"]);

    ann.post(
        "/api/conversations",
        json!({"kind": "direct", "user_id": ann_id}),
    )
    .await
    .expect_error(400, "invalid_user");
    ann.post(
        "/api/conversations",
        json!({"kind": "direct", "user_id": 987654}),
    )
    .await
    .expect_error(404, "not_found");
    ann.post("/api/conversations", json!({"kind": "channel"}))
        .await
        .expect_error(400, "invalid_body");
    // Direct conversations have no owner and cannot be renamed or left.
    let id = created["id"].as_i64().expect("id");
    ann.patch(&format!("/api/conversations/{id}"), json!({"title": "x"}))
        .await
        .expect_error(400, "not_a_group");
    ann.delete(&format!("/api/conversations/{id}/members/{ann_id}"))
        .await
        .expect_error(400, "not_a_group");
}

async fn group_membership_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (owner, owner_id) = anon.register("olga").await;
    let (member, member_id) = anon.register("mark").await;
    let (outsider, outsider_id) = anon.register("otto").await;
    let (_, late_id) = anon.register("lena").await;

    owner
        .post(
            "/api/conversations",
            json!({"kind": "group", "title": "  ", "member_ids": []}),
        )
        .await
        .expect_error(400, "invalid_title");
    owner
        .post(
            "/api/conversations",
            json!({"kind": "group", "title": "x", "member_ids": [424242]}),
        )
        .await
        .expect_error(400, "unknown_user");
    let group = owner
        .post("/api/conversations", json!({"kind": "group", "title": "Climbing club", "member_ids": [member_id, member_id, owner_id]}))
        .await
        .expect(201);
    let id = group["id"].as_i64().expect("id");
    assert_eq!(group["owner_id"], owner_id);
    assert_eq!(group["title"], "Climbing club");
    assert_eq!(
        group["members"].as_array().expect("members").len(),
        2,
        "duplicates and the owner counted once"
    );

    // Only the owner renames and adds.
    member
        .patch(
            &format!("/api/conversations/{id}"),
            json!({"title": "Mine now"}),
        )
        .await
        .expect_error(403, "forbidden");
    member
        .post(
            &format!("/api/conversations/{id}/members"),
            json!({"user_ids": [outsider_id]}),
        )
        .await
        .expect_error(403, "forbidden");
    let renamed = owner
        .patch(
            &format!("/api/conversations/{id}"),
            json!({"title": "Bouldering"}),
        )
        .await
        .expect(200);
    assert_eq!(renamed["title"], "Bouldering");
    let grown = owner
        .post(
            &format!("/api/conversations/{id}/members"),
            json!({"user_ids": [outsider_id, late_id]}),
        )
        .await
        .expect(200);
    assert_eq!(grown["members"].as_array().expect("members").len(), 4);
    outsider
        .get(&format!("/api/conversations/{id}"))
        .await
        .expect(200);

    // A member cannot remove others; the owner can; anyone can leave.
    member
        .delete(&format!("/api/conversations/{id}/members/{outsider_id}"))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(
        owner
            .delete(&format!("/api/conversations/{id}/members/{outsider_id}"))
            .await
            .status,
        204
    );
    outsider
        .get(&format!("/api/conversations/{id}"))
        .await
        .expect_error(404, "not_found");
    outsider
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"body": "still here?"}),
        )
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        member
            .delete(&format!("/api/conversations/{id}/members/{member_id}"))
            .await
            .status,
        204
    );
    member
        .get(&format!("/api/conversations/{id}"))
        .await
        .expect_error(404, "not_found");

    // When the owner leaves, the earliest remaining member becomes the owner.
    assert_eq!(
        owner
            .delete(&format!("/api/conversations/{id}/members/{owner_id}"))
            .await
            .status,
        204
    );
    let lena = anon.with_token(
        anon.post(
            "/api/auth/login",
            json!({"login": "lena", "password": "password-lena"}),
        )
        .await
        .expect(200)["token"]
            .as_str()
            .expect("token"),
    );
    let after = lena
        .get(&format!("/api/conversations/{id}"))
        .await
        .expect(200);
    assert_eq!(after["owner_id"], late_id);
    lena.patch(
        &format!("/api/conversations/{id}"),
        json!({"title": "Lena's"}),
    )
    .await
    .expect(200);
}

async fn send_is_idempotent_and_validated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, ann_id) = anon.register("ann").await;
    let (_, ben_id) = anon.register("ben").await;
    let id = ann.direct_with(ben_id).await;
    let path = format!("/api/conversations/{id}/messages");

    let first = ann
        .post(
            &path,
            json!({"body": "hello <b>ben</b>", "client_id": "c-1"}),
        )
        .await
        .expect(201);
    assert_eq!(first["seq"], 1);
    assert_eq!(first["sender_id"], ann_id);
    assert_eq!(first["kind"], "text");
    assert_eq!(
        first["body"], "hello <b>ben</b>",
        "bodies are stored as given, never interpreted"
    );
    assert_eq!(first["client_id"], "c-1");
    assert!(
        first["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let retry = ann
        .post(
            &path,
            json!({"body": "hello <b>ben</b>", "client_id": "c-1"}),
        )
        .await
        .expect(200);
    assert_eq!(retry, first, "a retry returns the stored message");
    let second = ann
        .post(&path, json!({"body": "no client id"}))
        .await
        .expect(201);
    assert_eq!(second["seq"], 2);

    for (body, code) in [
        (json!({"body": ""}), "empty_body"),
        (json!({"body": " \n "}), "empty_body"),
        (json!({"body": "x".repeat(4001)}), "body_too_long"),
        (
            json!({"body": "ok", "client_id": "has space"}),
            "invalid_client_id",
        ),
        (json!({"body": 5}), "invalid_body"),
        (json!({}), "invalid_body"),
    ] {
        ann.post(&path, body).await.expect_error(400, code);
    }
    ann.post(&path, json!({"body": "é".repeat(4000)}))
        .await
        .expect(201);

    // The same client_id in another conversation is a conflict, not a silent replay.
    let group = ann.group_with("g", &[]).await;
    ann.post(
        &format!("/api/conversations/{group}/messages"),
        json!({"body": "x", "client_id": "c-1"}),
    )
    .await
    .expect_error(409, "client_id_reused");

    let page = ann.get(&path).await.expect(200);
    let seqs: Vec<i64> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3], "refused and retried sends stored nothing");
}

async fn paging_returns_every_seq_exactly_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let (ben, ben_id) = anon.register("ben").await;
    let id = ann.direct_with(ben_id).await;
    let path = format!("/api/conversations/{id}/messages");
    for i in 1..=125 {
        let sender = if i % 3 == 0 { &ben } else { &ann };
        sender
            .post(
                &path,
                json!({"body": format!("message {i}"), "client_id": format!("m{i}")}),
            )
            .await
            .expect(201);
    }

    let mut seen: Vec<i64> = Vec::new();
    let mut before: Option<i64> = None;
    let mut pages = 0;
    loop {
        let url = match before {
            Some(b) => format!("{path}?before_seq={b}&limit=40"),
            None => format!("{path}?limit=40"),
        };
        let page = ben.get(&url).await.expect(200);
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["seq"].as_i64().expect("seq"))
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] + 1 == w[1]),
            "oldest first, consecutive: {seqs:?}"
        );
        for m in page["messages"].as_array().expect("messages") {
            assert_eq!(m["body"], format!("message {}", m["seq"]));
        }
        pages += 1;
        seen.extend(seqs.iter().rev());
        if !page["has_more"].as_bool().expect("has_more") {
            break;
        }
        before = seqs.first().copied();
    }
    assert_eq!(pages, 4);
    seen.reverse();
    assert_eq!(
        seen,
        (1..=125).collect::<Vec<i64>>(),
        "every seq exactly once"
    );

    ann.get(&format!("{path}?limit=0"))
        .await
        .expect_error(400, "invalid_limit");
    ann.get(&format!("{path}?limit=101"))
        .await
        .expect_error(400, "invalid_limit");
    ann.get(&format!("{path}?before_seq=abc"))
        .await
        .expect_error(400, "invalid_query");
    let tail = ann.get(&format!("{path}?before_seq=3")).await.expect(200);
    assert_eq!(tail["messages"].as_array().expect("messages").len(), 2);
    assert_eq!(tail["has_more"], false);
}

async fn read_position_feeds_unread_counts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let (ben, ben_id) = anon.register("ben").await;
    let id = ann.direct_with(ben_id).await;
    for i in 0..5 {
        ann.post(
            &format!("/api/conversations/{id}/messages"),
            json!({"body": format!("m{i}")}),
        )
        .await
        .expect(201);
    }
    let unread = |c: &Client| {
        let c = c.clone();
        async move {
            let list = c.get("/api/conversations").await.expect(200);
            list[0]["unread_count"].as_i64().expect("unread")
        }
    };
    assert_eq!(unread(&ben).await, 5);
    assert_eq!(unread(&ann).await, 0, "your own messages are read");

    let state = ben
        .post(&format!("/api/conversations/{id}/read"), json!({"seq": 3}))
        .await
        .expect(200);
    assert_eq!(state["last_read_seq"], 3);
    assert_eq!(state["unread_count"], 2);
    assert_eq!(unread(&ben).await, 2);
    // Everyone's read position is part of the conversation, in the list and alone.
    let ann_id = ann.get("/api/me").await.expect(200)["id"].clone();
    let expected = json!([
        {"user_id": ann_id, "last_read_seq": 5},
        {"user_id": ben_id, "last_read_seq": 3},
    ]);
    let listed = ann.get("/api/conversations").await.expect(200);
    assert_eq!(listed[0]["read_positions"], expected);
    let single = ann
        .get(&format!("/api/conversations/{id}"))
        .await
        .expect(200);
    assert_eq!(single["read_positions"], expected);
    // Never backwards; never past the end.
    let state = ben
        .post(&format!("/api/conversations/{id}/read"), json!({"seq": 1}))
        .await
        .expect(200);
    assert_eq!(state["last_read_seq"], 3);
    ben.post(&format!("/api/conversations/{id}/read"), json!({"seq": 6}))
        .await
        .expect_error(400, "invalid_seq");
    ben.post(&format!("/api/conversations/{id}/read"), json!({"seq": 5}))
        .await
        .expect(200);
    assert_eq!(unread(&ben).await, 0);
    // Replying marks everything before it as read.
    ann.post(
        &format!("/api/conversations/{id}/messages"),
        json!({"body": "more"}),
    )
    .await
    .expect(201);
    assert_eq!(unread(&ben).await, 1);
    ben.post(
        &format!("/api/conversations/{id}/messages"),
        json!({"body": "reply"}),
    )
    .await
    .expect(201);
    assert_eq!(unread(&ben).await, 0);
    assert_eq!(unread(&ann).await, 1);
}

async fn conversation_list_is_newest_activity_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, ann_id) = anon.register("ann").await;
    let (_, ben_id) = anon.register("ben").await;
    let (_, cid) = anon.register("cid").await;
    let dm = ann
        .post(
            "/api/conversations",
            json!({"kind": "direct", "user_id": ben_id}),
        )
        .await
        .expect(201)["id"]
        .clone();
    let group = ann
        .post(
            "/api/conversations",
            json!({"kind": "group", "title": "Team", "member_ids": [ben_id, cid]}),
        )
        .await
        .expect(201)["id"]
        .clone();
    let list = ann.get("/api/conversations").await.expect(200);
    let order: Vec<Value> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(order, [group.clone(), dm.clone()]);
    assert_eq!(list[0]["last_message"], Value::Null);

    ann.post(
        &format!("/api/conversations/{dm}/messages"),
        json!({"body": "latest"}),
    )
    .await
    .expect(201);
    let list = ann.get("/api/conversations").await.expect(200);
    assert_eq!(list[0]["id"], dm);
    assert_eq!(list[0]["last_message"]["body"], "latest");
    assert_eq!(list[0]["last_seq"], 1);
    assert_eq!(list[1]["id"], group);
    let members: BTreeSet<i64> = list[1]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(members, BTreeSet::from([ann_id, ben_id, cid]));
}

async fn non_members_get_404_everywhere(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let (_, ben_id) = anon.register("ben").await;
    let (eve, eve_id) = anon.register("eve").await;
    let id = ann.direct_with(ben_id).await;
    ann.post(
        &format!("/api/conversations/{id}/messages"),
        json!({"body": "secret"}),
    )
    .await
    .expect(201);

    // Existing-but-foreign and missing conversations answer the same.
    for conv in [id, 99_999] {
        eve.get(&format!("/api/conversations/{conv}"))
            .await
            .expect_error(404, "not_found");
        eve.get(&format!("/api/conversations/{conv}/messages"))
            .await
            .expect_error(404, "not_found");
        eve.post(
            &format!("/api/conversations/{conv}/messages"),
            json!({"body": "hi"}),
        )
        .await
        .expect_error(404, "not_found");
        eve.post(
            &format!("/api/conversations/{conv}/read"),
            json!({"seq": 1}),
        )
        .await
        .expect_error(404, "not_found");
        eve.patch(
            &format!("/api/conversations/{conv}"),
            json!({"title": "mine"}),
        )
        .await
        .expect_error(404, "not_found");
        eve.post(
            &format!("/api/conversations/{conv}/members"),
            json!({"user_ids": [eve_id]}),
        )
        .await
        .expect_error(404, "not_found");
        eve.delete(&format!("/api/conversations/{conv}/members/{ben_id}"))
            .await
            .expect_error(404, "not_found");
    }
    assert!(
        eve.get("/api/conversations")
            .await
            .expect(200)
            .as_array()
            .expect("list")
            .is_empty()
    );
    // Unauthenticated: 401 before anything else.
    anon.get(&format!("/api/conversations/{id}/messages"))
        .await
        .expect_error(401, "unauthorized");
    let page = ann
        .get(&format!("/api/conversations/{id}/messages"))
        .await
        .expect(200);
    assert_eq!(
        page["messages"].as_array().expect("messages").len(),
        1,
        "refused attempts stored nothing"
    );
}

async fn malformed_requests_get_the_error_shape(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;

    let raw = |method: Method, path: &str, content_type: Option<&str>, body: String| {
        let mut req = ann.request(method, path).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Client::send(req)
    };
    raw(
        Method::POST,
        "/api/conversations",
        Some("application/json"),
        "{not json".into(),
    )
    .await
    .expect_error(400, "invalid_json");
    raw(
        Method::POST,
        "/api/conversations",
        Some("application/json"),
        r#"{"kind":"group","title":7}"#.into(),
    )
    .await
    .expect_error(400, "invalid_body");
    raw(
        Method::POST,
        "/api/conversations",
        Some("text/plain"),
        r#"{"kind":"group","title":"x"}"#.into(),
    )
    .await
    .expect_error(415, "unsupported_media_type");
    raw(
        Method::POST,
        "/api/conversations",
        Some("application/json"),
        format!(r#"{{"kind":"group","title":"{}"}}"#, "x".repeat(100_000)),
    )
    .await
    .expect_error(413, "payload_too_large");
    raw(
        Method::POST,
        "/api/auth/login",
        Some("application/json"),
        "[]".into(),
    )
    .await
    .expect_error(400, "invalid_body");
    ann.get("/api/conversations/not-a-number")
        .await
        .expect_error(400, "invalid_path");
    ann.get("/api/no/such/route")
        .await
        .expect_error(404, "not_found");
    Client::send(ann.request(Method::PUT, "/api/conversations"))
        .await
        .expect_error(405, "method_not_allowed");
    assert!(
        ann.get("/api/conversations")
            .await
            .expect(200)
            .as_array()
            .expect("list")
            .is_empty(),
        "nothing was created"
    );

    // The rest of the surface: health, OpenAPI generated from the routes, the web UI.
    assert_eq!(anon.get("/healthz").await.expect(200)["status"], "ok");
    let openapi = anon.get("/api/openapi.json").await.expect(200);
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
    // Health, register and sign-in are public (an empty requirement); every other
    // operation needs the Bearer token or the session cookie (tests/openapi.rs checks
    // the rest of the document against the server).
    let schemes = &openapi["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(schemes["cookie"]["name"], "chatapp_session");
    let authenticated = json!([{"bearer": []}, {"cookie": []}]);
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let public = matches!(
                (method.as_str(), path.as_str()),
                ("get", "/healthz") | ("post", "/api/auth/register" | "/api/auth/login")
            );
            let security = operation.get("security").unwrap_or(&openapi["security"]);
            if public {
                assert_eq!(security, &json!([{}]), "{method} {path} is public");
            } else {
                assert_eq!(security, &authenticated, "{method} {path} needs a session");
            }
        }
    }
    let page = anon
        .http
        .get(format!("{}/", server.base))
        .send()
        .await
        .expect("GET /");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(page.headers().contains_key("content-security-policy"));
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("<title>ChatApp</title>")
    );
}

async fn cookie_requests_need_same_origin_and_csrf_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (_, ben_id) = anon.register("ben").await;
    let login = anon
        .http
        .post(format!("{}/api/auth/login", server.base))
        .header("origin", &server.base)
        .json(&json!({"login": "ben", "password": "password-ben"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("cookie").to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("chatapp_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("chatapp_csrf="))
        .expect("csrf cookie");
    assert!(!csrf_cookie.contains("HttpOnly"));
    let body: Value = login.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    let cookie_header = cookies
        .iter()
        .map(|c| c.split(';').next().expect("pair").to_owned())
        .collect::<Vec<_>>()
        .join("; ");

    let create = |origin: Option<&str>, token: Option<&str>| {
        let mut req = anon
            .http
            .post(format!("{}/api/conversations", server.base))
            .header("cookie", &cookie_header)
            .json(&json!({"kind": "group", "title": "via cookie"}));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        if let Some(token) = token {
            req = req.header("x-csrf-token", token);
        }
        Client::send(req)
    };
    create(Some(&server.base), None)
        .await
        .expect_error(403, "forbidden");
    create(Some(&server.base), Some("forged"))
        .await
        .expect_error(403, "forbidden");
    create(Some("http://evil.example"), Some(&csrf))
        .await
        .expect_error(403, "forbidden");
    create(None, Some(&csrf))
        .await
        .expect_error(403, "forbidden");
    // Reads need neither; nothing was created by the refused writes.
    let list = Client::send(
        anon.http
            .get(format!("{}/api/conversations", server.base))
            .header("cookie", &cookie_header),
    )
    .await;
    assert!(list.expect(200).as_array().expect("list").is_empty());
    create(Some(&server.base), Some(&csrf)).await.expect(201);
    let _ = ben_id;

    // A cross-site login attempt is refused outright.
    anon.http
        .post(format!("{}/api/auth/login", server.base))
        .header("origin", "http://evil.example")
        .json(&json!({"login": "ben", "password": "password-ben"}))
        .send()
        .await
        .map(|r| assert_eq!(r.status(), 403))
        .expect("login");
}

async fn sign_in_is_rate_limited(backend: Backend) {
    // A one-hour window so the test does not depend on how fast the machine is.
    let server = TestServer::start_with(
        backend,
        &[
            "--auth-rate-per-account",
            "3",
            "--auth-rate-per-address",
            "7",
            "--auth-rate-window-secs",
            "3600",
        ],
    )
    .await;
    let anon = server.client();
    anon.register("fay").await;
    let attempt = |login: &str, password: &str| {
        anon.post(
            "/api/auth/login",
            json!({"login": login, "password": password}),
        )
    };

    // Per account: the 4th attempt within the minute is refused, whatever the password.
    for _ in 0..2 {
        attempt("fay", "wrong password")
            .await
            .expect_error(401, "bad_credentials");
    }
    // (registration counted as the first attempt for "fay")
    let limited = attempt("FAY", "password-fay").await;
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!(
        (1..=1200).contains(&retry_after),
        "Retry-After {retry_after}: one attempt per 3600/3 s"
    );
    limited.expect_error(429, "rate_limited");

    // Per address: other accounts from the same address run out too (7 attempts in all).
    for name in ["gus", "hal", "ivy"] {
        attempt(name, "wrong password")
            .await
            .expect_error(401, "bad_credentials");
    }
    attempt("jon", "wrong password")
        .await
        .expect_error(429, "rate_limited");
}
