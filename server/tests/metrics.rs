//! `--metrics-listen`: the server binary serves Prometheus metrics on an address of its
//! own (never on the public one), and a Prometheus text parser reads what happened:
//! messages sent, events delivered, acknowledgements timed, uploads by outcome, open
//! WebSockets and the database pools. On SQLite and on PostgreSQL.

mod support;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use chatapp_client::{Api, Upload};
use prometheus_parse::{Sample, Scrape, Value};
use support::{Backend, Reaped, TestDatabase, Ws};

on_both_backends!(metrics_are_served_apart_and_count_what_happened);

/// Starts the binary with metrics on a port of their own; it, the public base URL and the
/// metrics URL, from the two lines it prints.
fn start(database_url: Option<&str>, data_dir: &std::path::Path) -> (Reaped, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatapp-server"));
    cmd.args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("CHATAPP_DATA_DIR", data_dir)
        .stdout(Stdio::piped());
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = Reaped(cmd.spawn().expect("the server starts"));
    let stdout = child.0.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut next = |prefix: &str| -> String {
        let line = lines.next().expect("a line").expect("utf-8 on stdout");
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected `{prefix}…`, got {line:?}"))
            .to_owned()
    };
    let base = next("listening on ");
    let metrics = next("metrics on ");
    std::thread::spawn(move || for _ in lines {});
    (child, base, metrics)
}

async fn scrape(url: &str) -> Vec<Sample> {
    let resp = reqwest::get(url).await.expect("scraped");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = resp.text().await.expect("text");
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"));
    scrape.samples
}

/// The value of the sample `name` whose labels include `labels`.
fn value<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> &'a Value {
    samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| &s.value)
        .unwrap_or_else(|| panic!("no {name} {labels:?} in {samples:#?}"))
}

/// A counter's or a gauge's number.
fn number(value: &Value) -> f64 {
    match value {
        Value::Counter(n) | Value::Gauge(n) | Value::Untyped(n) => *n,
        other => panic!("not a number: {other:?}"),
    }
}

async fn metrics_are_served_apart_and_count_what_happened(backend: Backend) {
    let db = match backend {
        Backend::Postgres => Some(TestDatabase::create().await),
        Backend::Sqlite => None,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, base, metrics_url) = start(db.as_ref().map(|d| d.url.as_str()), dir.path());
    assert!(metrics_url.ends_with("/metrics"), "{metrics_url}");
    assert_ne!(
        metrics_url.trim_end_matches("/metrics"),
        base,
        "metrics on an address of their own"
    );

    let (ann, _) = chatapp_testkit::register(Api::new(&base).expect("client"), "ann").await;
    let (ben, ben_id) = chatapp_testkit::register(Api::new(&base).expect("client"), "ben").await;
    let conversation = ann.direct_conversation(ben_id).await.expect("direct").id;
    // Ben listens (registered once his resume is answered).
    let (mut ws, _) = Ws::connect_and_resume(&base, &ben.token().expect("token"), &[]).await;
    for i in 0..3 {
        ann.send_message(conversation, &format!("hello {i}"), Some(&format!("m{i}")))
            .await
            .expect("sent");
        assert_eq!(
            ws.next_of("message").await["message"]["body"],
            format!("hello {i}")
        );
    }
    // A retry is not a second message.
    ann.send_message(conversation, "hello 0", Some("m0"))
        .await
        .expect("retried");
    // A refused upload (not audio).
    let refused = ann
        .upload_voice(
            conversation,
            Upload::new(vec![7_u8; 1000], "voice.ogg", "audio/ogg"),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");

    let samples = scrape(&metrics_url).await;
    assert_eq!(
        number(value(&samples, "chatapp_messages_sent_total", &[])),
        3.0
    );
    assert_eq!(
        number(value(&samples, "chatapp_websocket_connections", &[])),
        1.0
    );
    assert!(number(value(&samples, "chatapp_events_delivered_total", &[])) >= 3.0);
    assert_eq!(
        number(value(
            &samples,
            "chatapp_uploads_total",
            &[("kind", "voice"), ("outcome", "refused")]
        )),
        1.0
    );
    // Every acknowledgement timed (the retry too: it was answered), in buckets.
    let Value::Histogram(buckets) = value(&samples, "chatapp_message_ack_seconds", &[]) else {
        panic!("the acknowledgement latency is not a histogram");
    };
    let all = buckets
        .iter()
        .find(|b| b.less_than == f64::INFINITY)
        .expect("a +Inf bucket");
    assert_eq!(all.count, 4.0);
    assert!(
        buckets.iter().any(|b| b.less_than == 0.01),
        "a 10 ms bucket"
    );
    let pools: HashMap<String, f64> = samples
        .iter()
        .filter(|s| s.metric == "chatapp_db_connections")
        .map(|s| {
            (
                format!(
                    "{}/{}",
                    s.labels.get("pool").unwrap_or("?"),
                    s.labels.get("state").unwrap_or("?")
                ),
                number(&s.value),
            )
        })
        .collect();
    let expected_pools: &[&str] = match backend {
        Backend::Sqlite => &["read/idle", "read/busy", "write/idle", "write/busy"],
        Backend::Postgres => &["shared/idle", "shared/busy"],
    };
    for key in expected_pools {
        assert!(pools.contains_key(*key), "{key} in {pools:?}");
    }
    assert!(pools.values().sum::<f64>() >= 1.0, "{pools:?}");

    // Not on the public address.
    let public = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    assert!(!public.contains("chatapp_messages_sent_total"), "{public}");

    // The socket closed: the gauge follows.
    ws.close().await;
    for _ in 0..100 {
        let samples = scrape(&metrics_url).await;
        if number(value(&samples, "chatapp_websocket_connections", &[])) == 0.0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the closed socket is still counted");
}
