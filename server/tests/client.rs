//! `chatapp-client` against the real server process, on SQLite and PostgreSQL: sign-in,
//! live delivery, a crash (SIGKILL) and restart mid-stream, the outbox across an outage,
//! a voice upload with progress, and the end of a session.

mod support;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chatapp_client::{
    Backoff, ClientError, ConnectionState, Event, OutboxEvent, Realtime, RealtimeOptions,
    StatusCode, Upload, UploadProgress,
    protocol::{Message, MessageKind, ServerEvent},
};
use support::{
    Backend, EVENT_WAIT, TestServer,
    media::{WavFormat, wav_of},
};
use tokio::sync::mpsc::Receiver;

/// Quick reconnection, so a test does not wait out the default backoff.
fn fast() -> RealtimeOptions {
    RealtimeOptions {
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(800),
            factor: 2.0,
            jitter: 0.5,
        },
        ..RealtimeOptions::default()
    }
}

/// The next event `pick` maps to `Some`, skipping others (which go to `skipped`).
async fn next_matching<T>(
    events: &mut Receiver<Event>,
    skipped: &mut Vec<Event>,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + EVENT_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => match pick(&event) {
                Some(found) => return found,
                None => skipped.push(event),
            },
            Ok(None) => panic!("events ended while waiting for {what}; saw {skipped:#?}"),
            Err(_) => panic!("no {what} within {EVENT_WAIT:?}; saw {skipped:#?}"),
        }
    }
}

async fn until_live(events: &mut Receiver<Event>) {
    next_matching(events, &mut Vec::new(), "live", |e| {
        matches!(e, Event::State(ConnectionState::Live)).then_some(())
    })
    .await;
}

/// Collects `count` delivered messages (events before and between go to `skipped`).
async fn messages(
    events: &mut Receiver<Event>,
    count: usize,
    skipped: &mut Vec<Event>,
) -> Vec<Message> {
    let mut out = Vec::new();
    while out.len() < count {
        out.push(
            next_matching(events, skipped, "a message", |e| match e {
                Event::Server(ServerEvent::Message { message }) => Some(message.clone()),
                _ => None,
            })
            .await,
        );
    }
    out
}

/// Collects `count` acknowledgements of outbox messages.
async fn acks(
    events: &mut Receiver<Event>,
    count: usize,
    skipped: &mut Vec<Event>,
) -> Vec<(String, Message)> {
    let mut out = Vec::new();
    while out.len() < count {
        out.push(
            next_matching(events, skipped, "an ack", |e| match e {
                Event::Outbox(OutboxEvent::Acked { client_id, message }) => {
                    Some((client_id.clone(), message.clone()))
                }
                _ => None,
            })
            .await,
        );
    }
    out
}

/// Whatever arrives within `wait`.
async fn drain(events: &mut Receiver<Event>, wait: Duration) -> Vec<Event> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        out.push(event);
    }
    out
}

fn bodies(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.body.clone()).collect()
}

/// Asserts that `messages` are seqs `first..` of one conversation with no gap or repeat.
#[track_caller]
fn assert_contiguous(messages: &[Message], first: i64) {
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    let expected: Vec<i64> = (first..first + seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "each seq once, in order");
}

async fn signs_in_and_receives_live(backend: Backend) {
    // Pings every second: the client must answer them to stay connected.
    let server = TestServer::start_with(backend, &["--ws-ping-secs", "1"]).await;
    let (ann, _) = server.register_api("ann").await;
    let (_, ben_id) = server.register_api("ben").await;

    let wrong = server.api().login("ben", "not the password").await;
    match wrong {
        Err(ClientError::Api { status, code, .. }) => {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(code, "bad_credentials");
        }
        other => panic!("expected a typed refusal, got {other:?}"),
    }
    let ben = server.api();
    let auth = ben.login("ben", "password-ben").await.expect("sign in");
    assert_eq!(auth.user.id, ben_id);
    assert_eq!(ben.me().await.expect("me").username, "ben");

    let chat = ann.direct_conversation(ben_id).await.expect("direct");
    let (ben_rt, mut ben_events) = Realtime::start(ben.clone(), fast());
    let (ann_rt, mut ann_events) = Realtime::start(ann.clone(), fast());
    until_live(&mut ben_events).await;
    until_live(&mut ann_events).await;

    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(ann_rt.send(chat.id, format!("ws {i}")));
    }
    for i in 0..3 {
        ann.send_message(chat.id, &format!("rest {i}"), None)
            .await
            .expect("send over REST");
    }
    let mut skipped = Vec::new();
    let got = messages(&mut ben_events, 8, &mut skipped).await;
    assert_contiguous(&got, 1);
    // The two paths interleave; each keeps its own order.
    let of = |prefix: &str| -> Vec<String> {
        bodies(&got)
            .into_iter()
            .filter(|b| b.starts_with(prefix))
            .collect()
    };
    assert_eq!(
        of("ws "),
        (0..5).map(|i| format!("ws {i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        of("rest "),
        (0..3).map(|i| format!("rest {i}")).collect::<Vec<_>>()
    );
    let acked = acks(&mut ann_events, 5, &mut Vec::new()).await;
    assert_eq!(
        acked.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        sent
    );
    assert!(acked.iter().all(|(id, m)| m.client_id.as_ref() == Some(id)));
    assert!(ann_rt.pending().is_empty());
    assert_eq!(ben_rt.cursors().get(&chat.id), Some(&8));

    // Well past 2.5 ping intervals: still the same live connection, nothing doubled.
    let later = drain(&mut ben_events, Duration::from_secs(4)).await;
    assert!(
        !later.iter().any(|e| matches!(
            e,
            Event::State(_) | Event::Server(ServerEvent::Message { .. })
        )),
        "no reconnection and no repeats: {later:#?}"
    );
    assert_eq!(ben_rt.state(), ConnectionState::Live);

    ann_rt.shutdown().await;
    ben_rt.shutdown().await;
    assert_eq!(ben_rt.state(), ConnectionState::Stopped);
}

async fn server_killed_mid_stream_resumes_with_nothing_lost_or_doubled(backend: Backend) {
    let mut server = TestServer::start_binary(backend, &[]).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let chat = ann.direct_conversation(ben_id).await.expect("direct");
    let (ben_rt, mut ben_events) = Realtime::start(ben.clone(), fast());
    let (ann_rt, mut ann_events) = Realtime::start(ann.clone(), fast());
    until_live(&mut ben_events).await;
    until_live(&mut ann_events).await;

    const TOTAL: usize = 40;
    let mut client_ids = Vec::new();
    let mut ben_skipped = Vec::new();
    let mut got = Vec::new();
    for i in 0..TOTAL {
        client_ids.push(ann_rt.send(chat.id, format!("m{i:02}")));
        tokio::time::sleep(Duration::from_millis(15)).await;
        if i == 14 {
            // Some of the first 15 are delivered, some maybe in flight: crash now.
            got.extend(messages(&mut ben_events, 5, &mut ben_skipped).await);
            server.kill9();
        }
        if i == 24 {
            // Ten more queued while the server is down.
            server.restart_on_same_port();
        }
    }
    let rest = TOTAL - got.len();
    got.extend(messages(&mut ben_events, rest, &mut ben_skipped).await);
    assert_contiguous(&got, 1);
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("m{i:02}")).collect();
    assert_eq!(bodies(&got), expected, "every message once, in order");
    assert!(
        ben_skipped
            .iter()
            .any(|e| matches!(e, Event::State(ConnectionState::Reconnecting { .. }))),
        "the receiver saw the drop: {ben_skipped:#?}"
    );

    let acked = acks(&mut ann_events, TOTAL, &mut Vec::new()).await;
    let acked_ids: Vec<String> = acked.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        acked_ids.iter().collect::<HashSet<_>>().len(),
        TOTAL,
        "each acked once"
    );
    assert_eq!(
        acked_ids.iter().collect::<HashSet<_>>(),
        client_ids.iter().collect::<HashSet<_>>()
    );
    assert!(ann_rt.pending().is_empty());

    // Nothing more arrives, and the server stored each message once.
    let after = drain(&mut ben_events, Duration::from_millis(500)).await;
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Event::Server(ServerEvent::Message { .. }))),
        "no repeats: {after:#?}"
    );
    let history = ben
        .history(chat.id, None, Some(100))
        .await
        .expect("history");
    assert_eq!(bodies(&history.messages), expected);
    assert_eq!(ben_rt.cursors().get(&chat.id), Some(&(TOTAL as i64)));

    ann_rt.shutdown().await;
    ben_rt.shutdown().await;
}

async fn outbox_queued_while_down_is_stored_and_acked_once(backend: Backend) {
    let mut server = TestServer::start_binary(backend, &[]).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let chat = ann.direct_conversation(ben_id).await.expect("direct");
    let (ann_rt, mut ann_events) = Realtime::start(ann.clone(), fast());
    until_live(&mut ann_events).await;

    server.kill9();
    let mut skipped = Vec::new();
    next_matching(&mut ann_events, &mut skipped, "the drop", |e| {
        matches!(e, Event::State(ConnectionState::Reconnecting { .. })).then_some(())
    })
    .await;
    let queued: Vec<String> = (0..5)
        .map(|i| ann_rt.send(chat.id, format!("offline {i}")))
        .collect();
    let doomed = ann_rt.send(999_999, "to nowhere");
    assert_eq!(ann_rt.pending().len(), 6);
    // Let it fail to reconnect a few times while down.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.restart_on_same_port();

    let acked = acks(&mut ann_events, 5, &mut skipped).await;
    assert_eq!(
        acked.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        queued
    );
    let failed = next_matching(&mut ann_events, &mut skipped, "the refusal", |e| match e {
        Event::Outbox(OutboxEvent::Failed { pending, code, .. }) => {
            Some((pending.client_id.clone(), code.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(failed, (doomed, "not_found".to_owned()));
    assert!(ann_rt.pending().is_empty());
    let later = drain(&mut ann_events, Duration::from_millis(500)).await;
    assert!(
        !later.iter().any(|e| matches!(e, Event::Outbox(_))),
        "each acked once: {later:#?}"
    );

    // Stored once each; a retry of a client_id returns the stored message.
    let history = ben
        .history(chat.id, None, Some(100))
        .await
        .expect("history");
    let stored: Vec<Option<String>> = history
        .messages
        .iter()
        .map(|m| m.client_id.clone())
        .collect();
    assert_eq!(stored, queued.iter().cloned().map(Some).collect::<Vec<_>>());
    let again = ann
        .send_message(chat.id, "offline 0", Some(&queued[0]))
        .await
        .expect("retried send");
    assert_eq!(again.id, acked[0].1.id);
    assert_eq!(
        ben.history(chat.id, None, Some(100))
            .await
            .expect("history")
            .messages
            .len(),
        5
    );
    ann_rt.shutdown().await;
}

async fn voice_upload_reaches_the_other_client_with_its_duration(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let chat = ann.direct_conversation(ben_id).await.expect("direct");
    let (ben_rt, mut ben_events) = Realtime::start(ben.clone(), fast());
    until_live(&mut ben_events).await;

    // 2.5 s of a 440 Hz tone, mono 16-bit 48 kHz: 240,000 bytes of samples.
    let samples: Vec<u8> = (0..120_000)
        .flat_map(|i| {
            let t = f64::from(i) / 48_000.0;
            (((t * 440.0 * std::f64::consts::TAU).sin() * 12_000.0) as i16).to_le_bytes()
        })
        .collect();
    let wav = wav_of(WavFormat::default(), &samples);
    let seen = Arc::new(Mutex::new(Vec::<UploadProgress>::new()));
    let (tx, progress) = tokio::sync::watch::channel(UploadProgress::default());
    let record = Arc::clone(&seen);
    let upload = Upload::wav(wav.clone())
        .client_id("voice-1")
        .on_progress(move |p| {
            record.lock().expect("progress").push(p);
            tx.send_replace(p);
        });
    let message = ann.upload_voice(chat.id, upload).await.expect("upload");
    let attachment = message.attachment.clone().expect("attachment");
    assert_eq!(attachment.duration_ms, Some(2500));
    let total = wav.len() as u64;
    assert_eq!(*progress.borrow(), UploadProgress { sent: total, total });
    let seen = seen.lock().expect("progress").clone();
    assert!(seen.len() >= 4, "progress as the body streams: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].sent <= w[1].sent));

    let got = messages(&mut ben_events, 1, &mut Vec::new()).await;
    assert_eq!(got[0].kind, MessageKind::Voice);
    let received = got[0].attachment.clone().expect("attachment");
    assert_eq!(received.duration_ms, Some(2500));
    // Kept as Ogg Opus, far smaller than the WAV sent.
    assert_eq!(received.mime, "audio/ogg; codecs=opus");
    assert!(received.size < total as i64 / 10, "{} bytes", received.size);
    let file = ben.download(&received.url).await.expect("download");
    assert_eq!(file.bytes.len() as i64, received.size);
    assert!(file.bytes.starts_with(b"OggS"));
    assert_eq!(file.status.as_u16(), 200);
    // A part, as a media element asks for it when seeking.
    let part = ben
        .download_range(&received.url, Some("bytes=100-1123"))
        .await
        .expect("range");
    assert_eq!(part.status.as_u16(), 206);
    assert_eq!(part.bytes.as_ref(), &file.bytes[100..1124]);
    let stored = file.bytes.len();
    assert_eq!(
        part.content_range.as_deref(),
        Some(format!("bytes 100-1123/{stored}").as_str())
    );
    let beyond = ben
        .download_range(&received.url, Some(&format!("bytes={}-", stored + 10)))
        .await
        .expect_err("a range past the end");
    assert_eq!(beyond.status().map(|s| s.as_u16()), Some(416));

    // The same client_id again: the stored message, not a second one.
    let again = ann
        .upload_voice(chat.id, Upload::wav(wav).client_id("voice-1"))
        .await
        .expect("retried upload");
    assert_eq!(again.id, message.id);
    let later = drain(&mut ben_events, Duration::from_millis(500)).await;
    assert!(
        !later
            .iter()
            .any(|e| matches!(e, Event::Server(ServerEvent::Message { .. }))),
        "stored once: {later:#?}"
    );
    ben_rt.shutdown().await;
}

async fn session_end_stops_reconnection(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let token = ann.token().expect("token");
    let (ann_rt, mut events) = Realtime::start(ann.clone(), fast());
    until_live(&mut events).await;

    // Signed out elsewhere (the same session): the server closes with 4001.
    ann.with_token(&token).logout().await.expect("logout");
    let mut skipped = Vec::new();
    let reason = next_matching(&mut events, &mut skipped, "the session end", |e| match e {
        Event::State(ConnectionState::SessionEnded { reason }) => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("4001"), "{reason}");
    assert!(
        !skipped
            .iter()
            .any(|e| matches!(e, Event::State(ConnectionState::Reconnecting { .. }))),
        "no reconnection before: {skipped:#?}"
    );
    // The task is over: the channel ends, nothing tries again.
    let started = Instant::now();
    let after = drain(&mut events, Duration::from_secs(2)).await;
    assert!(after.is_empty(), "nothing after the end: {after:#?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        ann_rt.state(),
        ConnectionState::SessionEnded { .. }
    ));

    // A token revoked while away ends it at the next connection (401), without retries.
    let (ben, _) = server.register_api("ben").await;
    let revoked = ben.with_token(&ben.token().expect("token"));
    ben.logout().await.expect("logout");
    let (ben_rt, mut ben_events) = Realtime::start(revoked, fast());
    let mut ben_skipped = Vec::new();
    next_matching(&mut ben_events, &mut ben_skipped, "the session end", |e| {
        matches!(e, Event::State(ConnectionState::SessionEnded { .. })).then_some(())
    })
    .await;
    assert!(
        !ben_skipped
            .iter()
            .any(|e| matches!(e, Event::State(ConnectionState::Reconnecting { .. }))),
        "{ben_skipped:#?}"
    );
    ann_rt.shutdown().await;
    ben_rt.shutdown().await;
}

on_both_backends!(
    signs_in_and_receives_live,
    server_killed_mid_stream_resumes_with_nothing_lost_or_doubled,
    outbox_queued_while_down_is_stored_and_acked_once,
    voice_upload_reaches_the_other_client_with_its_duration,
    session_end_stops_reconnection,
);
