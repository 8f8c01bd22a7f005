//! The server as a process: start-up on a fresh data dir, graceful shutdown with exit
//! code 0, data kept across restarts, and gap-free seq under concurrent sends.

mod support;

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use support::{Backend, ClientEvent, TestServer, Ws};

on_both_backends!(
    sigterm_stops_gracefully_and_data_survives_restart,
    concurrent_sends_get_gapless_unique_seqs,
    acknowledged_messages_survive_kill_9_exactly_once,
);

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
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let group = ann.group_with("Crash", &[]).await;
    let token = ann.token.clone().expect("token");
    let (mut ws, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    // Pipeline every send without waiting, then read acks; crash the server mid-stream.
    for i in 0..SENDS {
        ws.send(&ClientEvent::Send {
            conversation_id: group,
            client_id: format!("crash-{i}"),
            body: format!("message {i}"),
        })
        .await;
    }
    let mut acked: HashMap<String, Value> = HashMap::new();
    let mut killed = false;
    while let Some(ev) = ws.next_frame().await {
        if ev["type"] == "ack" {
            acked.insert(
                ev["client_id"].as_str().expect("client_id").to_owned(),
                ev["message"].clone(),
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

    server.restart();
    let ann = ann.with_base(&server.base);
    let stored = ann.whole_history(group).await;
    let by_client_id: HashMap<String, Value> = stored
        .iter()
        .map(|m| {
            (
                m["client_id"].as_str().expect("client_id").to_owned(),
                m.clone(),
            )
        })
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
    let mut seqs: Vec<i64> = stored
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=i64::try_from(stored.len()).expect("fits")).collect::<Vec<_>>(),
        "no gaps"
    );

    // The client retries everything: nothing is duplicated, everything lands once.
    for i in 0..SENDS {
        let client_id = format!("crash-{i}");
        let resp = ann
            .post(
                &format!("/api/conversations/{group}/messages"),
                json!({"body": format!("message {i}"), "client_id": client_id}),
            )
            .await;
        let expected = if by_client_id.contains_key(&client_id) {
            200
        } else {
            201
        };
        let message = resp.expect(expected);
        if let Some(before) = by_client_id.get(&client_id) {
            assert_eq!(&message, before);
        }
    }
    let conv = ann
        .get(&format!("/api/conversations/{group}"))
        .await
        .expect(200);
    assert_eq!(conv["last_seq"], i64::try_from(SENDS).expect("fits"));
    assert!(server.stop().success());
}

async fn sigterm_stops_gracefully_and_data_survives_restart(backend: Backend) {
    let mut server = TestServer::start_binary(backend, &[]).await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let group = ann.group_with("Keep", &[]).await;
    ann.post(
        &format!("/api/conversations/{group}/messages"),
        json!({"body": "kept", "client_id": "k1"}),
    )
    .await
    .expect(201);
    if backend == Backend::Sqlite {
        assert!(
            server.data_dir.path().join("chatapp.db").exists(),
            "SQLite file in the data dir"
        );
    }
    let secret_path = server.data_dir.path().join("secret.key");
    let secret = std::fs::read_to_string(&secret_path).expect("generated secret key");
    let (ben, ann_id) = {
        let (ben, _) = anon.register("ben").await;
        let me = ann.get("/api/me").await.expect(200);
        assert!(me["last_seen"].is_null(), "never connected yet: {me}");
        (ben, me["id"].as_i64().expect("id"))
    };
    // ann is connected when the server stops: told to come back later, and her last
    // seen is recorded on the way out.
    let (mut ws, _) =
        Ws::connect_and_resume(&server.base, &ann.token.clone().expect("token"), &[]).await;

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
    let ann = ann.with_base(&server.base);
    ann.get("/api/me").await.expect(200);
    let seen = ben
        .with_base(&server.base)
        .get(&format!("/api/users/{ann_id}"))
        .await
        .expect(200);
    assert!(
        seen["last_seen"].is_string(),
        "last seen recorded at shutdown: {seen}"
    );
    assert_eq!(seen["online"], false);
    let page = ann
        .get(&format!("/api/conversations/{group}/messages"))
        .await
        .expect(200);
    assert_eq!(page["messages"][0]["body"], "kept");
    // The retry of an acknowledged send after the restart still does not duplicate.
    let retry = ann
        .post(
            &format!("/api/conversations/{group}/messages"),
            json!({"body": "kept", "client_id": "k1"}),
        )
        .await
        .expect(200);
    assert_eq!(retry["seq"], 1);
    assert!(server.stop().success());
}

async fn concurrent_sends_get_gapless_unique_seqs(backend: Backend) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 50;
    let server = TestServer::start_binary(backend, &[]).await;
    let anon = server.client();
    let (owner, _) = anon.register("owner").await;
    let mut senders = Vec::new();
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let (client, id) = anon.register(&format!("sender{i}")).await;
        senders.push(client);
        ids.push(id);
    }
    let group = owner.group_with("Busy", &ids).await;

    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(t, client)| {
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..PER_TASK {
                    let m = client
                        .post(
                            &format!("/api/conversations/{group}/messages"),
                            json!({"body": format!("{t}/{n}"), "client_id": format!("t{t}-{n}")}),
                        )
                        .await
                        .expect(201);
                    seqs.push(m["seq"].as_i64().expect("seq"));
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
    let mut stored: Vec<i64> = owner
        .whole_history(group)
        .await
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    stored.sort_unstable();
    assert_eq!(stored, (1..=total).collect::<Vec<i64>>());
    let conv = owner
        .get(&format!("/api/conversations/{group}"))
        .await
        .expect(200);
    assert_eq!(conv["last_seq"], total);
}
