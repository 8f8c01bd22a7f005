//! Accounts and sessions: registration, sign-in, the own profile, password and email
//! changes, logout, idle sessions, cookie sessions with CSRF, the sign-in rate limit.

use chatapp_client::ClientError;
use chatapp_protocol::{
    AuthResponse, Conversation, CreateConversationRequest, LoginRequest, RegisterRequest,
    UpdateMeRequest,
};
use reqwest::Method;
use serde_json::json;

use crate::browser;
use crate::support::{Backend, Raw, Refused, Resp, TestServer};

crate::on_both_backends!(
    accounts_register_login_and_profile,
    password_change_needs_old_password_and_ends_other_sessions,
    logout_revokes_the_token,
    sessions_end_after_30_days_unused,
    cookie_requests_need_same_origin_and_csrf_token,
    sign_in_is_rate_limited,
    password_checks_of_the_profile_are_rate_limited_with_sign_in,
);

fn registration(username: &str, email: &str, password: &str) -> RegisterRequest {
    RegisterRequest {
        username: username.into(),
        email: email.into(),
        password: password.into(),
        display_name: None,
        invite: None,
    }
}

/// Status, code and message of a refusal.
#[track_caller]
fn refusal<T: std::fmt::Debug>(result: &Result<T, ClientError>) -> (u16, &str, &str) {
    match result {
        Err(ClientError::Api {
            status,
            code,
            message,
            ..
        }) => (status.as_u16(), code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn accounts_register_login_and_profile(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);

    let auth = server
        .api()
        .register(&RegisterRequest {
            display_name: Some("  Ann Lee ".into()),
            ..registration("Ann.Lee", "Ann@Example.org", "correct horse")
        })
        .await
        .expect("registered");
    assert_eq!(auth.user.username, "Ann.Lee");
    assert_eq!(auth.user.display_name, "Ann Lee");
    assert!(auth.token.len() >= 32);
    // (`csrf_token` is a string: the type says so.)

    // Duplicates ignore case, for usernames and emails.
    server
        .api()
        .register(&registration(
            "ann.lee",
            "other@example.org",
            "correct horse",
        ))
        .await
        .refused(409, "username_taken");
    server
        .api()
        .register(&registration("ann2", "ANN@example.ORG", "correct horse"))
        .await
        .refused(409, "email_taken");
    // Bad fields.
    for (req, code) in [
        (
            registration("bo", "bo@example.org", "correct horse"),
            "invalid_username",
        ),
        (
            registration("bo b", "bo@example.org", "correct horse"),
            "invalid_username",
        ),
        (
            registration("bob", "not-an-email", "correct horse"),
            "invalid_email",
        ),
        (
            registration("bob", "bob@example.org", "short"),
            "weak_password",
        ),
    ] {
        server.api().register(&req).await.refused(400, code);
    }
    // Nothing of the refused attempts was stored: "bob" is still free.
    server
        .api()
        .register(&registration("bob", "bob@example.org", "correct horse"))
        .await
        .expect("bob is still free");

    // Login by email (any case) and by username (any case).
    let ann = server.api();
    let by_email = ann
        .login("ann@EXAMPLE.org", "correct horse")
        .await
        .expect("login by email");
    assert_eq!(by_email.user.username, "Ann.Lee");
    let by_name = server
        .api()
        .login("ANN.LEE", "correct horse")
        .await
        .expect("login by username");
    assert_ne!(
        by_name.token, by_email.token,
        "each login is its own session"
    );

    // Wrong password and unknown account look the same.
    let wrong = server.api().login("ann.lee", "wrong horse").await;
    let unknown = server.api().login("nobody", "wrong horse").await;
    assert_eq!(refusal(&wrong), refusal(&unknown));
    wrong.refused(401, "bad_credentials");

    // /api/me with the token; PATCH display name.
    let me = ann.me().await.expect("me");
    assert_eq!(me.email, "Ann@Example.org");
    // (`online` and `last_seen` are present: `Me` does not decode without them.)
    let me = ann
        .update_me(&UpdateMeRequest {
            display_name: Some("Annie".into()),
            ..UpdateMeRequest::default()
        })
        .await
        .expect("renamed");
    assert_eq!(me.display_name, "Annie");
    ann.update_me(&UpdateMeRequest {
        display_name: Some("   ".into()),
        ..UpdateMeRequest::default()
    })
    .await
    .refused(400, "invalid_display_name");
    // An unknown field and a request without a session: no client sends them.
    raw.as_user(&ann)
        .patch("/api/me", json!({"nickname": "x"}))
        .await
        .expect_error(400, "invalid_body");
    raw.get("/api/me").await.expect_error(401, "unauthorized");
    server
        .api()
        .with_token("not-a-token")
        .me()
        .await
        .refused(401, "unauthorized");
}

async fn password_change_needs_old_password_and_ends_other_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (first, _) = server.register_api("carol").await;
    let second = server.api();
    second
        .login("carol", "password-carol")
        .await
        .expect("a second session");
    let change = |new_password: &str, current_password: Option<&str>| UpdateMeRequest {
        new_password: Some(new_password.into()),
        current_password: current_password.map(Into::into),
        ..UpdateMeRequest::default()
    };

    first
        .update_me(&change("a new secret", None))
        .await
        .refused(403, "forbidden");
    first
        .update_me(&change("a new secret", Some("wrong")))
        .await
        .refused(403, "forbidden");
    first
        .update_me(&change("short", Some("password-carol")))
        .await
        .refused(400, "weak_password");
    // Nothing changed so far: the other session still works.
    second.me().await.expect("the other session");

    first
        .update_me(&change("a new secret", Some("password-carol")))
        .await
        .expect("password changed");
    first.me().await.expect("this session stays");
    second.me().await.refused(401, "unauthorized");
    server
        .api()
        .login("carol", "password-carol")
        .await
        .refused(401, "bad_credentials");
    server
        .api()
        .login("carol", "a new secret")
        .await
        .expect("the new password");

    // Email change also needs the password, and stays unique.
    server.register_api("dave").await;
    let email = |email: &str| UpdateMeRequest {
        email: Some(email.into()),
        current_password: Some("a new secret".into()),
        ..UpdateMeRequest::default()
    };
    first
        .update_me(&email("DAVE@example.org"))
        .await
        .refused(409, "email_taken");
    let me = first
        .update_me(&email("carol@new.example.org"))
        .await
        .expect("email changed");
    assert_eq!(me.email, "carol@new.example.org");
}

async fn logout_revokes_the_token(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (erin, _) = server.register("erin").await;
    erin.me().await.expect("signed in");
    let logout = |raw: Raw| async move {
        raw.send(
            Method::POST,
            "/api/auth/logout",
            None,
            axum::body::Body::empty(),
        )
        .await
    };
    // The status and a header the client does not show: this logout goes raw.
    let resp = logout(raw.as_user(&erin)).await;
    // The browser drops what it cached for this session (voice messages, avatars).
    assert_eq!(resp.headers["clear-site-data"], "\"cache\"");
    resp.expect(204);
    erin.me().await.refused(401, "unauthorized");
    // (The client's `logout` takes a 401 as done; the server's answer is checked raw.)
    logout(raw.as_user(&erin))
        .await
        .expect_error(401, "unauthorized");
}

async fn sessions_end_after_30_days_unused(backend: Backend) {
    const HOUR_MS: i64 = 60 * 60 * 1000;
    let server = TestServer::start(backend).await;
    let (ann, ann_id) = server.register_api("ann").await;
    let mut db = server.db().await;
    let created = last_used(&mut db, ann_id).await.expect("session row");

    // Used two hours ago: still valid, and this use is written down.
    sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE user_id = $2")
        .bind(created - 2 * HOUR_MS)
        .bind(ann_id)
        .execute(&mut db)
        .await
        .expect("update");
    ann.me().await.expect("still valid");
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
    ann.me().await.refused(401, "unauthorized");
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

/// `POST /api/conversations` as a browser signed in by cookie.
async fn create_by_cookie(
    server: &chatapp_testkit::LocalServer,
    cookie: &str,
    origin: Option<&str>,
    csrf: Option<&str>,
) -> Resp {
    let mut headers = vec![("cookie", cookie)];
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    if let Some(csrf) = csrf {
        headers.push(("x-csrf-token", csrf));
    }
    let group = CreateConversationRequest::Group {
        title: "via cookie".into(),
        member_ids: Vec::new(),
    };
    browser(
        server,
        Method::POST,
        "/api/conversations",
        &headers,
        Some(serde_json::to_string(&group).expect("json")),
    )
    .await
}

// Cookies, `Origin` and `X-CSRF-Token` are a browser's: these requests go into the router.
async fn cookie_requests_need_same_origin_and_csrf_token(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    server.register("ben").await;
    let credentials = serde_json::to_string(&LoginRequest {
        login: "ben".into(),
        password: "password-ben".into(),
    })
    .expect("json");
    let login = browser(
        &server,
        Method::POST,
        "/api/auth/login",
        &[("origin", &server.base)],
        Some(credentials.clone()),
    )
    .await;
    assert_eq!(login.status, 200);
    let cookies: Vec<String> = login
        .headers
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
    let auth: AuthResponse = serde_json::from_slice(&login.bytes).expect("AuthResponse");
    let csrf = auth.csrf_token;
    let cookie = cookies
        .iter()
        .map(|c| c.split(';').next().expect("pair").to_owned())
        .collect::<Vec<_>>()
        .join("; ");

    let base = server.base.as_str();
    create_by_cookie(&server, &cookie, Some(base), None)
        .await
        .expect_error(403, "forbidden");
    create_by_cookie(&server, &cookie, Some(base), Some("forged"))
        .await
        .expect_error(403, "forbidden");
    create_by_cookie(&server, &cookie, Some("http://evil.example"), Some(&csrf))
        .await
        .expect_error(403, "forbidden");
    create_by_cookie(&server, &cookie, None, Some(&csrf))
        .await
        .expect_error(403, "forbidden");
    // Reads need neither; nothing was created by the refused writes.
    let list = browser(
        &server,
        Method::GET,
        "/api/conversations",
        &[("cookie", &cookie)],
        None,
    )
    .await
    .expect(200);
    assert!(crate::typed::<Vec<Conversation>>(list).is_empty());
    create_by_cookie(&server, &cookie, Some(base), Some(&csrf))
        .await
        .expect(201);

    // A cross-site login attempt is refused outright.
    let cross_site = browser(
        &server,
        Method::POST,
        "/api/auth/login",
        &[("origin", "http://evil.example")],
        Some(credentials),
    )
    .await;
    assert_eq!(cross_site.status, 403);
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
    server.register_api("fay").await;
    let anon = server.api();

    // Per account: the 4th attempt within the minute is refused, whatever the password.
    for _ in 0..2 {
        anon.login("fay", "wrong password")
            .await
            .refused(401, "bad_credentials");
    }
    // (registration counted as the first attempt for "fay")
    let limited = anon.login("FAY", "password-fay").await;
    let retry_after = match &limited {
        Err(ClientError::Api { retry_after, .. }) => {
            retry_after.expect("a Retry-After in seconds").as_secs()
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        (1..=1200).contains(&retry_after),
        "Retry-After {retry_after}: one attempt per 3600/3 s"
    );
    limited.refused(429, "rate_limited");

    // Per address: other accounts from the same address run out too (7 attempts in all).
    for name in ["gus", "hal", "ivy"] {
        anon.login(name, "wrong password")
            .await
            .refused(401, "bad_credentials");
    }
    anon.login("jon", "wrong password")
        .await
        .refused(429, "rate_limited");
}

async fn password_checks_of_the_profile_are_rate_limited_with_sign_in(backend: Backend) {
    // A one-hour window so the test does not depend on how fast the machine is.
    let server = TestServer::start_with(
        backend,
        &[
            "--auth-rate-per-account",
            "3",
            "--auth-rate-per-address",
            "100",
            "--auth-rate-window-secs",
            "3600",
        ],
    )
    .await;
    let (kim, _) = server.register_api("kim").await; // the first attempt for "kim"
    let guess = |password: &str| UpdateMeRequest {
        email: Some("kim@elsewhere.example".into()),
        current_password: Some(password.into()),
        ..UpdateMeRequest::default()
    };
    for wrong in ["guess one", "guess two"] {
        kim.update_me(&guess(wrong)).await.refused(403, "forbidden");
    }
    // The fourth attempt, even with the right password, is refused and changes nothing.
    kim.update_me(&guess("password-kim"))
        .await
        .refused(429, "rate_limited");
    assert_eq!(kim.me().await.expect("me").email, "kim@example.org");
    // One allowance with sign-in: the guesses used it up there too.
    server
        .api()
        .login("kim", "password-kim")
        .await
        .refused(429, "rate_limited");
    // A change that needs no password is not counted.
    kim.update_me(&UpdateMeRequest {
        display_name: Some("Kim".into()),
        ..UpdateMeRequest::default()
    })
    .await
    .expect("display name changed");
}
