//! The server under storage faults: a full database refuses writes visibly, never
//! acknowledges one it did not commit, and recovers by itself once space is back.
//!
//! "Full" is made without root: the server caps its SQLite database with
//! `--sqlite-max-size-mb`, and the test grows the file up to that cap through its own
//! (uncapped) connection with a ballast table, then drops the ballast to free space.

mod support;

use std::collections::HashMap;

use chatapp_client::{Api, ClientError};
use chatapp_protocol::RegisterRequest;
use futures_util::future::join_all;
use sqlx::{AnyConnection, Connection, Executor};
use support::{Backend, ClientEvent, TestServer, Ws};

const CAP_MB: u64 = 2;

/// What the server answered to one write.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Acked,
    /// Refused: the HTTP status (0 over the WebSocket) and the error code.
    Refused(u16, String),
}

/// Grows the database through `db` until it holds the server's cap of pages.
async fn fill_to_cap(db: &mut AnyConnection) {
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *db)
        .await
        .expect("page size");
    let cap_pages = i64::try_from(CAP_MB * 1024 * 1024).expect("cap") / page_size;
    db.execute("CREATE TABLE ballast (b BLOB NOT NULL)")
        .await
        .expect("ballast table");
    loop {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *db)
            .await
            .expect("page count");
        if pages >= cap_pages {
            return;
        }
        // About one page per row: a row of 3,000 bytes leaves no room for a second.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO ballast (b) SELECT randomblob(3000) FROM n",
        )
        .bind(cap_pages - pages)
        .execute(&mut *db)
        .await
        .expect("grow the ballast");
    }
}

async fn send_rest(api: &Api, conversation: i64, client_id: &str, body: &str) -> Outcome {
    match api.send_message(conversation, body, Some(client_id)).await {
        Ok(message) => {
            assert_eq!(message.client_id.as_deref(), Some(client_id), "{message:?}");
            Outcome::Acked
        }
        Err(err) => refusal(err),
    }
}

/// A refusal in the error shape: its status and code.
#[track_caller]
fn refusal(err: ClientError) -> Outcome {
    match err {
        ClientError::Api {
            status,
            code,
            message,
            ..
        } => {
            assert!(!message.is_empty(), "an error without a message ({code})");
            Outcome::Refused(status.as_u16(), code)
        }
        other => panic!("expected an answer, got {other}"),
    }
}

async fn send_ws(ws: &mut Ws, conversation: i64, client_id: &str, body: &str) -> Outcome {
    ws.send(&ClientEvent::Send {
        conversation_id: conversation,
        client_id: client_id.to_owned(),
        body: body.to_owned(),
        reply_to_id: None,
    })
    .await;
    loop {
        let ev = ws.next_json().await;
        match ev["type"].as_str() {
            Some("ack") if ev["client_id"] == client_id => return Outcome::Acked,
            Some("error") if ev["client_id"] == client_id => {
                assert!(
                    ev["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "error frame without message: {ev}"
                );
                return Outcome::Refused(0, ev["code"].as_str().unwrap_or_default().to_owned());
            }
            Some("error") => panic!("error frame without our client_id: {ev}"),
            _ => {}
        }
    }
}

/// Registers `name` with a client of its own (not signed in before).
async fn register(anon: &Api, name: &str) -> Outcome {
    let fresh = Api::new(&anon.base_url()).expect("address");
    let req = RegisterRequest {
        username: name.to_owned(),
        email: format!("{name}@example.org"),
        password: format!("password-{name}"),
        display_name: None,
        invite: None,
    };
    match fresh.register(&req).await {
        Ok(_) => Outcome::Acked,
        Err(err) => refusal(err),
    }
}

/// client_id → how many times it is in the conversation, as `reader` sees it.
/// `/healthz`'s status code and answer.
async fn healthz(anon: &Api) -> (u16, chatapp_protocol::Health) {
    let resp = anon
        .request(reqwest::Method::GET, "/healthz")
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a Health body"))
}

async fn stored_client_ids(reader: &Api, conversation: i64) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut before = None;
    loop {
        let page = reader
            .history(conversation, before, Some(100))
            .await
            .expect("history");
        before = page.messages.first().map(|m| m.seq);
        for m in page.messages {
            if let Some(id) = m.client_id {
                *counts.entry(id).or_default() += 1;
            }
        }
        if !page.has_more {
            return counts;
        }
    }
}

/// The status of signing in as `name` (200 when it succeeds), with a client of its own.
async fn login_status(anon: &Api, name: &str) -> u16 {
    let fresh = Api::new(&anon.base_url()).expect("address");
    match fresh.login(name, &format!("password-{name}")).await {
        Ok(_) => 200,
        Err(err) => err
            .status()
            .unwrap_or_else(|| panic!("no answer: {err}"))
            .as_u16(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_refuses_writes_visibly_keeps_every_ack_and_recovers() {
    let cap = CAP_MB.to_string();
    let mut server = TestServer::start_with(
        Backend::Sqlite,
        &[
            "--auth-rate-per-account",
            "1000",
            "--auth-rate-per-address",
            "100000",
            "--sqlite-max-size-mb",
            &cap,
        ],
    )
    .await;
    let anon = server.api();
    let (alice, _) = server.register_api("alice").await;
    let (bob, bob_id) = server.register_api("bob").await;
    let conversation = alice.direct_conversation(bob_id).await.expect("direct").id;
    let alice_token = alice.token().expect("token");
    let mut ws = Ws::connect(&server.base, &alice_token).await;

    let mut db = server.db().await;
    fill_to_cap(&mut db).await;

    // Full: every write either commits or is refused, visibly. Sends go in concurrent
    // rounds so the group-commit writer also meets the fault with batches of several.
    // Bodies of mixed sizes: short ones still fit in pages' free space, long ones need
    // new pages.
    let sizes = [3000, 20, 800, 20, 2000, 200];
    let body = |k: usize| "f".repeat(sizes[k % sizes.len()]);
    let mut sends: Vec<(String, Outcome)> = Vec::new();
    let mut accounts: Vec<(String, Outcome)> = Vec::new();
    for round in 0..12 {
        let rest_ids: Vec<String> = (0..5).map(|k| format!("full-{round}-rest-{k}")).collect();
        let ws_id = format!("full-{round}-ws");
        let name = format!("full{round}");
        let bodies: Vec<String> = (0..rest_ids.len()).map(|k| body(round + k)).collect();
        let ws_body = body(round);
        let rest = join_all(
            rest_ids
                .iter()
                .zip(&bodies)
                .map(|(id, body)| send_rest(&alice, conversation, id, body)),
        );
        let (rest, ws_outcome, account) = tokio::join!(
            rest,
            send_ws(&mut ws, conversation, &ws_id, &ws_body),
            register(&anon, &name)
        );
        sends.extend(rest_ids.into_iter().zip(rest));
        sends.push((ws_id, ws_outcome));
        accounts.push((name, account));
    }
    let refused = sends
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Refused(..)))
        .count();
    assert!(
        refused >= sends.len() / 4,
        "the cap did not bite: {sends:?}"
    );
    // What was acknowledged is committed: another connection (bob's reads) sees it.
    let seen = stored_client_ids(&bob, conversation).await;
    for (client_id, outcome) in &sends {
        if *outcome == Outcome::Acked {
            assert_eq!(
                seen.get(client_id),
                Some(&1),
                "acknowledged {client_id} is not visible to others while full"
            );
        }
    }

    // A load balancer or a monitor sees it: 503 with the reason.
    let (status, health) = healthz(&anon).await;
    assert_eq!(status, 503, "healthz while full: {health:?}");
    assert!(health.status.starts_with("storage full"), "{health:?}");

    // Space comes back: the server recovers by itself.
    db.execute("DROP TABLE ballast")
        .await
        .expect("drop the ballast (the server must not hold the write lock)");
    let (status, health) = healthz(&anon).await;
    assert_eq!(
        (status, health.status.as_str()),
        (200, "ok"),
        "healthz after space came back"
    );
    for i in 0..6 {
        let client_id = format!("after-{i}");
        let outcome = if i % 2 == 0 {
            send_rest(&alice, conversation, &client_id, &body(i)).await
        } else {
            send_ws(&mut ws, conversation, &client_id, &body(i)).await
        };
        assert_eq!(outcome, Outcome::Acked, "{client_id} after space came back");
        sends.push((client_id, outcome));
    }
    let outcome = register(&anon, "carol").await;
    assert_eq!(
        outcome,
        Outcome::Acked,
        "registration after space came back"
    );
    accounts.push(("carol".to_owned(), outcome));
    let seen = stored_client_ids(&bob, conversation).await;
    for (client_id, _) in sends.iter().filter(|(_, o)| *o == Outcome::Acked) {
        assert_eq!(seen.get(client_id), Some(&1), "{client_id} after recovery");
    }
    db.close().await.expect("close the test connection");
    ws.close().await;

    // After a restart: every acknowledged write exactly once, every refused one absent.
    server.stop();
    server.restart();
    let anon = server.api();
    bob.set_base_url(&server.base).expect("address");
    let stored = stored_client_ids(&bob, conversation).await;
    for (client_id, outcome) in &sends {
        let expected = match outcome {
            Outcome::Acked => Some(&1),
            Outcome::Refused(..) => None,
        };
        assert_eq!(
            stored.get(client_id),
            expected,
            "{client_id} ({outcome:?}) after restart"
        );
    }
    for (name, outcome) in &accounts {
        let expected = match outcome {
            Outcome::Acked => 200,
            Outcome::Refused(..) => 401,
        };
        assert_eq!(
            login_status(&anon, name).await,
            expected,
            "account {name} ({outcome:?}) after restart"
        );
        if let Outcome::Refused(..) = outcome {
            // Absent for good: the name is free.
            assert_eq!(register(&anon, name).await, Outcome::Acked, "{name} again");
        }
    }

    // Refusals say why, in the error shape: 507 `storage_full` over REST, an `error`
    // frame with the code and the client_id over the WebSocket.
    for (name, outcome) in sends.iter().chain(&accounts) {
        if let Outcome::Refused(status, code) = outcome {
            assert_eq!(code, "storage_full", "{name}: {outcome:?}");
            assert!(*status == 507 || *status == 0, "{name}: {outcome:?}");
        }
    }
}
