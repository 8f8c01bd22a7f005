//! Several server processes on one PostgreSQL database: messages, presence and changes
//! cross between them through LISTEN/NOTIFY, and an instance that loses its listening
//! connection reconnects and catches up.

mod support;

use chatapp_client::Api;
use chatapp_protocol::Message as Stored;
use reqwest::Method;
use sqlx::{Connection, PgConnection};
use support::{Backend, ClientEvent, TestServer, Ws};

/// Two server processes on one database; ann signed in on A, ben on B, both in a group.
struct Pair {
    a: TestServer,
    b: TestServer,
    ann: Api,
    ann_id: i64,
    ben: Api,
    conv: i64,
}

async fn two_instances() -> Pair {
    let a = TestServer::start_binary(Backend::Postgres, &[]).await;
    let b = TestServer::start_sharing(&a, &[]).await;
    let (ann, ann_id) = a.register_api("ann").await;
    let (ben, ben_id) = b.register_api("ben").await;
    let conv = ann.create_group("two", &[ben_id]).await.expect("group").id;
    Pair {
        a,
        b,
        ann,
        ann_id,
        ben,
        conv,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_presence_cross_between_instances() {
    let Pair {
        a,
        b,
        ann,
        ann_id,
        ben,
        conv,
    } = two_instances().await;
    let ann_token = ann.token().expect("token");
    let ben_token = ben.token().expect("token");

    // ben on B; ann comes online on A: B tells ben, and B's REST says so.
    let (mut ben_ws, _) = Ws::connect_and_resume(&b.base, &ben_token, &[]).await;
    let (mut ann_ws, _) = Ws::connect_and_resume(&a.base, &ann_token, &[]).await;
    let online = ben_ws.next_of("presence").await;
    assert_eq!(online["user_id"], ann_id);
    assert_eq!(online["online"], true);
    // ben's client talks to B.
    let on_b = &ben;
    assert_eq!(on_b.base_url(), b.base);
    assert!(on_b.user(ann_id).await.expect("ann").online);

    // A message sent on A reaches ben on B, once.
    ann_ws
        .send(&ClientEvent::Send {
            conversation_id: conv,
            client_id: "x1".into(),
            body: "across".into(),
            reply_to_id: None,
        })
        .await;
    let ack = ann_ws.next_of("ack").await;
    let got = ben_ws.next_of("message").await;
    assert_eq!(got["message"], ack["message"]);
    // And back: a REST send on B reaches ann on A.
    let sent = on_b.send_message(conv, "back", None).await.expect("sent");
    let got = ann_ws.next_of("message").await;
    let got: Stored = serde_json::from_value(got["message"].clone()).expect("a message");
    assert_eq!(got, sent);
    ben_ws.next_of("message").await;

    // Typing, read and renames cross too.
    ann_ws
        .send(&ClientEvent::Typing {
            conversation_id: conv,
        })
        .await;
    assert_eq!(ben_ws.next_of("typing").await["user_id"], ann_id);
    // (ben's own send moved his read position already; ann has read only her own)
    ann_ws
        .send(&ClientEvent::Read {
            conversation_id: conv,
            seq: 2,
        })
        .await;
    let read = ben_ws.next_of("read").await;
    assert_eq!(
        (read["user_id"].as_i64(), read["seq"].as_i64()),
        (Some(ann_id), Some(2))
    );
    ann.rename_conversation(conv, "renamed")
        .await
        .expect("renamed");
    assert_eq!(
        ben_ws.next_of("conversation").await["conversation"]["title"],
        "renamed"
    );
    ben_ws.expect_quiet().await;

    // ann leaves A: ben on B hears she went offline.
    ann_ws.close().await;
    let offline = ben_ws.next_of("presence").await;
    assert_eq!(offline["online"], false);
    assert!(offline["last_seen"].is_string());
    assert!(!on_b.user(ann_id).await.expect("ann").online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_changes_cross_between_instances_live_and_on_resume() {
    let Pair {
        a: _a,
        b,
        ann,
        ben,
        conv,
        ..
    } = two_instances().await;
    let ben_token = ben.token().expect("token");
    let first = ann.send_message(conv, "frist", None).await.expect("sent");
    let (mut ben_ws, _) = Ws::connect_and_resume(&b.base, &ben_token, &[(conv, 1)]).await;

    // Live: changes made on A reach ben on B in change order, never twice. (B reads the
    // row when a change arrives; when the next change has committed by then, B sends the
    // newer state once and the next notification finds nothing new to send.)
    let edited = ann.edit_message(conv, 1, "first").await.expect("edit");
    let liked = ann.react(conv, 1, "🎉", true).await.expect("react");
    assert_eq!((edited.rev, liked.rev), (1, 2));
    let mut revs = Vec::new();
    loop {
        let ev = ben_ws.next_of("message_updated").await;
        let got: Stored = serde_json::from_value(ev["message"].clone()).expect("a message");
        revs.push(got.rev);
        if got.rev == 1 {
            assert_eq!(got, edited);
        }
        if got.rev == liked.rev {
            assert_eq!(got, liked);
            break;
        }
    }
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {revs:?}"
    );
    ben_ws.expect_quiet().await;
    ben_ws.close().await;

    // Away: a reply and a deletion on A; ben resumes on B and gets each once.
    ann.send_reply(conv, "re", None, first.id)
        .await
        .expect("reply");
    let deleted = ann.delete_message(conv, 1).await.expect("delete");
    let mut ben_ws = Ws::connect(&b.base, &ben_token).await;
    ben_ws
        .send(&ClientEvent::Resume {
            cursors: [(conv, 1)].into_iter().collect(),
            changes: [(conv, liked.rev)].into_iter().collect(),
        })
        .await;
    let reply = ben_ws.next_of("message").await;
    assert_eq!(reply["message"]["reply_to"]["deleted"], true, "{reply}");
    let ev = ben_ws.next_json().await;
    assert_eq!(ev["type"], "message_updated", "{ev}");
    let got: Stored = serde_json::from_value(ev["message"].clone()).expect("a message");
    assert_eq!(got, deleted);
    assert_eq!(ben_ws.next_json().await["type"], "synced");
    ben_ws.expect_quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_loses_its_listener_reconnects_and_catches_up() {
    let Pair {
        a,
        b,
        ann,
        ben,
        conv,
        ..
    } = two_instances().await;
    let (mut ben_ws, _) = Ws::connect_and_resume(&b.base, &ben.token().expect("token"), &[]).await;
    ann.send_message(conv, "before", None).await.expect("sent");
    assert_eq!(ben_ws.next_of("message").await["message"]["seq"], 1);

    // Cut every listening connection of this database (both instances').
    let db = &a.database.as_ref().expect("database").name;
    let mut admin = PgConnection::connect(&support::postgres_admin_url())
        .await
        .expect("admin");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = 'chatapp-listener'",
    )
    .bind(db)
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert_eq!(
        killed.len(),
        2,
        "each instance had one listening connection"
    );

    // Sent while B may still be reconnecting: B catches up, in order, once.
    for i in 2..=4 {
        ann.send_message(conv, &format!("during {i}"), None)
            .await
            .expect("sent");
    }
    for seq in 2..=4 {
        assert_eq!(ben_ws.next_of("message").await["message"]["seq"], seq);
    }
    ann.send_message(conv, "after", None).await.expect("sent");
    assert_eq!(ben_ws.next_of("message").await["message"]["seq"], 5);
    ben_ws.expect_quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_on_one_instance_closes_the_sessions_sockets_on_the_other() {
    let Pair { a, b, ann, .. } = two_instances().await;
    let token = ann.token().expect("token");
    // ann's socket is on B; she signs out through A.
    let (mut on_b, _) = Ws::connect_and_resume(&b.base, &token, &[]).await;
    // `Api::logout` also takes a 401 as signed out; the exact 204 through `Api::request`.
    let logout = ann
        .request(Method::POST, "/api/auth/logout")
        .send()
        .await
        .expect("answered");
    assert_eq!(logout.status().as_u16(), 204);
    assert_eq!(on_b.close_code().await, Some(4001), "session ended");
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_account_on_one_instance_closes_its_sockets_on_the_other() {
    let Pair { a, b, ann, .. } = two_instances().await;
    // ann (the first account) is the admin, on A; cat's socket is on B.
    let (cat, cat_id) = b.register_api("cat").await;
    let token = cat.token().expect("token");
    let (mut on_b, _) = Ws::connect_and_resume(&b.base, &token, &[]).await;
    let started = std::time::Instant::now();
    ann.admin_update_user(
        cat_id,
        &chatapp_protocol::AdminUserUpdate {
            is_admin: None,
            disabled: Some(true),
        },
    )
    .await
    .expect("disabled");
    assert_eq!(on_b.close_code().await, Some(4001), "session ended");
    // Pushed through PostgreSQL at once: the sweep that would find it runs once a minute.
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(15),
        "closed after {took:?}"
    );
    println!("closed on the other instance {took:?} after the admin disabled the account");
    cat.me().await.expect_err("the session is gone on B too");
    drop(a);
}
