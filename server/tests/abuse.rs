//! One account must not be able to degrade the server for everyone, and an ended session
//! must not keep a way in: connection caps per user and per address, one send allowance
//! per user over REST and all of the user's sockets, one frame allowance per user,
//! sockets of signed-out or revoked sessions closed at once, and close codes that say
//! what was wrong.

mod support;

use chatapp_client::{Api, ClientError};
use chatapp_protocol::{Message as Stored, UpdateMeRequest};
use reqwest::Method;
use support::{Backend, ClientEvent, Refused, TestServer, Ws, refused_status};
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
    let (ann, _) = server.register_api("ann").await;
    let (ben, _) = server.register_api("ben").await;
    let (cid, _) = server.register_api("cid").await;
    let token = |c: &Api| c.token().expect("token");
    let bearer = |c: &Api| format!("Bearer {}", token(c));

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
    match Ws::connect_with(&server.base, &[("authorization", &bearer(&ann))]).await {
        Err(ClientError::Api {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (status.as_u16(), code.as_str()),
                (429, "too_many_connections"),
                "{message}"
            );
            assert!(!message.is_empty(), "an error without a message");
        }
        Err(other) => panic!("expected a 429 too_many_connections refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a socket"),
    }

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
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let conv = ann.direct_conversation(ben_id).await.expect("direct").id;
    let token = ann.token().expect("token");
    let (mut ws1, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    let (mut ws2, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;

    // 2 over REST, 2 on each socket: the burst of 6 is used up.
    for i in 0..2 {
        ann.send_message(conv, &format!("rest {i}"), Some(&format!("r{i}")))
            .await
            .expect("sent");
    }
    for (n, ws) in [&mut ws1, &mut ws2].into_iter().enumerate() {
        for i in 0..2 {
            ws.send(&ClientEvent::Send {
                conversation_id: conv,
                client_id: format!("w{n}-{i}"),
                body: format!("socket {n} message {i}"),
                reply_to_id: None,
            })
            .await;
            assert_eq!(ws.next_of("ack").await["client_id"], format!("w{n}-{i}"));
        }
    }
    // Over the allowance: each way in is refused, with the wait where HTTP can say it.
    let refused = ann
        .send_message(conv, "one too many", Some("r-extra"))
        .await;
    assert!(
        matches!(
            &refused,
            Err(ClientError::Api {
                retry_after: Some(_),
                ..
            })
        ),
        "Retry-After: {refused:?}"
    );
    refused.refused(429, "rate_limited");
    for (n, ws) in [&mut ws1, &mut ws2].into_iter().enumerate() {
        ws.send(&ClientEvent::Send {
            conversation_id: conv,
            client_id: format!("w{n}-extra"),
            body: "one too many".into(),
            reply_to_id: None,
        })
        .await;
        let err = ws.next_of("error").await;
        assert_eq!(err["code"], "rate_limited");
        assert_eq!(err["client_id"], format!("w{n}-extra"));
    }
    // Nothing refused was stored; ben is not limited by ann's use.
    let history = whole_history(&ann, conv).await;
    assert_eq!(history.len(), 6);
    assert!(history.iter().all(|m| m.body != "one too many"));
    ben.send_message(conv, "hi", Some("b1"))
        .await
        .expect("sent");
}

/// Every message of a conversation, read page by page (newest page first).
async fn whole_history(api: &Api, conversation: i64) -> Vec<Stored> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = api
            .history(conversation, before, Some(100))
            .await
            .expect("history");
        before = page.messages.first().map(|m| m.seq);
        all.extend(page.messages);
        if !page.has_more {
            return all;
        }
    }
}

async fn frames_share_one_allowance_per_user(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        &["--ws-frames-per-second", "1", "--ws-frames-burst", "4"],
    )
    .await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, _) = server.register_api("ben").await;
    let token = ann.token().expect("token");
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
    let mut other = Ws::connect(&server.base, &ben.token().expect("token")).await;
    other.send(&ClientEvent::Ping).await;
    assert_eq!(other.next_json().await["type"], "pong");
}

/// ann signed in twice (each session with a live socket), and ben in a direct
/// conversation with her.
struct TwoSessions {
    server: TestServer,
    ann: Api,
    ann_elsewhere: Api,
    ben: Api,
    conv: i64,
    ws: Ws,
    ws_elsewhere: Ws,
}

async fn two_sessions(backend: Backend) -> TwoSessions {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let conv = ann.direct_conversation(ben_id).await.expect("direct").id;
    let ann_elsewhere = server.api();
    ann_elsewhere
        .login("ann", "password-ann")
        .await
        .expect("signed in");
    let token = |c: &Api| c.token().expect("token");
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
            .send_message(self.conv, body, None)
            .await
            .expect("sent");
        assert_eq!(
            which(self).next_of("message").await["message"]["body"],
            body
        );
    }
}

async fn signing_out_closes_that_sessions_sockets_at_once(backend: Backend) {
    let mut s = two_sessions(backend).await;
    let token = s.ann.token().expect("token");
    // `Api::logout` also takes a 401 as signed out; the exact 204 through `Api::request`.
    let logout = s
        .ann
        .request(Method::POST, "/api/auth/logout")
        .send()
        .await
        .expect("answered");
    assert_eq!(logout.status().as_u16(), 204);
    assert_eq!(s.ws.close_code().await, Some(4001), "session ended");
    // The other session's socket is untouched and still receives.
    s.reaches(|s| &mut s.ws_elsewhere, "still there?").await;
    // The ended session cannot come back.
    let again = Ws::connect_with(
        &s.server.base,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(refused_status(again), 401);
}

async fn a_password_change_closes_the_other_sessions_sockets(backend: Backend) {
    let mut s = two_sessions(backend).await;
    s.ann
        .update_me(&UpdateMeRequest {
            new_password: Some("a-brand-new-password".into()),
            current_password: Some("password-ann".into()),
            ..UpdateMeRequest::default()
        })
        .await
        .expect("password changed");
    assert_eq!(s.ws_elsewhere.close_code().await, Some(4001));
    // The session that changed the password keeps its socket.
    s.reaches(|s| &mut s.ws, "hello").await;
    // The other one's token is gone too.
    s.ann_elsewhere.me().await.refused(401, "unauthorized");
}

async fn oversized_and_non_utf8_frames_close_with_their_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let token = ann.token().expect("token");

    let (mut ws, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    ws.send_raw(Message::text("x".repeat(65 * 1024))).await;
    assert_eq!(ws.close_code().await, Some(1009), "message too big");

    let (mut ws, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    ws.send_raw(Message::Frame(bad)).await;
    assert_eq!(ws.close_code().await, Some(1007), "invalid UTF-8");
}
