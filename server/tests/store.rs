//! The storage interface directly, on SQLite and PostgreSQL: the group-commit batch
//! answers each message exactly as a single insert would.

mod support;

use chatapp_protocol::MessageKind;
use chatapp_server::store::{
    FileMeta, ImageMeta, NewMessage, NewUser, Store, StoreError, StoreOptions,
};
use support::{Backend, TestDatabase};

on_both_backends!(
    batch_insert_answers_each_message_like_a_single_insert,
    emails_stored_before_nfkc_are_normalized_once_and_clashes_left_alone,
    messages_stored_before_photos_survive_the_photo_migration,
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

/// A database an older server wrote (the migrations before photos, 0001–0012) with text,
/// a voice message and a reply in it: migration 0013, which rebuilds `messages` and
/// `files` on SQLite to widen their CHECKs, keeps every row under its id, search still
/// finds them, the reply still points, and a photo then gets a new id.
async fn messages_stored_before_photos_survive_the_photo_migration(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = match backend {
        Backend::Postgres => Some(TestDatabase::create().await),
        Backend::Sqlite => None,
    };
    let (url, folder) = match &db {
        Some(db) => (db.url.clone(), "postgres"),
        None => (
            format!("sqlite://{}", dir.path().join("t.db").display()),
            "sqlite",
        ),
    };
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(folder);
    let mut before_photos = sqlx::migrate::Migrator::new(migrations)
        .await
        .expect("migrations");
    before_photos.migrations = before_photos
        .migrations
        .iter()
        .filter(|m| m.version < 13)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert_eq!(before_photos.migrations.len(), 12);
    sqlx::any::install_default_drivers();
    let create = if db.is_some() { "" } else { "?mode=rwc" };
    let old = sqlx::AnyPool::connect(&format!("{url}{create}"))
        .await
        .expect("old database");
    before_photos.run(&old).await.expect("migrations 1-12");
    let now = 1_700_000_000_000i64;
    let mut users = Vec::new();
    for name in ["ann", "ben"] {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, username_lower, email, email_lower, display_name, \
             display_name_lower, password_hash, created_at) VALUES ($1, $1, $2, $2, $1, $1, 'x', $3) \
             RETURNING id",
        )
        .bind(name)
        .bind(format!("{name}@example.org"))
        .bind(now)
        .fetch_one(&old)
        .await
        .expect("user");
        users.push(id);
    }
    let (ann, ben) = (users[0], users[1]);
    let conv: i64 = sqlx::query_scalar(
        "INSERT INTO conversations (kind, direct_key, last_seq, created_at, last_activity_at) \
         VALUES ('direct', $1, 3, $2, $2) RETURNING id",
    )
    .bind(format!("{ann}:{ben}"))
    .bind(now)
    .fetch_one(&old)
    .await
    .expect("conversation");
    for user in [ann, ben] {
        sqlx::query(
            "INSERT INTO members (conversation_id, user_id, joined_at) VALUES ($1, $2, $3)",
        )
        .bind(conv)
        .bind(user)
        .bind(now)
        .execute(&old)
        .await
        .expect("member");
    }
    let voice_file = "f0".repeat(16);
    sqlx::query(
        "INSERT INTO files (id, kind, owner_id, conversation_id, mime, size, created_at) \
         VALUES ($1, 'voice', $2, $3, 'audio/ogg; codecs=opus', 1234, $4)",
    )
    .bind(&voice_file)
    .bind(ben)
    .bind(conv)
    .bind(now)
    .execute(&old)
    .await
    .expect("file");
    let insert = |seq: i64, sender: i64, kind: &'static str, body: &'static str| {
        let old = old.clone();
        let voice_file = voice_file.clone();
        async move {
            let voice = kind == "voice";
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO messages (conversation_id, seq, sender_id, kind, body, created_at, \
                 file_id, file_mime, file_size, file_duration_ms, file_waveform) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(conv)
            .bind(seq)
            .bind(sender)
            .bind(kind)
            .bind(body)
            .bind(now + seq)
            .bind(voice.then_some(voice_file))
            .bind(voice.then_some("audio/ogg; codecs=opus"))
            .bind(voice.then_some(1234i64))
            .bind(voice.then_some(1000i64))
            .bind(voice.then_some("00ff"))
            .fetch_one(&old)
            .await
            .expect("message")
        }
    };
    let first = insert(1, ann, "text", "a picnic by the lake").await;
    let voice = insert(2, ben, "voice", "").await;
    let reply = insert(3, ben, "text", "lovely lake").await;
    sqlx::query("UPDATE messages SET reply_to_id = $1 WHERE id = $2")
        .bind(first)
        .bind(reply)
        .execute(&old)
        .await
        .expect("reply");
    old.close().await;

    // The server of today opens it: 0013 runs.
    let store = Store::connect(&url).await.expect("migrated");
    let (rows, _) = store.history(conv, None, 10).await.expect("history");
    let kept: Vec<(i64, i64, &str, &str)> = rows
        .iter()
        .map(|r| (r.id, r.seq, r.kind.as_str(), r.body.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            (first, 1, "text", "a picnic by the lake"),
            (voice, 2, "voice", ""),
            (reply, 3, "text", "lovely lake"),
        ]
    );
    assert_eq!(rows[1].file_id.as_deref(), Some(voice_file.as_str()));
    assert_eq!(rows[1].file_duration_ms, Some(1000));
    assert_eq!(rows[1].file_waveform.as_deref(), Some("00ff"));
    assert!(
        rows.iter()
            .all(|r| r.thumb_id.is_none() && r.file_width.is_none())
    );
    assert_eq!(rows[2].reply.as_ref().map(|r| r.id), Some(first));
    assert_eq!(store.file(&voice_file).await.expect("file").kind, "voice");
    let found = store
        .search(ben, &["lake".to_owned()], None, 10)
        .await
        .expect("search");
    assert_eq!(
        found.iter().map(|r| r.id).collect::<Vec<_>>(),
        [reply, first]
    );

    // A photo now: a new id, both files recorded, its caption searchable.
    let file = FileMeta {
        id: "a1".repeat(16),
        mime: "image/jpeg".to_owned(),
        size: 5000,
        duration_ms: None,
        waveform: None,
        width: Some(800),
        height: Some(600),
        thumbnail: Some(ImageMeta {
            id: "b2".repeat(16),
            mime: "image/jpeg".to_owned(),
            size: 900,
            width: 480,
            height: 360,
        }),
    };
    let (photo, created) = store
        .insert_message(&NewMessage {
            conversation_id: conv,
            sender_id: ann,
            kind: MessageKind::Photo,
            body: "the lake at noon",
            client_id: None,
            file: Some(&file),
            reply_to_id: None,
            mentions: &[],
        })
        .await
        .expect("photo");
    assert!(created && photo.id > reply && photo.seq == 4);
    assert_eq!(photo.kind, "photo");
    assert_eq!(
        (photo.file_width, photo.file_height),
        (Some(800), Some(600))
    );
    assert_eq!(photo.thumb_id.as_deref(), Some("b2".repeat(16).as_str()));
    assert_eq!(
        (photo.thumb_width, photo.thumb_height),
        (Some(480), Some(360))
    );
    assert_eq!(
        store.file(&"b2".repeat(16)).await.expect("thumb").kind,
        "photo"
    );
    let found = store
        .search(ben, &["lake".to_owned()], None, 10)
        .await
        .expect("search");
    assert_eq!(
        found.iter().map(|r| r.id).collect::<Vec<_>>(),
        [photo.id, reply, first]
    );

    if db.is_none() {
        // The rebuilt tables are whole: no dangling reference, no broken index.
        let check = sqlx::AnyPool::connect(&url).await.expect("check");
        let dangling: Vec<String> =
            sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&check)
                .await
                .expect("fk check");
        assert!(dangling.is_empty(), "{dangling:?}");
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&check)
            .await
            .expect("integrity");
        assert_eq!(integrity, "ok");
        // Kinds the CHECK does not name are refused as before.
        assert!(
            sqlx::query("UPDATE messages SET kind = 'sticker' WHERE id = $1")
                .bind(first)
                .execute(&check)
                .await
                .is_err()
        );
        check.close().await;
    }
    store.close().await;
}
