//! Real-time delivery over real WebSockets against the real server process, on SQLite
//! and on PostgreSQL.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use chatapp_client::Api;
use chatapp_protocol::{Message as Stored, ServerEvent, UpdateMeRequest};
use serde_json::{Value, json};
use support::{Backend, ClientEvent, TestServer, Ws, refused_status};
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    delivery_reaches_every_member_connection_and_no_one_else,
    ack_comes_after_commit_and_retries_do_not_duplicate,
    presence_goes_online_and_offline_with_last_seen,
    typing_and_read_reach_the_other_members,
    resume_delivers_missed_messages_in_order_once,
    malformed_frames_get_an_error_and_the_connection_stays_usable,
    cookie_sessions_from_a_foreign_origin_are_refused,
    membership_and_profile_changes_are_pushed,
    a_silent_client_is_dropped_and_goes_offline,
    a_slow_client_is_disconnected_and_resumes_without_loss,
);

struct Fixture {
    server: TestServer,
    tokens: Vec<String>,
    ids: Vec<i64>,
    clients: Vec<Api>,
}

/// A server with users `names`, each signed in.
async fn fixture(backend: Backend, names: &[&str], extra: &[&str]) -> Fixture {
    let server = TestServer::start_with(backend, extra).await;
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    let mut clients = Vec::new();
    for name in names {
        let (client, id) = server.register_api(name).await;
        tokens.push(client.token().expect("token"));
        ids.push(id);
        clients.push(client);
    }
    Fixture {
        server,
        tokens,
        ids,
        clients,
    }
}

/// The `message` of an event, as the protocol's message.
#[track_caller]
fn stored(event: &Value) -> Stored {
    serde_json::from_value(event["message"].clone())
        .unwrap_or_else(|e| panic!("a message in {event}: {e}"))
}

/// Creates a group "g" owned by `owner` with `members`; its id.
async fn group_with(owner: &Api, members: &[i64]) -> i64 {
    owner.create_group("g", members).await.expect("group").id
}

fn send(conversation_id: i64, client_id: &str, body: &str) -> ClientEvent {
    ClientEvent::Send {
        conversation_id,
        client_id: client_id.to_owned(),
        body: body.to_owned(),
        reply_to_id: None,
    }
}

async fn delivery_reaches_every_member_connection_and_no_one_else(backend: Backend) {
    let f = fixture(backend, &["ann", "ben", "cid", "eve"], &[]).await;
    let conv = group_with(&f.clients[0], &[f.ids[1], f.ids[2]]).await;
    let base = &f.server.base;
    let (mut ann1, _) = Ws::connect_and_resume(base, &f.tokens[0], &[]).await;
    let (mut ann2, _) = Ws::connect_and_resume(base, &f.tokens[0], &[]).await;
    let (mut ben, _) = Ws::connect_and_resume(base, &f.tokens[1], &[]).await;
    let (mut cid, _) = Ws::connect_and_resume(base, &f.tokens[2], &[]).await;
    let (mut eve, _) = Ws::connect_and_resume(base, &f.tokens[3], &[]).await;

    ann1.send(&send(conv, "c1", "hello all")).await;
    let ack = ann1.next_of("ack").await;
    assert_eq!(ack["client_id"], "c1");
    let message = &ack["message"];
    assert_eq!(message["seq"], 1);
    for ws in [&mut ann2, &mut ben, &mut cid] {
        let ev = ws.next_of("message").await;
        assert_eq!(
            &ev["message"], message,
            "every member connection gets the same message"
        );
    }
    // The sending connection got the ack, not a second copy; the outsider got nothing.
    ann1.expect_quiet().await;
    eve.expect_quiet().await;
    for ws in [&mut ann2, &mut ben, &mut cid] {
        ws.expect_quiet().await;
    }

    // A REST send reaches every connection, the sender's too.
    let sent = f.clients[1]
        .send_message(conv, "via rest", None)
        .await
        .expect("sent");
    for ws in [&mut ann1, &mut ann2, &mut ben, &mut cid] {
        let ev = ws.next_of("message").await;
        assert_eq!(stored(&ev), sent);
    }
    eve.expect_quiet().await;

    // Not a member: refused with an error carrying the client_id, nothing stored.
    eve.send(&send(conv, "e1", "let me in")).await;
    let err = eve.next_of("error").await;
    assert_eq!(err["code"], "not_found");
    assert_eq!(err["client_id"], "e1");
    for ws in [&mut ann1, &mut ben] {
        ws.expect_quiet().await;
    }
}

async fn ack_comes_after_commit_and_retries_do_not_duplicate(backend: Backend) {
    let f = fixture(backend, &["ann", "ben"], &[]).await;
    let conv = group_with(&f.clients[0], &[f.ids[1]]).await;
    let (mut ann, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[0], &[]).await;
    let (mut ben, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[1], &[]).await;
    for i in 0..20 {
        ann.send(&send(conv, &format!("k{i}"), &format!("m{i}")))
            .await;
        let ack = ann.next_of("ack").await;
        // Acknowledged means committed: another client reads it at once.
        let seq = ack["message"]["seq"].as_i64().expect("seq");
        let page = f.clients[1]
            .history(conv, Some(seq + 1), Some(1))
            .await
            .expect("history");
        assert_eq!(page.messages.first(), Some(&stored(&ack)));
    }
    // Retrying an acknowledged send returns the same message and delivers nothing new.
    ann.send(&send(conv, "k3", "m3")).await;
    let ack = ann.next_of("ack").await;
    assert_eq!(ack["message"]["seq"], 4);
    for _ in 0..20 {
        ben.next_of("message").await;
    }
    ben.expect_quiet().await;
    let conv_now = f.clients[0].conversation(conv).await.expect("conversation");
    assert_eq!(conv_now.last_seq, 20);
    // Invalid sends are refused with the REST codes.
    ann.send(&send(conv, "bad", "   ")).await;
    let err = ann.next_of("error").await;
    assert_eq!(err["code"], "empty_body");
    assert_eq!(err["client_id"], "bad");
}

async fn presence_goes_online_and_offline_with_last_seen(backend: Backend) {
    let f = fixture(backend, &["ann", "ben", "stranger"], &[]).await;
    let ben_client = &f.clients[1];
    f.clients[0]
        .direct_conversation(f.ids[1])
        .await
        .expect("direct");
    let (mut ben, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[1], &[]).await;
    let (mut stranger, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[2], &[]).await;
    let ann_profile = || async { ben_client.user(f.ids[0]).await.expect("ann") };
    assert!(!ann_profile().await.online);

    let (mut ann1, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[0], &[]).await;
    let online = ben.next_of("presence").await;
    assert_eq!(online["user_id"], f.ids[0]);
    assert_eq!(online["online"], true);
    assert!(ann_profile().await.online);
    let list = ben_client.conversations().await.expect("conversations");
    let ann_member = list[0].members.iter().find(|m| m.id == f.ids[0]);
    assert!(ann_member.expect("ann in members").online);

    // A second connection is not news; closing one of two is not offline.
    let (ann2, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[0], &[]).await;
    ann2.close().await;
    ben.expect_quiet().await;
    assert!(ann_profile().await.online);

    ann1.expect_quiet().await;
    ann1.close().await;
    let offline = ben.next_of("presence").await;
    assert_eq!(offline["online"], false);
    assert!(
        offline["last_seen"].is_string(),
        "offline carries last_seen: {offline}"
    );
    let Ok(ServerEvent::Presence { last_seen, .. }) = serde_json::from_value(offline.clone())
    else {
        panic!("a presence event: {offline}");
    };
    let profile = ann_profile().await;
    assert!(!profile.online);
    assert_eq!(profile.last_seen, last_seen);
    assert!(last_seen.is_some());
    // Someone who shares no conversation with ann hears nothing of it.
    stranger.expect_quiet().await;
}

async fn typing_and_read_reach_the_other_members(backend: Backend) {
    let f = fixture(backend, &["ann", "ben", "eve"], &[]).await;
    let conv = group_with(&f.clients[0], &[f.ids[1]]).await;
    let (mut ann, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[0], &[]).await;
    let (mut ann_other, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[0], &[]).await;
    let (mut ben, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[1], &[]).await;
    let (mut eve, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[2], &[]).await;

    ann.send(&ClientEvent::Typing {
        conversation_id: conv,
    })
    .await;
    let typing = ben.next_of("typing").await;
    assert_eq!(
        typing,
        json!({"type": "typing", "conversation_id": conv, "user_id": f.ids[0]})
    );
    // Throttled: a second typing right away is not relayed; never to the typist's tabs.
    ann.send(&ClientEvent::Typing {
        conversation_id: conv,
    })
    .await;
    // (presence of each other's connections may come first)
    ann.expect_quiet_but(&["presence"]).await;
    ben.expect_quiet_but(&["presence"]).await;
    ann_other.expect_quiet_but(&["presence"]).await;
    // Members only.
    eve.send(&ClientEvent::Typing {
        conversation_id: conv,
    })
    .await;
    assert_eq!(eve.next_of("error").await["code"], "not_found");
    ben.expect_quiet().await;

    for i in 0..3 {
        ann.send(&send(conv, &format!("t{i}"), "x")).await;
        ann.next_of("ack").await;
    }
    ben.send(&ClientEvent::Read {
        conversation_id: conv,
        seq: 2,
    })
    .await;
    let read = ann.next_of("read").await;
    assert_eq!(
        read,
        json!({"type": "read", "conversation_id": conv, "user_id": f.ids[1], "seq": 2})
    );
    let list = f.clients[1].conversations().await.expect("conversations");
    assert_eq!(list[0].unread_count, 1);
    ben.send(&ClientEvent::Read {
        conversation_id: conv,
        seq: 99,
    })
    .await;
    assert_eq!(ben.next_of("error").await["code"], "invalid_seq");
    eve.send(&ClientEvent::Read {
        conversation_id: conv,
        seq: 1,
    })
    .await;
    assert_eq!(eve.next_of("error").await["code"], "not_found");
}

async fn resume_delivers_missed_messages_in_order_once(backend: Backend) {
    let f = fixture(backend, &["ann", "ben"], &[]).await;
    let conv = group_with(&f.clients[0], &[f.ids[1]]).await;
    let other = group_with(&f.clients[0], &[f.ids[1]]).await;
    let lonely = group_with(&f.clients[0], &[]).await;
    let post = |c: i64, body: String| {
        let client = f.clients[0].clone();
        async move { client.send_message(c, &body, None).await.expect("sent") }
    };
    for i in 1..=3 {
        post(conv, format!("a{i}")).await;
    }
    let (ben, replay) = Ws::connect_and_resume(&f.server.base, &f.tokens[1], &[(conv, 0)]).await;
    let seqs: Vec<i64> = replay
        .iter()
        .map(|e| e["message"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    ben.close().await;

    // Missed while away: five in one conversation, two in another.
    for i in 4..=8 {
        post(conv, format!("a{i}")).await;
    }
    for i in 1..=2 {
        post(other, format!("b{i}")).await;
    }
    let (mut ben, replay) = Ws::connect_and_resume(
        &f.server.base,
        &f.tokens[1],
        &[(conv, 3), (other, 0), (lonely, 0)],
    )
    .await;
    // `lonely` is not ben's: an error for it, the rest replayed.
    let mut got: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for ev in &replay {
        if ev["type"] == "error" {
            assert_eq!(ev["code"], "not_found");
            continue;
        }
        assert_eq!(ev["type"], "message");
        got.entry(ev["message"]["conversation_id"].as_i64().expect("id"))
            .or_default()
            .push(ev["message"]["seq"].as_i64().expect("seq"));
    }
    assert_eq!(
        got,
        BTreeMap::from([(conv, vec![4, 5, 6, 7, 8]), (other, vec![1, 2])])
    );

    // Then live, exactly once.
    let live = post(conv, "a9".into()).await;
    assert_eq!(stored(&ben.next_of("message").await), live);
    ben.expect_quiet().await;
    // A second resume on the same connection cannot rewind it.
    ben.send(&ClientEvent::Resume {
        cursors: [(conv, 0)].into_iter().collect(),
        changes: Default::default(),
    })
    .await;
    assert_eq!(ben.next_of("error").await["code"], "invalid_frame");
    ben.expect_quiet().await;
}

async fn malformed_frames_get_an_error_and_the_connection_stays_usable(backend: Backend) {
    let f = fixture(backend, &["ann", "ben"], &[]).await;
    let conv = group_with(&f.clients[0], &[f.ids[1]]).await;
    let (mut ann, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[0], &[]).await;
    for bad in [
        "{not json",
        r#"{"type":"launch"}"#,
        r#"{"type":"send","conversation_id":"x","client_id":"a","body":"b"}"#,
        r#"{"type":"resume","cursors":{"abc":1}}"#,
        "[]",
    ] {
        ann.send_raw(Message::text(bad)).await;
        let err = ann.next_json().await;
        assert_eq!(err["type"], "error", "for {bad}: {err}");
        assert_eq!(err["code"], "invalid_frame");
    }
    ann.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(ann.next_json().await["code"], "invalid_frame");
    // Still usable.
    ann.send(&send(conv, "ok", "still here")).await;
    assert_eq!(ann.next_of("ack").await["message"]["body"], "still here");
}

async fn cookie_sessions_from_a_foreign_origin_are_refused(backend: Backend) {
    let f = fixture(backend, &["ann"], &[]).await;
    let base = &f.server.base;
    let cookie = format!("chatapp_session={}", f.tokens[0]);
    let refused = Ws::connect_with(
        base,
        &[("cookie", &cookie), ("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(
        refused_status(refused),
        403,
        "a foreign origin gets no socket"
    );
    let refused = Ws::connect_with(base, &[("cookie", &cookie)]).await;
    assert_eq!(
        refused_status(refused),
        403,
        "no Origin with a cookie is refused too"
    );
    let anonymous = Ws::connect_with(base, &[("origin", base)]).await;
    assert_eq!(refused_status(anonymous), 401);
    // Same origin with the cookie, or a bearer token without any origin, are fine.
    let ws = Ws::connect_with(base, &[("cookie", &cookie), ("origin", base)])
        .await
        .expect("same origin");
    assert_eq!(ws.hello["user"]["id"], f.ids[0]);
    Ws::connect(base, &f.tokens[0]).await;
}

async fn membership_and_profile_changes_are_pushed(backend: Backend) {
    let f = fixture(backend, &["ann", "ben", "cid"], &[]).await;
    let (mut ann, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[0], &[]).await;
    let (mut ben, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[1], &[]).await;
    let (mut cid, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[2], &[]).await;
    let conv = group_with(&f.clients[0], &[f.ids[1]]).await;
    for ws in [&mut ann, &mut ben] {
        let ev = ws.next_of("conversation").await;
        assert_eq!(ev["conversation"]["id"], conv);
    }
    cid.expect_quiet().await;

    f.clients[0]
        .add_members(conv, &[f.ids[2]])
        .await
        .expect("added");
    for ws in [&mut ann, &mut ben, &mut cid] {
        let added = ws.next_of("conversation").await;
        assert_eq!(
            added["conversation"]["members"]
                .as_array()
                .expect("members")
                .len(),
            3
        );
    }
    f.clients[0]
        .rename_conversation(conv, "Renamed")
        .await
        .expect("renamed");
    assert_eq!(
        ben.next_of("conversation").await["conversation"]["title"],
        "Renamed"
    );

    f.clients[0]
        .remove_member(conv, f.ids[1])
        .await
        .expect("removed");
    let removed = ben.next_of("conversation").await;
    let members: BTreeSet<i64> = removed["conversation"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    assert!(
        !members.contains(&f.ids[1]),
        "the removed member sees they are out"
    );
    // Removed means no more messages.
    f.clients[0]
        .send_message(conv, "after", None)
        .await
        .expect("sent");
    cid.next_of("message").await;
    ben.expect_quiet().await;

    // Profile changes reach contacts and the user's own connections.
    f.clients[2]
        .update_me(&UpdateMeRequest {
            display_name: Some("Cid the Great".into()),
            ..UpdateMeRequest::default()
        })
        .await
        .expect("renamed");
    for ws in [&mut ann, &mut cid] {
        let ev = ws.next_of("user_updated").await;
        assert_eq!(ev["user"]["display_name"], "Cid the Great");
        assert!(ev["user"].get("email").is_none());
    }
    ben.expect_quiet().await;
}

async fn a_silent_client_is_dropped_and_goes_offline(backend: Backend) {
    let f = fixture(backend, &["ann", "ben"], &["--ws-ping-secs", "1"]).await;
    f.clients[0]
        .direct_conversation(f.ids[1])
        .await
        .expect("direct");
    let (mut ben, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[1], &[]).await;
    // ann connects and then never reads again, so never answers a ping.
    let (ann, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[0], &[]).await;
    assert_eq!(ben.next_of("presence").await["online"], true);
    // ben keeps answering (his reads answer pings) and hears ann go offline.
    let offline = ben.next_of("presence").await;
    assert_eq!(offline["online"], false);
    assert_eq!(offline["user_id"], f.ids[0]);
    drop(ann);
}

async fn a_slow_client_is_disconnected_and_resumes_without_loss(backend: Backend) {
    const SENDERS: usize = 8;
    const EACH: usize = 400;
    let f = fixture(backend, &["ann", "ben"], &["--ws-queue", "8"]).await;
    let conv = group_with(&f.clients[0], &[f.ids[1]]).await;
    // ben connects and stops reading; ann floods the conversation with large messages
    // until the socket buffers and ben's queue are full.
    let (mut ben, _) = Ws::connect_and_resume(&f.server.base, &f.tokens[1], &[]).await;
    let body = "x".repeat(4000);
    let tasks: Vec<_> = (0..SENDERS)
        .map(|t| {
            let client = f.clients[0].clone();
            let body = body.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    client
                        .send_message(conv, &body, Some(&format!("{t}-{n}")))
                        .await
                        .expect("sent");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("sender");
    }
    // ben now reads what reached him, then finds the connection closed.
    let mut seqs = Vec::new();
    while let Some(ev) = ben.next_frame().await {
        if ev["type"] == "message" {
            seqs.push(ev["message"]["seq"].as_i64().expect("seq"));
        }
    }
    let total = i64::try_from(SENDERS * EACH).expect("fits");
    assert!(
        seqs.len() < SENDERS * EACH,
        "the slow client was cut off (got all {})",
        seqs.len()
    );
    assert!(
        seqs.windows(2).all(|w| w[0] + 1 == w[1]),
        "in order, no gaps, before the cut"
    );
    let last = seqs.last().copied().unwrap_or(0);
    // Resuming from the last message seen delivers exactly the rest.
    let (_ben, replay) =
        Ws::connect_and_resume(&f.server.base, &f.tokens[1], &[(conv, last)]).await;
    let rest: Vec<i64> = replay
        .iter()
        .map(|e| e["message"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(rest, ((last + 1)..=total).collect::<Vec<i64>>());
}
