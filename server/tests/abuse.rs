//! One account must not be able to degrade the server for everyone, and an ended session
//! must not keep a way in: connection caps per user and per address, one send allowance
//! per user over REST and all of the user's sockets, one frame allowance per user,
//! sockets of signed-out or revoked sessions closed at once, and close codes that say
//! what was wrong.

mod support;

use serde_json::json;
use support::{Backend, ClientEvent, TestServer, Ws, refused_status};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    },
};

on_both_backends!(
    websockets_are_capped_per_user_and_per_address,
    sends_share_one_allowance_per_user_over_rest_and_sockets,
    frames_share_one_allowance_per_user,
    signing_out_closes_that_sessions_sockets_at_once,
    a_password_change_closes_the_other_sessions_sockets,
    oversized_and_non_utf8_frames_close_with_their_codes,
);

async fn websockets_are_capped_per_user_and_per_address(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &["--ws-max-per-user", "3", "--ws-max-per-address", "5"],
    )
    .await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let (ben, _) = anon.register("ben").await;
    let (cid, _) = anon.register("cid").await;
    let token = |c: &support::Client| c.token.clone().expect("token");
    let bearer = |c: &support::Client| format!("Bearer {}", token(c));

    let mut anns = Vec::new();
    for _ in 0..3 {
        anns.push(Ws::connect(&server.base, &token(&ann)).await);
    }
    let fourth = Ws::connect_with(&server.base, &[("authorization", &bearer(&ann))]).await;
    assert_eq!(refused_status(fourth), 429, "a fourth socket of one user");
    // Others are not affected by ann's cap…
    let ben1 = Ws::connect(&server.base, &token(&ben)).await;
    let ben2 = Ws::connect(&server.base, &token(&ben)).await;
    // …until the address is full: 5 sockets from 127.0.0.1.
    let cid1 = Ws::connect_with(&server.base, &[("authorization", &bearer(&cid))]).await;
    assert_eq!(refused_status(cid1), 429, "a sixth socket from one address");
    // The refusal has the error shape.
    let resp = ann
        .request(reqwest::Method::GET, "/api/ws")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 429);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_connections");

    // Closing frees the slots.
    anns.pop().expect("socket").close().await;
    ben1.close().await;
    let mut cid_ws = None;
    for _ in 0..100 {
        // The server notices a close a moment after the client sends it.
        match Ws::connect_with(&server.base, &[("authorization", &bearer(&cid))]).await {
            Ok(ws) => {
                cid_ws = Some(ws);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    assert!(cid_ws.is_some(), "a closed socket frees its slot");
    drop(ben2);
}

async fn sends_share_one_allowance_per_user_over_rest_and_sockets(backend: Backend) {
    // One message per hour after a burst of 6: nothing refills during the test.
    let server = TestServer::start_with(
        backend,
        &[
            "--send-rate-per-user",
            "1",
            "--send-burst-per-user",
            "6",
            "--ws-frames-per-second",
            "1000",
            "--ws-frames-burst",
            "1000",
        ],
    )
    .await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let (ben, ben_id) = anon.register("ben").await;
    let conv = ann.direct_with(ben_id).await;
    let token = ann.token.clone().expect("token");
    let (mut ws1, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    let (mut ws2, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    let path = format!("/api/conversations/{conv}/messages");

    // 2 over REST, 2 on each socket: the burst of 6 is used up.
    for i in 0..2 {
        ann.post(
            &path,
            json!({"body": format!("rest {i}"), "client_id": format!("r{i}")}),
        )
        .await
        .expect(201);
    }
    for (n, ws) in [&mut ws1, &mut ws2].into_iter().enumerate() {
        for i in 0..2 {
            ws.send(&ClientEvent::Send {
                conversation_id: conv,
                client_id: format!("w{n}-{i}"),
                body: format!("socket {n} message {i}"),
            })
            .await;
            assert_eq!(ws.next_of("ack").await["client_id"], format!("w{n}-{i}"));
        }
    }
    // Over the allowance: each way in is refused, with the wait where HTTP can say it.
    let refused = ann
        .post(
            &path,
            json!({"body": "one too many", "client_id": "r-extra"}),
        )
        .await;
    assert!(refused.headers.get("retry-after").is_some(), "Retry-After");
    refused.expect_error(429, "rate_limited");
    for (n, ws) in [&mut ws1, &mut ws2].into_iter().enumerate() {
        ws.send(&ClientEvent::Send {
            conversation_id: conv,
            client_id: format!("w{n}-extra"),
            body: "one too many".into(),
        })
        .await;
        let err = ws.next_of("error").await;
        assert_eq!(err["code"], "rate_limited");
        assert_eq!(err["client_id"], format!("w{n}-extra"));
    }
    // Nothing refused was stored; ben is not limited by ann's use.
    let history = ann.whole_history(conv).await;
    assert_eq!(history.len(), 6);
    assert!(history.iter().all(|m| m["body"] != "one too many"));
    ben.post(&path, json!({"body": "hi", "client_id": "b1"}))
        .await
        .expect(201);
}

async fn frames_share_one_allowance_per_user(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &["--ws-frames-per-second", "1", "--ws-frames-burst", "4"],
    )
    .await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let (ben, _) = anon.register("ben").await;
    let token = ann.token.clone().expect("token");
    let mut ws1 = Ws::connect(&server.base, &token).await;
    let mut ws2 = Ws::connect(&server.base, &token).await;
    // 4 pings over two sockets use up the burst; the fifth frame, on either, is refused.
    for ws in [&mut ws1, &mut ws2] {
        for _ in 0..2 {
            ws.send(&ClientEvent::Ping).await;
            assert_eq!(ws.next_json().await["type"], "pong");
        }
    }
    ws1.send(&ClientEvent::Ping).await;
    assert_eq!(ws1.next_json().await["code"], "rate_limited");
    // Another user has an allowance of their own.
    let mut other = Ws::connect(&server.base, &ben.token.clone().expect("token")).await;
    other.send(&ClientEvent::Ping).await;
    assert_eq!(other.next_json().await["type"], "pong");
}

/// ann signed in twice (each session with a live socket), and ben in a direct
/// conversation with her.
struct TwoSessions {
    server: TestServer,
    ann: support::Client,
    ann_elsewhere: support::Client,
    ben: support::Client,
    conv: i64,
    ws: Ws,
    ws_elsewhere: Ws,
}

async fn two_sessions(backend: Backend) -> TwoSessions {
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let (ben, ben_id) = anon.register("ben").await;
    let conv = ann.direct_with(ben_id).await;
    let login = anon
        .post(
            "/api/auth/login",
            json!({"login": "ann", "password": "password-ann"}),
        )
        .await
        .expect(200);
    let ann_elsewhere = anon.with_token(login["token"].as_str().expect("token"));
    let token = |c: &support::Client| c.token.clone().expect("token");
    let (ws, _) = Ws::connect_and_resume(&server.base, &token(&ann), &[]).await;
    let (ws_elsewhere, _) = Ws::connect_and_resume(&server.base, &token(&ann_elsewhere), &[]).await;
    TwoSessions {
        server,
        ann,
        ann_elsewhere,
        ben,
        conv,
        ws,
        ws_elsewhere,
    }
}

impl TwoSessions {
    /// ben sends `body`; the socket `which` picks must receive it.
    async fn reaches(&mut self, which: fn(&mut Self) -> &mut Ws, body: &str) {
        self.ben
            .post(
                &format!("/api/conversations/{}/messages", self.conv),
                json!({"body": body}),
            )
            .await
            .expect(201);
        assert_eq!(
            which(self).next_of("message").await["message"]["body"],
            body
        );
    }
}

async fn signing_out_closes_that_sessions_sockets_at_once(backend: Backend) {
    let mut s = two_sessions(backend).await;
    s.ann.post("/api/auth/logout", json!({})).await.expect(204);
    assert_eq!(s.ws.close_code().await, Some(4001), "session ended");
    // The other session's socket is untouched and still receives.
    s.reaches(|s| &mut s.ws_elsewhere, "still there?").await;
    // The ended session cannot come back.
    let again = Ws::connect_with(
        &s.server.base,
        &[(
            "authorization",
            &format!("Bearer {}", s.ann.token.clone().expect("token")),
        )],
    )
    .await;
    assert_eq!(refused_status(again), 401);
}

async fn a_password_change_closes_the_other_sessions_sockets(backend: Backend) {
    let mut s = two_sessions(backend).await;
    s.ann
        .patch(
            "/api/me",
            json!({"new_password": "a-brand-new-password", "current_password": "password-ann"}),
        )
        .await
        .expect(200);
    assert_eq!(s.ws_elsewhere.close_code().await, Some(4001));
    // The session that changed the password keeps its socket.
    s.reaches(|s| &mut s.ws, "hello").await;
    // The other one's token is gone too.
    s.ann_elsewhere
        .get("/api/me")
        .await
        .expect_error(401, "unauthorized");
}

async fn oversized_and_non_utf8_frames_close_with_their_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.client().register("ann").await;
    let token = ann.token.clone().expect("token");

    let (mut ws, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    ws.send_raw(Message::text("x".repeat(65 * 1024))).await;
    assert_eq!(ws.close_code().await, Some(1009), "message too big");

    let (mut ws, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    ws.send_raw(Message::Frame(bad)).await;
    assert_eq!(ws.close_code().await, Some(1007), "invalid UTF-8");
}
