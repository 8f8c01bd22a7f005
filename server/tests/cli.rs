//! The operator's subcommands against a real database while a server runs on it:
//! `backup FILE` taken during a stream of sends is a whole database holding every
//! message acknowledged before it started, with the list of the blob files it refers to;
//! on PostgreSQL it points to `pg_dump`.

mod support;

use std::{
    collections::HashSet,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
};

use chatapp_client::{Api, Upload};
use sqlx::{ConnectOptions, sqlite::SqliteConnectOptions};
use support::{Backend, ClientEvent, Reaped, TestDatabase, Ws};

on_both_backends!(the_users_subcommands_act_on_the_running_servers_accounts);

const BIN: &str = env!("CARGO_BIN_EXE_chatapp-server");

/// The server binary on the SQLite database in `data_dir`; it and its base URL.
fn serve(data_dir: &Path) -> (Reaped, String) {
    serve_on(data_dir, None)
}

/// The server binary on `database_url` (default: SQLite in `data_dir`).
fn serve_on(data_dir: &Path, database_url: Option<&str>) -> (Reaped, String) {
    let mut cmd = Command::new(BIN);
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--send-rate-per-user",
        "0",
        "--ws-frames-per-second",
        "100000",
        "--ws-frames-burst",
        "100000",
    ])
    .env("CHATAPP_DATA_DIR", data_dir)
    .stdout(Stdio::piped());
    if database_url.is_none() {
        cmd.env_remove("DATABASE_URL");
    }
    let mut child = Reaped(cmd.spawn().expect("the server starts"));
    let stdout = child.0.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

/// Runs `chatapp-server --data-dir DIR ARGS…`; its exit status and stdout.
fn operator(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .env_remove("DATABASE_URL")
        .env("CHATAPP_DATA_DIR", data_dir)
        .args(args)
        .output()
        .expect("the subcommand runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_sends_holds_every_message_acknowledged_before_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (_server, base) = serve(&data);
    let (ann, _) = chatapp_testkit::register(Api::new(&base).expect("client"), "ann").await;
    let group = ann.create_group("backed up", &[]).await.expect("group").id;
    // A voice message: a blob the backup refers to.
    ann.upload_voice(group, Upload::wav(support::media::wav(48_044)))
        .await
        .expect("voice");

    // A stream of sends over the WebSocket; every acknowledgement recorded as it comes.
    let (mut ws, _) = Ws::connect_and_resume(&base, &ann.token().expect("token"), &[]).await;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = tokio::spawn({
        let acked = Arc::clone(&acked);
        let stop = stop.clone();
        async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                // A few in flight at a time, then their acknowledgements.
                for _ in 0..5 {
                    ws.send(&ClientEvent::Send {
                        conversation_id: group,
                        client_id: format!("s{n}"),
                        body: format!("message {n}"),
                        reply_to_id: None,
                    })
                    .await;
                    n += 1;
                }
                for _ in 0..5 {
                    let ack = ws.next_of("ack").await;
                    let id = ack["client_id"].as_str().expect("client_id").to_owned();
                    acked.lock().expect("lock").insert(id);
                }
            }
            ws.close().await;
            n
        }
    });
    while acked.lock().expect("lock").len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let before: HashSet<String> = acked.lock().expect("lock").clone();
    let file = dir.path().join("backup.db");
    let file_arg = file.to_str().expect("utf-8 path").to_owned();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking({
        let data = data.clone();
        move || operator(&data, &["backup", &file_arg, "--json"])
    })
    .await
    .expect("joined");
    stop.cancel();
    let sent = sender.await.expect("the sender");
    assert!(ok, "backup failed: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(report["users"], 1);
    assert_eq!(report["blobs"], 1);
    let after = acked.lock().expect("lock").len();
    assert!(after > before.len(), "sends went on during the backup");

    // The snapshot: whole, with every message acknowledged before it began.
    let mut copy = SqliteConnectOptions::new()
        .filename(&file)
        .read_only(true)
        .connect()
        .await
        .expect("the backup opens as a database");
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut copy)
        .await
        .expect("checked");
    assert_eq!(check, "ok");
    let stored: HashSet<String> =
        sqlx::query_scalar("SELECT client_id FROM messages WHERE client_id IS NOT NULL")
            .fetch_all(&mut copy)
            .await
            .expect("messages")
            .into_iter()
            .collect();
    let missing: Vec<&String> = before.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, not in it: {missing:?}"
    );
    assert_eq!(
        report["messages"].as_i64().expect("a count"),
        i64::try_from(stored.len()).expect("fits") + 1,
        "the text messages and the voice message"
    );
    assert!(stored.len() <= sent, "nothing invented");
    // The blob list names the voice message's file, which exists in the data dir.
    let listed = std::fs::read_to_string(format!("{}.blobs", file.display())).expect("the list");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(data.join(lines[0]).is_file(), "{} is not a file", lines[0]);

    // A backup never overwrites: the same file again is refused.
    let again = file.to_str().expect("utf-8").to_owned();
    let (ok, _, stderr) = operator(&data, &["backup", &again]);
    assert!(!ok);
    assert!(stderr.contains("exists already"), "{stderr}");
}

#[test]
fn backup_on_postgresql_points_to_pg_dump() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .env("CHATAPP_DATA_DIR", dir.path())
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )
        .args(["backup", "x.db"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(!dir.path().join("x.db").exists());
}

/// `chatapp-server users …` with `DATABASE_URL` (or the data dir), `stdin` as its input;
/// its exit status, stdout and stderr.
fn users_cli(
    data_dir: &Path,
    database_url: Option<&str>,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(BIN);
    cmd.env("CHATAPP_DATA_DIR", data_dir)
        .arg("users")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match database_url {
        Some(url) => cmd.env("DATABASE_URL", url),
        None => cmd.env_remove("DATABASE_URL"),
    };
    let mut child = cmd.spawn().expect("the subcommand runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect("it ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `chatapp-server invites …` with `DATABASE_URL` (or the data dir).
fn invites_cli(
    data_dir: &Path,
    database_url: Option<&str>,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.env("CHATAPP_DATA_DIR", data_dir)
        .arg("invites")
        .args(args);
    match database_url {
        Some(url) => cmd.env("DATABASE_URL", url),
        None => cmd.env_remove("DATABASE_URL"),
    };
    let out = cmd.output().expect("the subcommand runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON a `--json` subcommand printed.
#[track_caller]
fn json_of((ok, stdout, stderr): (bool, String, String)) -> serde_json::Value {
    assert!(ok, "failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

async fn the_users_subcommands_act_on_the_running_servers_accounts(backend: Backend) {
    let db = match backend {
        Backend::Postgres => Some(TestDatabase::create().await),
        Backend::Sqlite => None,
    };
    let url = db.as_ref().map(|d| d.url.clone());
    let url = url.as_deref();
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, base) = serve_on(dir.path(), url);
    let cli = |args: &[&str], stdin: &str| users_cli(dir.path(), url, args, stdin);

    // The first account is the admin, the second is not.
    let (ann, _) = chatapp_testkit::register(Api::new(&base).expect("client"), "ann").await;
    let (ben, _) = chatapp_testkit::register(Api::new(&base).expect("client"), "ben").await;
    assert!(ann.me().await.expect("me").is_admin);
    assert!(!ben.me().await.expect("me").is_admin);

    let listed = json_of(cli(&["list", "--json"], ""));
    let names: Vec<(&str, bool)> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|u| {
            (
                u["username"].as_str().expect("name"),
                u["admin"].as_bool().expect("admin"),
            )
        })
        .collect();
    assert_eq!(names, [("ann", true), ("ben", false)]);
    let (ok, human, _) = cli(&["list"], "");
    assert!(
        ok && human.contains("ann") && human.contains("[admin]"),
        "{human}"
    );

    // Create: an admin with the password given on stdin; another with one made for it.
    let cat = json_of(cli(
        &[
            "create",
            "cat",
            "--email",
            "cat@example.org",
            "--admin",
            "--password-stdin",
            "--json",
        ],
        "cat's long password\n",
    ));
    assert_eq!(cat[0]["admin"], true);
    assert!(
        cat[0].get("password").is_none(),
        "a given password is not printed"
    );
    let cat_api = Api::new(&base).expect("client");
    cat_api
        .login("cat", "cat's long password")
        .await
        .expect("cat signs in");
    assert!(cat_api.me().await.expect("me").is_admin);
    let dan = json_of(cli(
        &["create", "dan", "--email", "DAN@example.org", "--json"],
        "",
    ));
    let dan_password = dan[0]["password"]
        .as_str()
        .expect("a password made")
        .to_owned();
    assert!(dan_password.len() >= 16, "{dan_password}");
    Api::new(&base)
        .expect("client")
        .login("dan", &dan_password)
        .await
        .expect("dan signs in with it");
    // Refused, and nothing made: a taken name, a bad email, a short password.
    for (args, stdin, says) in [
        (
            &["create", "Cat", "--email", "c2@example.org"][..],
            "",
            "taken",
        ),
        (
            &["create", "eve", "--email", "not an email"][..],
            "",
            "email",
        ),
        (
            &[
                "create",
                "eve",
                "--email",
                "eve@example.org",
                "--password-stdin",
            ][..],
            "short\n",
            "8",
        ),
    ] {
        let (ok, _, stderr) = cli(args, stdin);
        assert!(!ok, "{args:?} was accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(
        json_of(cli(&["list", "--json"], ""))
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    // Reset a password: ben's session ends, the new password works, the old one not.
    let reset = json_of(cli(&["reset-password", "ben", "--json"], ""));
    let new_password = reset[0]["password"]
        .as_str()
        .expect("a password made")
        .to_owned();
    ben.me().await.expect_err("ben's session ended");
    let again = Api::new(&base).expect("client");
    again
        .login("ben", "password-ben")
        .await
        .expect_err("the old password");
    again
        .login("ben", &new_password)
        .await
        .expect("the new one");

    // Grant and revoke admin.
    json_of(cli(&["grant-admin", "ben", "--json"], ""));
    json_of(cli(&["revoke-admin", "ann", "--json"], ""));
    assert!(again.me().await.expect("me").is_admin);
    assert!(!ann.me().await.expect("me").is_admin);
    let (ok, _, stderr) = cli(&["grant-admin", "nobody"], "");
    assert!(!ok && stderr.contains("no account nobody"), "{stderr}");

    // Disable: dan's session ends and he cannot sign in; on PostgreSQL his open socket
    // closes with 4001 at once (the CLI tells the servers through the database; on SQLite
    // the server's next sweep, within a minute, closes it).
    let dan_api = Api::new(&base).expect("client");
    dan_api
        .login("dan", &dan_password)
        .await
        .expect("dan signs in");
    let mut dan_ws = Ws::connect(&base, &dan_api.token().expect("token")).await;
    let disabled = json_of(cli(&["disable", "dan", "--json"], ""));
    assert_eq!(disabled[0]["disabled"], true);
    if url.is_some() {
        assert_eq!(
            dan_ws.close_code().await,
            Some(4001),
            "closed on every instance"
        );
    }
    dan_api.me().await.expect_err("dan's session ended");
    let refused = Api::new(&base)
        .expect("client")
        .login("dan", &dan_password)
        .await
        .expect_err("disabled");
    assert!(refused.to_string().contains("disabled"), "{refused}");
    let (ok, human, _) = cli(&["list"], "");
    assert!(ok && human.contains("[disabled]"), "{human}");
    json_of(cli(&["enable", "dan", "--json"], ""));
    dan_api
        .login("dan", &dan_password)
        .await
        .expect("dan is back");

    // Invites: made (its link printed), listed, revoked; a sign-up needs one only when
    // the server's registration says so, but a revoked one is refused either way.
    let made = json_of(invites_cli(
        dir.path(),
        url,
        &["create", "--uses", "3", "--json"],
    ));
    let code = made[0]["code"].as_str().expect("code").to_owned();
    assert_eq!(
        (made[0]["max_uses"].as_i64(), made[0]["uses"].as_i64()),
        (Some(3), Some(0))
    );
    assert!(
        made[0]["link"]
            .as_str()
            .expect("link")
            .ends_with(&format!("#/invite/{code}")),
        "{made}"
    );
    let (ok, human, _) = invites_cli(dir.path(), url, &["create"]);
    assert!(ok && human.contains("#/invite/"), "{human}");
    let listed = json_of(invites_cli(dir.path(), url, &["list", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert_eq!(listed[1]["code"], code.as_str(), "newest first");
    let id = made[0]["id"].as_i64().expect("id").to_string();
    let revoked = json_of(invites_cli(dir.path(), url, &["revoke", &id, "--json"]));
    assert_eq!(revoked[0]["state"], "revoked");
    let (ok, _, stderr) = invites_cli(dir.path(), url, &["revoke", "999999"]);
    assert!(!ok && stderr.contains("no invite 999999"), "{stderr}");
    let (ok, _, stderr) = invites_cli(dir.path(), url, &["create", "--uses", "0"]);
    assert!(!ok && stderr.contains("uses"), "{stderr}");
    let eve = Api::new(&base).expect("client");
    let refused = eve
        .register(&chatapp_protocol::RegisterRequest {
            username: "eve".into(),
            email: "eve@example.org".into(),
            password: "password-eve".into(),
            display_name: None,
            invite: Some(code),
        })
        .await
        .expect_err("a revoked invite");
    assert!(refused.to_string().contains("invite"), "{refused}");

    // Every action recorded, by the CLI (no actor).
    let store_url = url.map_or_else(
        || format!("sqlite://{}", dir.path().join("chatapp.db").display()),
        str::to_owned,
    );
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&store_url)
        .await
        .expect("the database");
    let actions: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT action, actor_id FROM admin_actions ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .expect("actions");
    let by_cli = |action: &str| (action.to_owned(), None);
    assert_eq!(
        actions,
        [
            "create_user",
            "create_user",
            "reset_password",
            "grant_admin",
            "revoke_admin",
            "disable",
            "enable",
            "create_invite",
            "create_invite",
            "revoke_invite",
        ]
        .map(by_cli)
    );
}
