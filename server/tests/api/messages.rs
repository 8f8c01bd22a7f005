//! Messages: sending (idempotent by `client_id`, validated) and history pages.

use chatapp_protocol::{Message, MessageKind, SendMessageRequest};
use serde_json::json;

use crate::support::{Backend, Raw, Refused, TestServer};
use crate::{body, typed};

crate::on_both_backends!(
    send_is_idempotent_and_validated,
    paging_returns_every_seq_exactly_once,
);

async fn send_is_idempotent_and_validated(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (ann, ann_id) = server.register("ann").await;
    let (_, ben_id) = server.register("ben").await;
    let id = ann.direct_conversation(ben_id).await.expect("direct").id;
    let path = format!("/api/conversations/{id}/messages");

    // 201 when stored, 200 when a retry replays it: statuses the client does not show,
    // so these two requests go raw (with the client's request body).
    let hello = body(&SendMessageRequest {
        body: "hello <b>ben</b>".into(),
        client_id: Some("c-1".into()),
        reply_to_id: None,
    });
    let first_json = raw
        .as_user(&ann)
        .post(&path, hello.clone())
        .await
        .expect(201);
    // The wire format of the time (RFC 3339 in UTC, with `Z`) is not in the type.
    assert!(
        first_json["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{first_json}"
    );
    let first: Message = typed(first_json);
    assert_eq!(first.seq, 1);
    assert_eq!(first.sender_id, ann_id);
    assert_eq!(first.kind, MessageKind::Text);
    assert_eq!(
        first.body, "hello <b>ben</b>",
        "bodies are stored as given, never interpreted"
    );
    assert_eq!(first.client_id.as_deref(), Some("c-1"));
    let retry: Message = typed(raw.as_user(&ann).post(&path, hello).await.expect(200));
    assert_eq!(retry, first, "a retry returns the stored message");
    assert_eq!(
        ann.send_message(id, "hello <b>ben</b>", Some("c-1"))
            .await
            .expect("the client's retry"),
        first
    );
    let second = ann
        .send_message(id, "no client id", None)
        .await
        .expect("sent");
    assert_eq!(second.seq, 2);

    for (text, client_id, code) in [
        (String::new(), None, "empty_body"),
        (" \n ".to_owned(), None, "empty_body"),
        ("x".repeat(4001), None, "body_too_long"),
        ("ok".to_owned(), Some("has space"), "invalid_client_id"),
    ] {
        ann.send_message(id, &text, client_id)
            .await
            .refused(400, code);
    }
    // A body of the wrong type, or none: no client sends them.
    for wrong in [json!({"body": 5}), json!({})] {
        raw.as_user(&ann)
            .post(&path, wrong)
            .await
            .expect_error(400, "invalid_body");
    }
    ann.send_message(id, &"é".repeat(4000), None)
        .await
        .expect("4000 characters");

    // The same client_id in another conversation is a conflict, not a silent replay.
    let group = ann.create_group("g", &[]).await.expect("group").id;
    ann.send_message(group, "x", Some("c-1"))
        .await
        .refused(409, "client_id_reused");

    let page = ann.history(id, None, None).await.expect("history");
    let seqs: Vec<i64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3], "refused and retried sends stored nothing");
}

async fn paging_returns_every_seq_exactly_once(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (ann, _) = server.register("ann").await;
    let (ben, ben_id) = server.register("ben").await;
    let id = ann.direct_conversation(ben_id).await.expect("direct").id;
    for i in 1..=125 {
        let sender = if i % 3 == 0 { &ben } else { &ann };
        sender
            .send_message(id, &format!("message {i}"), Some(&format!("m{i}")))
            .await
            .expect("sent");
    }

    let mut seen: Vec<i64> = Vec::new();
    let mut before: Option<i64> = None;
    let mut pages = 0;
    loop {
        let page = ben.history(id, before, Some(40)).await.expect("page");
        let seqs: Vec<i64> = page.messages.iter().map(|m| m.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] + 1 == w[1]),
            "oldest first, consecutive: {seqs:?}"
        );
        for m in &page.messages {
            assert_eq!(m.body, format!("message {}", m.seq));
        }
        pages += 1;
        seen.extend(seqs.iter().rev());
        if !page.has_more {
            break;
        }
        before = seqs.first().copied();
    }
    assert_eq!(pages, 4);
    seen.reverse();
    assert_eq!(
        seen,
        (1..=125).collect::<Vec<i64>>(),
        "every seq exactly once"
    );

    ann.history(id, None, Some(0))
        .await
        .refused(400, "invalid_limit");
    ann.history(id, None, Some(101))
        .await
        .refused(400, "invalid_limit");
    // A seq that is not a number: the client cannot form it.
    raw.as_user(&ann)
        .get(&format!("/api/conversations/{id}/messages?before_seq=abc"))
        .await
        .expect_error(400, "invalid_query");
    let tail = ann.history(id, Some(3), None).await.expect("tail");
    assert_eq!(tail.messages.len(), 2);
    assert!(!tail.has_more);
}
