//! The server as a process: start-up on a fresh data dir, graceful shutdown with exit
//! code 0, data kept across restarts, and gap-free seq under concurrent sends.

mod support;

use std::collections::{BTreeSet, HashMap};

use chatapp_client::Api;
use chatapp_protocol::{Message as Stored, SendMessageRequest};
use reqwest::Method;
use support::{Backend, ClientEvent, Reaped, TestServer, Ws};

on_both_backends!(
    sigterm_stops_gracefully_and_data_survives_restart,
    concurrent_sends_get_gapless_unique_seqs,
    acknowledged_messages_survive_kill_9_exactly_once,
);

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

/// Sends a text message with a `client_id` as `Api::send_message` does, keeping the
/// status: 201 when it was stored now, 200 when a retry returned the stored one.
async fn send_keeping_status(
    api: &Api,
    conversation: i64,
    body: &str,
    client_id: &str,
) -> (u16, Stored) {
    let resp = api
        .request(
            Method::POST,
            &format!("/api/conversations/{conversation}/messages"),
        )
        .json(&SendMessageRequest {
            body: body.to_owned(),
            client_id: Some(client_id.to_owned()),
            reply_to_id: None,
        })
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let message = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{status}: not a message ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, message)
}

/// Messages edited and reacted to during the kill -9 test.
const CHANGED: usize = 10;

/// What [`change_until_refused`] did: the answers it got, in order, and the change it
/// had sent when the server went away (`(seq, new body, emoji)`).
struct Changes {
    acked: Vec<Stored>,
    in_flight: Option<(i64, String, String)>,
}

/// Edits and reacts to the first [`CHANGED`] messages, one change at a time, until the
/// server stops answering.
async fn change_until_refused(api: Api, conversation: i64) -> Changes {
    const EMOJI: [&str; 4] = ["👍", "❤️", "🎉", "😮"];
    let mut acked = Vec::new();
    for i in 0.. {
        let seq = i64::try_from(i % CHANGED).expect("fits") + 1;
        let body = format!("edit {i}");
        let emoji = EMOJI[i % EMOJI.len()];
        let answer = if i % 2 == 0 {
            api.edit_message(conversation, seq, &body).await
        } else {
            api.react(conversation, seq, emoji, true).await
        };
        match answer {
            Ok(message) => acked.push(message),
            Err(_) => {
                return Changes {
                    acked,
                    in_flight: Some((seq, body, emoji.to_owned())),
                };
            }
        }
    }
    unreachable!()
}

async fn acknowledged_messages_survive_kill_9_exactly_once(backend: Backend) {
    const SENDS: usize = 600;
    let mut server = TestServer::start_binary(
        backend,
        &[
            "--ws-frames-per-second",
            "100000",
            "--ws-frames-burst",
            "100000",
        ],
    )
    .await;
    let (ann, _) = server.register_api("ann").await;
    let group = ann.create_group("Crash", &[]).await.expect("group").id;
    let token = ann.token().expect("token");
    // Messages that are edited and reacted to, one change at a time, while the crash comes.
    for i in 1..=CHANGED {
        ann.send_message(group, "to be edited", Some(&format!("seed-{i}")))
            .await
            .expect("seed");
    }
    let changer = tokio::spawn(change_until_refused(ann.clone(), group));
    let (mut ws, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    // Pipeline every send without waiting, then read acks; crash the server mid-stream.
    for i in 0..SENDS {
        ws.send(&ClientEvent::Send {
            conversation_id: group,
            client_id: format!("crash-{i}"),
            body: format!("message {i}"),
            reply_to_id: None,
        })
        .await;
    }
    let mut acked: HashMap<String, Stored> = HashMap::new();
    let mut killed = false;
    while let Some(ev) = ws.next_frame().await {
        if ev["type"] == "ack" {
            acked.insert(
                ev["client_id"].as_str().expect("client_id").to_owned(),
                serde_json::from_value(ev["message"].clone()).expect("a message"),
            );
            if acked.len() == 100 && !killed {
                assert!(!server.kill9().success());
                killed = true;
            }
        }
    }
    assert!(
        killed,
        "the server was killed mid-stream (acks: {})",
        acked.len()
    );

    let changes = changer
        .await
        .expect("the changer ends when the server is gone");
    assert!(
        changes.acked.len() > 1,
        "changes were in flight: {}",
        changes.acked.len()
    );

    server.restart();
    ann.set_base_url(&server.base).expect("address");
    let stored = whole_history(&ann, group).await;
    // Every acknowledged change survived: each changed message is as its last acknowledged
    // change left it, or as the one change in flight at the crash (committed, unanswered).
    for seq in 1..=i64::try_from(CHANGED).expect("fits") {
        let now = stored
            .iter()
            .find(|m| m.seq == seq)
            .expect("a seed message");
        let acked = changes.acked.iter().rev().find(|m| m.seq == seq);
        let in_flight = changes.in_flight.as_ref().filter(|m| m.0 == seq);
        if let Some(acked) = acked {
            let as_acked = (now.body == acked.body) && (now.reactions == acked.reactions);
            let as_in_flight = in_flight.is_some_and(|(_, body, emoji)| {
                now.rev > acked.rev
                    && (now.body == *body || now.reactions.iter().any(|r| r.emoji == *emoji))
            });
            assert!(
                as_acked || as_in_flight,
                "seq {seq}: {now:?} after {acked:?}"
            );
            assert!(now.rev >= acked.rev);
        }
    }
    let stored: Vec<Stored> = stored
        .into_iter()
        .filter(|m| {
            !m.client_id
                .as_deref()
                .is_some_and(|c| c.starts_with("seed-"))
        })
        .collect();
    let by_client_id: HashMap<String, Stored> = stored
        .iter()
        .map(|m| (m.client_id.clone().expect("client_id"), m.clone()))
        .collect();
    assert_eq!(
        by_client_id.len(),
        stored.len(),
        "no client_id stored twice"
    );
    for (client_id, message) in &acked {
        assert_eq!(
            by_client_id.get(client_id),
            Some(message),
            "acknowledged {client_id} survived the crash as acknowledged"
        );
    }
    let mut seqs: Vec<i64> = stored.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    let first = i64::try_from(CHANGED).expect("fits") + 1;
    assert_eq!(
        seqs,
        (first..first + i64::try_from(stored.len()).expect("fits")).collect::<Vec<_>>(),
        "no gaps"
    );

    // The client retries everything: nothing is duplicated, everything lands once.
    for i in 0..SENDS {
        let client_id = format!("crash-{i}");
        let (status, message) =
            send_keeping_status(&ann, group, &format!("message {i}"), &client_id).await;
        let expected = if by_client_id.contains_key(&client_id) {
            200
        } else {
            201
        };
        assert_eq!(status, expected, "{client_id}");
        if let Some(before) = by_client_id.get(&client_id) {
            assert_eq!(&message, before);
        }
    }
    let conv = ann.conversation(group).await.expect("conversation");
    assert_eq!(conv.last_seq, i64::try_from(SENDS + CHANGED).expect("fits"));
    assert!(server.stop().success());
}

async fn sigterm_stops_gracefully_and_data_survives_restart(backend: Backend) {
    let mut server = TestServer::start_binary(backend, &[]).await;
    let (ann, _) = server.register_api("ann").await;
    let group = ann.create_group("Keep", &[]).await.expect("group").id;
    let (status, _) = send_keeping_status(&ann, group, "kept", "k1").await;
    assert_eq!(status, 201);
    if backend == Backend::Sqlite {
        assert!(
            server.data_dir.path().join("chatapp.db").exists(),
            "SQLite file in the data dir"
        );
    }
    let secret_path = server.data_dir.path().join("secret.key");
    let secret = std::fs::read_to_string(&secret_path).expect("generated secret key");
    let (ben, ann_id) = {
        let (ben, _) = server.register_api("ben").await;
        let me = ann.me().await.expect("me");
        assert!(me.last_seen.is_none(), "never connected yet: {me:?}");
        (ben, me.id)
    };
    // ann is connected when the server stops: told to come back later, and her last
    // seen is recorded on the way out.
    let (mut ws, _) = Ws::connect_and_resume(&server.base, &ann.token().expect("token"), &[]).await;

    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.pid()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    assert_eq!(ws.close_code().await, Some(1012), "service restart");
    let status = server.stop();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );

    server.restart();
    assert_eq!(
        std::fs::read_to_string(&secret_path).expect("secret"),
        secret,
        "secret kept"
    );
    ann.set_base_url(&server.base).expect("address");
    ann.me().await.expect("me");
    ben.set_base_url(&server.base).expect("address");
    let seen = ben.user(ann_id).await.expect("ann");
    assert!(
        seen.last_seen.is_some(),
        "last seen recorded at shutdown: {seen:?}"
    );
    assert!(!seen.online);
    let page = ann.history(group, None, None).await.expect("history");
    assert_eq!(page.messages[0].body, "kept");
    // The retry of an acknowledged send after the restart still does not duplicate.
    let (status, retry) = send_keeping_status(&ann, group, "kept", "k1").await;
    assert_eq!(status, 200);
    assert_eq!(retry.seq, 1);
    assert!(server.stop().success());
}

async fn concurrent_sends_get_gapless_unique_seqs(backend: Backend) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 50;
    let server = TestServer::start_binary(backend, &[]).await;
    let (owner, _) = server.register_api("owner").await;
    let mut senders = Vec::new();
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let (client, id) = server.register_api(&format!("sender{i}")).await;
        senders.push(client);
        ids.push(id);
    }
    let group = owner.create_group("Busy", &ids).await.expect("group").id;

    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(t, client)| {
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..PER_TASK {
                    let (status, m) = send_keeping_status(
                        &client,
                        group,
                        &format!("{t}/{n}"),
                        &format!("t{t}-{n}"),
                    )
                    .await;
                    assert_eq!(status, 201);
                    seqs.push(m.seq);
                }
                seqs
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.expect("task");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one sender's seqs increase"
        );
        all.extend(seqs);
    }
    let total = i64::try_from(TASKS * PER_TASK).expect("fits");
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), TASKS * PER_TASK);
    assert_eq!(
        unique,
        (1..=total).collect::<BTreeSet<i64>>(),
        "seq 1..{total}, no gap, no duplicate"
    );

    // And the stored history agrees.
    let mut stored: Vec<i64> = whole_history(&owner, group)
        .await
        .iter()
        .map(|m| m.seq)
        .collect();
    stored.sort_unstable();
    assert_eq!(stored, (1..=total).collect::<Vec<i64>>());
    let conv = owner.conversation(group).await.expect("conversation");
    assert_eq!(conv.last_seq, total);
}

/// `PORT` (what platforms that run services set) is honoured when `--listen` is not
/// given, on all addresses: the binary started with no flags and `PORT=0` listens on
/// 0.0.0.0 at the port it picked, and answers there on loopback.
#[test]
fn port_from_the_environment_listens_on_all_addresses() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chatapp-server"));
    cmd.env_remove("CHATAPP_LISTEN")
        .env_remove("DATABASE_URL")
        .env("PORT", "0")
        .env("CHATAPP_DATA_DIR", dir.path());
    let (child, base) = chatapp_testkit::spawn_listening(&mut cmd).expect("the server starts");
    let _child = Reaped(child);
    let port: u16 = base
        .strip_prefix("http://0.0.0.0:")
        .unwrap_or_else(|| panic!("not on all addresses: {base}"))
        .parse()
        .expect("a port");
    assert_ne!(port, 0);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
