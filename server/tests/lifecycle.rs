//! The server as a process: start-up on a fresh data dir, graceful shutdown with exit
//! code 0, data kept across restarts, and gap-free seq under concurrent sends.

mod support;

use std::collections::BTreeSet;

use serde_json::json;
use support::{Backend, TestServer};

on_both_backends!(
    sigterm_stops_gracefully_and_data_survives_restart,
    concurrent_sends_get_gapless_unique_seqs,
);

async fn sigterm_stops_gracefully_and_data_survives_restart(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let anon = server.client();
    let (ann, _) = anon.register("ann").await;
    let group = ann
        .post(
            "/api/conversations",
            json!({"kind": "group", "title": "Keep"}),
        )
        .await
        .expect(201)["id"]
        .as_i64()
        .expect("id");
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
    let server = TestServer::start(backend).await;
    let anon = server.client();
    let (owner, _) = anon.register("owner").await;
    let mut senders = Vec::new();
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let (client, id) = anon.register(&format!("sender{i}")).await;
        senders.push(client);
        ids.push(id);
    }
    let group = owner
        .post(
            "/api/conversations",
            json!({"kind": "group", "title": "Busy", "member_ids": ids}),
        )
        .await
        .expect(201)["id"]
        .as_i64()
        .expect("id");

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
    let mut stored = Vec::new();
    let mut before = None::<i64>;
    loop {
        let path = match before {
            Some(b) => format!("/api/conversations/{group}/messages?limit=100&before_seq={b}"),
            None => format!("/api/conversations/{group}/messages?limit=100"),
        };
        let page = owner.get(&path).await.expect(200);
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["seq"].as_i64().expect("seq"))
            .collect();
        before = seqs.first().copied();
        stored.extend(seqs);
        if page["has_more"] == false {
            break;
        }
    }
    stored.sort_unstable();
    assert_eq!(stored, (1..=total).collect::<Vec<i64>>());
    let conv = owner
        .get(&format!("/api/conversations/{group}"))
        .await
        .expect(200);
    assert_eq!(conv["last_seq"], total);
}
