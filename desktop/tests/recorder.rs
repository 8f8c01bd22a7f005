//! The recorder against a real capture device: a PulseAudio daemon with a null sink whose
//! monitor is the default source, ALSA's default routed to it, and speech from espeak-ng
//! played into the sink with paplay while the recorder runs.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatapp_desktop::recorder::{EndReason, RecorderConfig, RecorderEvent, Recording};
use support::{Daemon, PulseRig, loud_span, private_dir, read_wav, rerun_self, rms, wait_for};

const SPEECH: &str = "hello from the test rig, one two three";

struct Rig {
    dir: PathBuf,
    speech: PathBuf,
}

impl Rig {
    fn from_env() -> Option<Rig> {
        let dir = PathBuf::from(std::env::var_os("CHATAPP_TEST_RIG")?);
        Some(Rig {
            speech: dir.join("speech.wav"),
            dir,
        })
    }

    fn play(&self) -> Daemon {
        Daemon::spawn(
            "paplay",
            Command::new("paplay")
                .arg("--device=rig_sink")
                .arg(&self.speech)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
        )
    }
}

type Events = Arc<Mutex<Vec<RecorderEvent>>>;

fn record(cfg: RecorderConfig) -> (Recording, Events) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let rec = Recording::start(cfg, move |e| sink.lock().expect("events").push(e))
        .expect("the recorder opens the default input");
    (rec, events)
}

fn speech_reference(rig: &Rig) -> (f32, f32) {
    let (speech, rate) = read_wav(&rig.speech);
    let (a, b) = loud_span(&speech, 0.02).expect("espeak produced sound");
    let secs = (b - a) as f32 / rate as f32;
    (secs, rms(&speech[a..=b]))
}

#[test]
#[ignore = "run by records_speech_from_a_real_capture_device inside its PulseAudio rig"]
fn recorder_child() {
    let Some(rig) = Rig::from_env() else { return };
    let (speech_secs, speech_rms) = speech_reference(&rig);
    eprintln!("speech: {speech_secs:.2} s loud span, rms {speech_rms:.3}");

    // 1. Record while the speech plays: duration and energy match.
    let path = rig.dir.join("plain.wav");
    let opening = Instant::now();
    let (rec, events) = record(RecorderConfig::new(&path));
    let started = Instant::now();
    eprintln!("opened in {:.2} s", opening.elapsed().as_secs_f32());
    std::thread::sleep(Duration::from_millis(300));
    let mut player = rig.play();
    wait_for(&mut player.child, Duration::from_secs(20), "paplay");
    std::thread::sleep(Duration::from_millis(400));
    let wall = started.elapsed();
    let done = rec.finish().expect("finish");
    assert_eq!(done.ended, None);
    let (samples, rate) = read_wav(&path);
    let secs = samples.len() as f32 / rate as f32;
    eprintln!(
        "plain: {secs:.2} s recorded in {:.2} s, {} Hz",
        wall.as_secs_f32(),
        rate
    );
    assert!((done.duration_ms as f32 / 1000.0 - secs).abs() < 0.05);
    assert!(
        secs > speech_secs,
        "recorded {secs} s, speech is {speech_secs} s"
    );
    let (a, b) = loud_span(&samples, 0.02).expect("the speech was captured");
    let heard = (b - a) as f32 / rate as f32;
    let heard_rms = rms(&samples[a..=b]);
    eprintln!(
        "plain: loud span {heard:.2} s from {:.2} s, rms {heard_rms:.3}",
        a as f32 / rate as f32
    );
    assert!(
        secs <= wall.as_secs_f32() + 0.1 && secs > wall.as_secs_f32() - 0.6,
        "{secs} vs {wall:?}"
    );
    assert!(
        (heard - speech_secs).abs() < 0.3,
        "heard {heard} s of {speech_secs} s"
    );
    assert!(
        heard_rms > speech_rms * 0.5 && heard_rms < speech_rms * 2.0,
        "rms {heard_rms} vs {speech_rms}"
    );
    assert!(
        rms(&samples[..a.min(rate as usize / 10)]) < 0.005,
        "silence before the speech"
    );
    let ev = events.lock().expect("events");
    let levels: Vec<(f32, u64)> = ev
        .iter()
        .filter_map(|e| match e {
            RecorderEvent::Level { level, elapsed_ms } => Some((*level, *elapsed_ms)),
            _ => None,
        })
        .collect();
    assert!(levels.len() > 10, "level events: {}", levels.len());
    assert!(
        levels.iter().any(|(l, _)| *l > 0.1),
        "a loud level was reported"
    );
    assert!(
        levels.windows(2).all(|w| w[1].1 >= w[0].1),
        "elapsed time only grows"
    );
    drop(ev);

    // 2. Pause in the middle of the speech: the paused span is left out.
    let path = rig.dir.join("paused.wav");
    let started = Instant::now();
    let (rec, events) = record(RecorderConfig::new(&path));
    let mut player = rig.play();
    std::thread::sleep(Duration::from_millis(800));
    rec.pause();
    let paused_at = Instant::now();
    wait_for(&mut player.child, Duration::from_secs(20), "paplay");
    std::thread::sleep(Duration::from_millis(300));
    let paused_for = paused_at.elapsed();
    rec.resume();
    std::thread::sleep(Duration::from_millis(700));
    let wall = started.elapsed();
    let done = rec.finish().expect("finish");
    let (samples, rate) = read_wav(&path);
    let secs = samples.len() as f32 / rate as f32;
    let expected = (wall - paused_for).as_secs_f32();
    eprintln!(
        "paused: {secs:.2} s recorded, {expected:.2} s expected, paused {:.2} s",
        paused_for.as_secs_f32()
    );
    assert!(
        (secs - expected).abs() < 0.35,
        "recorded {secs} s, expected about {expected} s"
    );
    assert!(done.duration_ms as f32 / 1000.0 < wall.as_secs_f32() - 1.0);
    let (a, b) = loud_span(&samples, 0.02).expect("some speech before the pause");
    let heard = (b - a) as f32 / rate as f32;
    assert!(
        heard < speech_secs - 0.8,
        "only the part before the pause: {heard} s"
    );
    assert!(rms(&samples[b + 1..]) < 0.005, "silence after resuming");
    let ev = events.lock().expect("events");
    assert!(ev.iter().any(|e| matches!(e, RecorderEvent::Paused { .. })));
    assert!(
        ev.iter()
            .any(|e| matches!(e, RecorderEvent::Resumed { .. }))
    );
    drop(ev);

    // 3. A size limit ends the recording by itself, the file stays within it.
    let path = rig.dir.join("limit.wav");
    let mut cfg = RecorderConfig::new(&path);
    cfg.max_bytes = 44 + 2 * 24_000; // half a second at 48 kHz
    let (rec, events) = record(cfg);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !events
        .lock()
        .expect("events")
        .iter()
        .any(|e| matches!(e, RecorderEvent::Ended { .. }))
    {
        assert!(
            Instant::now() < deadline,
            "the size limit did not stop the recording"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let done = rec.finish().expect("finish");
    assert_eq!(done.ended, Some(EndReason::SizeLimit));
    let size = std::fs::metadata(&path).expect("wav").len();
    assert!(size <= 44 + 2 * 24_000, "{size} bytes");
    assert!(done.duration_ms >= 400, "{} ms", done.duration_ms);

    // 4. Cancel removes the file.
    let path = rig.dir.join("cancelled.wav");
    let (rec, _) = record(RecorderConfig::new(&path));
    std::thread::sleep(Duration::from_millis(300));
    rec.cancel();
    assert!(!path.exists());

    // 5. The device disappears mid-recording (the sound server dies): what was recorded
    //    is kept and the end is reported; a new recording then fails with a clear message.
    let pulse_pid: i32 = std::env::var("CHATAPP_TEST_PULSE_PID")
        .expect("pid")
        .parse()
        .expect("pid");
    let path = rig.dir.join("lost.wav");
    let (rec, events) = record(RecorderConfig::new(&path));
    std::thread::sleep(Duration::from_millis(800));
    let status = Command::new("kill")
        .args(["-KILL", &pulse_pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !events
        .lock()
        .expect("events")
        .iter()
        .any(|e| matches!(e, RecorderEvent::Ended { .. }))
    {
        assert!(Instant::now() < deadline, "a lost device was not noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let done = rec.finish().expect("what was recorded is kept");
    assert_eq!(done.ended, Some(EndReason::DeviceLost));
    assert!(done.message.as_deref().unwrap_or("").contains("kept"));
    let (samples, rate) = read_wav(&path);
    eprintln!("lost: {:.2} s kept", samples.len() as f32 / rate as f32);
    assert!(samples.len() as f32 / rate as f32 > 0.5);
    let err = Recording::start(RecorderConfig::new(rig.dir.join("none.wav")), |_| {})
        .err()
        .expect("no device now");
    eprintln!("no device: {err}");
    assert!(err.to_string().contains("microphone"), "{err}");
}

#[test]
fn records_speech_from_a_real_capture_device() {
    let home = private_dir();
    let runtime = private_dir();
    let work = tempfile::tempdir().expect("tempdir");
    let rig = PulseRig::start(home.path(), runtime.path(), work.path(), SPEECH);
    let mut child = rerun_self("recorder_child");
    rig.env(&mut child);
    child
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("CHATAPP_TEST_RIG", work.path())
        .env("CHATAPP_TEST_PULSE_PID", rig.pulse.pid().to_string())
        .stdin(Stdio::null());
    let mut child = child.spawn().expect("test child");
    let status = wait_for(&mut child, Duration::from_secs(120), "the recorder test");
    drop(rig);
    assert!(status.success(), "the recorder test failed: {status}");
}
