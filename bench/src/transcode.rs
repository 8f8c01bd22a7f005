//! The `transcode` scenario: chat delivery at a fixed send rate, first alone, then while
//! 16 MB WAV voice messages are uploaded back to back (each one decoded, measured and
//! encoded to Ogg Opus by the server's media workers): what the uploads cost the chat,
//! and how long each upload took from its first byte to its answer.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chatapp_client::{Api, Upload};

use crate::{load, server::Server, setup::Setup};

/// The voice file: 16 MB (the upload limit, 1 KiB under) of 48 kHz mono 16-bit WAV,
/// about 2 min 55 s of a tone whose loudness rises and falls like speech, with noise.
fn wav_16mb() -> Vec<u8> {
    const RATE: u32 = 48_000;
    let data_len = 16 * 1024 * 1024 - 1024 - 44;
    let frames = data_len / 2;
    let mut out = Vec::with_capacity(44 + data_len);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::try_from(36 + data_len).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&u32::try_from(data_len).unwrap_or(0).to_le_bytes());
    let mut noise = 0x2545_f491_u32;
    for i in 0..frames {
        let t = i as f32 / RATE as f32;
        // Syllables: loudness at 4 Hz, phrases at 0.3 Hz.
        let envelope = (0.5 + 0.5 * (t * 4.0 * std::f32::consts::TAU).sin())
            * (0.6 + 0.4 * (t * 0.3 * std::f32::consts::TAU).sin());
        noise ^= noise << 13;
        noise ^= noise >> 17;
        noise ^= noise << 5;
        let hiss = (noise as f32 / u32::MAX as f32 - 0.5) * 0.05;
        let voice = (t * 180.0 * std::f32::consts::TAU).sin() * 0.5
            + (t * 360.0 * std::f32::consts::TAU).sin() * 0.2;
        let sample = ((voice * envelope + hiss) * 20_000.0) as i16;
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// Chat at `rate` sends/s without uploads, then with `uploaders` uploading the 16 MB
/// WAV back to back into a conversation of their own.
pub async fn run(
    server: &Server,
    setup: &Setup,
    rate: f64,
    step_secs: u64,
    warmup_secs: u64,
    uploaders: usize,
) -> anyhow::Result<()> {
    let wav = Arc::new(wav_16mb());
    // A pair of accounts of their own, so that the chat's groups get no voice messages.
    let (uploader, _) = chatapp_testkit::register(Api::new(&server.base)?, "uploader").await;
    let (_, listener) = chatapp_testkit::register(Api::new(&server.base)?, "listener").await;
    let conversation = uploader.direct_conversation(listener).await?.id;
    // One upload alone first: the time it takes on an idle server.
    let started = Instant::now();
    let alone = uploader
        .upload_voice(conversation, Upload::wav(wav.as_ref().clone()))
        .await?;
    let alone_secs = started.elapsed().as_secs_f64();
    let kept = alone.attachment.map(|a| a.size).unwrap_or_default();
    println!(
        "\n## transcode: one {} byte WAV alone: answered in {alone_secs:.2} s, kept as {kept} bytes of Ogg Opus ({:.0}x smaller)",
        wav.len(),
        wav.len() as f64 / kept.max(1) as f64
    );

    // Alone and with uploads, twice in turn: the first step after set-up also pays for
    // the database settling, which is no upload's doing.
    let mut rows = Vec::new();
    for round in 1..=2 {
        println!("\n### round {round}: chat alone at {rate:.0} sends/s");
        let quiet = load::run(server, setup, &[rate], step_secs, warmup_secs, f64::MAX).await?;
        rows.push((format!("{round}: chat alone"), quiet, Vec::new()));
        println!(
            "\n### round {round}: chat at {rate:.0} sends/s while {uploaders} uploader(s) send 16 MB WAVs back to back"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..uploaders {
            let (api, wav, stop) = (uploader.clone(), Arc::clone(&wav), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                let mut took = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match api
                        .upload_voice(conversation, Upload::wav(wav.as_ref().clone()))
                        .await
                    {
                        Ok(_) => took.push(started.elapsed()),
                        Err(err) => {
                            eprintln!("# upload failed: {err}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                took
            }));
        }
        let busy = load::run(server, setup, &[rate], step_secs, warmup_secs, f64::MAX).await?;
        stop.store(true, Ordering::Relaxed);
        let mut took: Vec<Duration> = Vec::new();
        for task in tasks {
            took.extend(task.await?);
        }
        took.sort();
        rows.push((format!("{round}: chat + 16 MB WAV uploads"), busy, took));
    }
    println!(
        "\n| run | sends/s | delivery p99 ms | uploads done | upload median s | upload max s |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, steps, took) in &rows {
        let (sends, p99) = steps.first().map_or((0.0, 0.0), |s| (s.sends, s.p99_ms));
        let secs = |d: Option<&Duration>| d.map_or(0.0, Duration::as_secs_f64);
        println!(
            "| {name} | {sends:.0} | {p99:.2} | {} | {:.2} | {:.2} |",
            took.len(),
            secs(took.get(took.len() / 2)),
            secs(took.last())
        );
    }
    Ok(())
}
