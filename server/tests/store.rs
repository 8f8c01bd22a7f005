//! The storage interface directly, on SQLite and PostgreSQL: the group-commit batch
//! answers each message exactly as a single insert would.

mod support;

use chatapp_protocol::MessageKind;
use chatapp_server::store::{NewMessage, NewUser, Store, StoreError, StoreOptions};
use support::{Backend, TestDatabase};

on_both_backends!(
    batch_insert_answers_each_message_like_a_single_insert,
    emails_stored_before_nfkc_are_normalized_once_and_clashes_left_alone,
);

async fn open(backend: Backend) -> (Store, Option<TestDatabase>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("t.db").display());
            (Store::connect(&url).await.expect("sqlite"), None, dir)
        }
        Backend::Postgres => {
            let db = TestDatabase::create().await;
            (
                Store::connect(&db.url).await.expect("postgres"),
                Some(db),
                dir,
            )
        }
    }
}

fn text<'a>(
    conversation_id: i64,
    sender_id: i64,
    body: &'a str,
    client_id: Option<&'a str>,
) -> NewMessage<'a> {
    NewMessage {
        conversation_id,
        sender_id,
        kind: MessageKind::Text,
        body,
        client_id,
        file: None,
        reply_to_id: None,
        mentions: &[],
    }
}

async fn batch_insert_answers_each_message_like_a_single_insert(backend: Backend) {
    let (store, _db, _dir) = open(backend).await;
    let mut ids = Vec::new();
    for name in ["ann", "ben", "eve"] {
        let user = store
            .create_user(NewUser {
                username: name,
                email: &format!("{name}@example.org"),
                display_name: name,
                password_hash: "x",
                admin: false,
                invite: None,
            })
            .await
            .expect("user");
        ids.push(user.id);
    }
    let (ann, ben, eve) = (ids[0], ids[1], ids[2]);
    let g1 = store.create_group(ann, "one", &[ben]).await.expect("group");
    let g2 = store.create_group(ben, "two", &[ann]).await.expect("group");
    let (first, _) = store
        .insert_message(&text(g1, ann, "earlier", Some("old")))
        .await
        .expect("insert");

    let batch = [
        text(g1, ann, "a", Some("k1")),
        text(g2, ben, "b", None),
        text(g1, ben, "c", Some("k1")), // same client_id, other sender: new
        text(g1, ann, "a again", Some("k1")), // repeat within the batch
        text(g1, eve, "intruder", None), // not a member
        text(g1, ann, "retry", Some("old")), // stored before the batch
        text(g2, ann, "reused", Some("old")), // client_id used in another conversation
        text(g2, ben, "d", None),
        text(g1, ann, "e", None),
    ];
    let results = store.insert_messages(&batch).await;
    let seq = |i: usize| match &results[i] {
        Ok((row, created)) => (row.conversation_id, row.seq, *created),
        Err(err) => panic!("item {i}: {err}"),
    };
    assert_eq!(seq(0), (g1, 2, true));
    assert_eq!(seq(1), (g2, 1, true));
    assert_eq!(seq(2), (g1, 3, true));
    assert_eq!(seq(3), (g1, 2, false));
    assert!(matches!(results[4], Err(StoreError::NotFound)));
    match &results[5] {
        Ok((row, false)) => assert_eq!(row.id, first.id),
        other => panic!("expected the stored message, got {other:?}"),
    }
    assert!(matches!(
        results[6],
        Err(StoreError::Conflict("client_id_reused", _))
    ));
    assert_eq!(seq(7), (g2, 2, true));
    assert_eq!(seq(8), (g1, 4, true));

    // Stored exactly that; seqs gapless; senders' read positions moved to their last.
    let (rows, _) = store.history(g1, None, 100).await.expect("history");
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["earlier", "a", "c", "e"]);
    let (rows, _) = store.history(g2, None, 100).await.expect("history");
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        store
            .membership(g1, ann)
            .await
            .expect("member")
            .last_read_seq,
        4
    );
    assert_eq!(
        store
            .membership(g1, ben)
            .await
            .expect("member")
            .last_read_seq,
        3
    );
    assert_eq!(
        store
            .membership(g2, ben)
            .await
            .expect("member")
            .last_read_seq,
        2
    );
    assert_eq!(
        store
            .membership(g2, ann)
            .await
            .expect("member")
            .last_read_seq,
        0
    );
    store.close().await;
}

/// On a full SQLite database a statement can fail in two ways: SQLite undoes only the
/// statement (multi-row inserts: the transaction stays open) or the whole transaction
/// (single-row inserts). Whichever happens, no write may be answered `Ok` unless it is
/// committed: here batches of two meet a database with room for one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_never_answers_ok_for_an_uncommitted_message() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    let cap_bytes: u64 = 1024 * 1024;
    let store = Store::connect_with(
        &url,
        &StoreOptions {
            sqlite_max_bytes: cap_bytes,
        },
    )
    .await
    .expect("sqlite");
    let ann = store
        .create_user(NewUser {
            username: "ann",
            email: "ann@example.org",
            display_name: "ann",
            password_hash: "x",
            admin: false,
            invite: None,
        })
        .await
        .expect("user")
        .id;
    let group = store.create_group(ann, "g", &[]).await.expect("group");

    // Our own connection, without the cap: grow the file to the cap with a ballast.
    let mut side = sqlx::SqliteConnection::connect(&url).await.expect("side");
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut side)
        .await
        .expect("page size");
    let cap_pages = i64::try_from(cap_bytes).expect("cap") / page_size;
    side.execute("CREATE TABLE ballast (b BLOB NOT NULL)")
        .await
        .expect("ballast");
    loop {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut side)
            .await
            .expect("page count");
        if pages >= cap_pages {
            break;
        }
        sqlx::query("INSERT INTO ballast (b) VALUES (randomblob(3000))")
            .execute(&mut side)
            .await
            .expect("grow");
    }

    let body = "m".repeat(3000);
    let mut acked: Vec<String> = Vec::new();
    let mut refused = 0;
    for round in 0..8 {
        // Room for about one more message: free one ballast page.
        side.execute("DELETE FROM ballast WHERE rowid = (SELECT max(rowid) FROM ballast)")
            .await
            .unwrap_or_else(|e| panic!("round {round}: the store holds the database: {e}"));
        let ids = [format!("a{round}"), format!("b{round}")];
        let batch = [
            text(group, ann, &body, Some(&ids[0])),
            text(group, ann, &body, Some(&ids[1])),
        ];
        for (id, result) in ids.iter().zip(store.insert_messages(&batch).await) {
            match result {
                Ok(_) => acked.push(id.clone()),
                Err(StoreError::Full(_)) => refused += 1,
                Err(other) => panic!("{id}: expected Full, got {other}"),
            }
        }
    }
    assert!(refused > 0, "the cap did not bite");
    let committed: Vec<String> = sqlx::query_scalar("SELECT client_id FROM messages ORDER BY seq")
        .fetch_all(&mut side)
        .await
        .expect("read");
    assert_eq!(committed, acked, "answered Ok = committed");
    side.close().await.expect("close");
    store.close().await;
}

/// Emails stored before emails were NFKC-normalized (as typed, compared by plain
/// lowercase) are normalized once at start-up (data step of migration 0009); one that
/// would become another account's email is left as it is and reported, never merged.
async fn emails_stored_before_nfkc_are_normalized_once_and_clashes_left_alone(backend: Backend) {
    let (store, db, dir) = open(backend).await;
    // As an older server stored them: `create_user` keeps the email it is given.
    let legacy = |username: &'static str, email: &'static str| {
        let store = store.clone();
        async move {
            store
                .create_user(NewUser {
                    username,
                    email,
                    display_name: username,
                    password_hash: "x",
                    admin: false,
                    invite: None,
                })
                .await
                .expect("user")
                .id
        }
    };
    let ann = legacy("ann", "\u{ff41}\u{ff4e}\u{ff4e}@example.org").await; // ａｎｎ
    let al1 = legacy("al1", "alice@example.org").await;
    let al2 = legacy("al2", "\u{ff41}lice@Example.org").await; // ａlice
    let cat = legacy("cat", "Cat@example.org").await;
    // The step ran when the store opened (no accounts then): let it run again.
    let url = match &db {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("t.db").display()),
    };
    sqlx::any::install_default_drivers();
    let mut side = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("side");
    sqlx::query("DELETE FROM data_steps WHERE name = 'emails_nfkc'")
        .execute(&mut side)
        .await
        .expect("forget the step");

    let clashes = store.normalize_legacy_emails().await.expect("normalized");
    assert_eq!(
        clashes,
        [chatapp_server::store::EmailClash {
            user_id: al2,
            email: "\u{ff41}lice@Example.org".to_owned(),
            normalized: "alice@Example.org".to_owned(),
            other_user_id: al1,
        }]
    );
    let email_of = |login: &'static str| {
        let store = store.clone();
        async move {
            store
                .user_by_login(login)
                .await
                .expect("lookup")
                .map(|u| (u.id, u.email))
        }
    };
    assert_eq!(
        email_of("ann@example.org").await,
        Some((ann, "ann@example.org".to_owned()))
    );
    assert_eq!(
        email_of("alice@example.org").await,
        Some((al1, "alice@example.org".to_owned()))
    );
    assert_eq!(
        email_of("\u{ff41}lice@example.org").await,
        Some((al2, "\u{ff41}lice@Example.org".to_owned())),
        "the clash is left as it was"
    );
    assert_eq!(
        email_of("cat@example.org").await,
        Some((cat, "Cat@example.org".to_owned()))
    );
    // Once: the clash is not reported again.
    assert!(
        store
            .normalize_legacy_emails()
            .await
            .expect("again")
            .is_empty()
    );
    store.close().await;
}
