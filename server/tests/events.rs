//! The one event path: a change published on one instance reaches the sockets of that
//! instance and of another instance on the same PostgreSQL, delivered by the same
//! function (`events::deliver`) on both sides. Two servers in this process
//! (`chatapp_server::Server`), real sockets through `chatapp-client`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chatapp_client::protocol::{RegisterRequest, ServerEvent};
use chatapp_client::{Api, Socket};
use chatapp_server::{Config, Server, events::Change};
use clap::Parser;
use support::TestDatabase;

/// An instance on the database at `url`, listening on a free port.
async fn instance(url: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("data dir");
    let config = Config::try_parse_from([
        "chatapp-server",
        "--data-dir",
        &dir.path().display().to_string(),
        "--database-url",
        url,
        "--auth-rate-per-address",
        "100000",
    ])
    .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = Server::start(config, listener).await.expect("start");
    (server, dir)
}

async fn register(server: &Server, name: &str) -> (Api, i64) {
    let api = Api::new(&format!("http://{}", server.addr())).expect("api");
    let auth = api
        .register(&RegisterRequest {
            username: name.into(),
            email: format!("{name}@example.org"),
            password: format!("password-{name}"),
            display_name: None,
            invite: None,
        })
        .await
        .expect("register");
    (api, auth.user.id)
}

/// A live socket of `api`'s user on `server`.
async fn live(server: &Server, api: &Api) -> Socket {
    let api = api.clone();
    api.set_base_url(&format!("http://{}", server.addr()))
        .expect("base");
    let (mut socket, _) = Socket::connect(&api).await.expect("socket");
    socket.resume(&BTreeMap::new()).await.expect("resume");
    socket
}

/// Reads until an event `want` accepts, for at most `limit`.
async fn next_matching(
    socket: &mut Socket,
    limit: Duration,
    want: impl Fn(&ServerEvent) -> bool,
) -> Option<ServerEvent> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next_event()).await {
            Ok(Ok(Some(event))) if want(&event) => return Some(event),
            Ok(Ok(Some(_))) => {}
            Ok(_) | Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_sockets_here_and_on_another_instance() {
    let db = TestDatabase::create().await;
    let (a, _dir_a) = instance(&db.url).await;
    let (b, _dir_b) = instance(&db.url).await;
    let (ann, ann_id) = register(&a, "ann").await;
    let (ben, ben_id) = register(&b, "ben").await;
    let chat = ann.direct_conversation(ben_id).await.expect("direct");

    // Ben has a socket on each instance.
    let mut ben_on_a = live(&a, &ben).await;
    let mut ben_on_b = live(&b, &ben).await;

    // Published on A: delivered to A's socket at once, and to B's through the broker and
    // B's delivery. (B's listener may still be connecting: publish again until B has it.)
    let typing = Change::Typing {
        conversation_id: chat.id,
        user_id: ann_id,
    };
    let is_typing = |e: &ServerEvent| {
        matches!(e, ServerEvent::Typing { conversation_id, user_id }
            if *conversation_id == chat.id && *user_id == ann_id)
    };
    a.state().publish(typing.clone()).await;
    assert!(
        next_matching(&mut ben_on_a, Duration::from_secs(10), is_typing)
            .await
            .is_some(),
        "the socket on the publishing instance"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if next_matching(&mut ben_on_b, Duration::from_millis(500), is_typing)
            .await
            .is_some()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the socket on the other instance"
        );
        a.state().publish(typing.clone()).await;
    }

    // And the other way: published on B, delivered on B and on A.
    let read = Change::Read {
        conversation_id: chat.id,
        user_id: ann_id,
        seq: 0,
    };
    b.state().publish(read).await;
    let is_read = |e: &ServerEvent| {
        matches!(e, ServerEvent::Read { conversation_id, user_id, seq: 0 }
            if *conversation_id == chat.id && *user_id == ann_id)
    };
    for (socket, which) in [
        (&mut ben_on_b, "B, publishing"),
        (&mut ben_on_a, "A, other"),
    ] {
        assert!(
            next_matching(socket, Duration::from_secs(10), is_read)
                .await
                .is_some(),
            "read on {which}"
        );
    }

    ben_on_a.close().await;
    ben_on_b.close().await;
    a.stop().await;
    b.stop().await;
}
