//! Shared set-up for the desktop tests that need real daemons: each is started by the
//! test in its own temporary directories, its `Child` kept, and killed and waited for
//! at the end. A test that needs process-wide environment (HOME, XDG_RUNTIME_DIR, a
//! D-Bus session) runs its body in a fresh copy of this test binary (`rerun_self`),
//! since the environment of a running test process cannot be changed safely.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A process that is killed and reaped when dropped.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
}

impl Daemon {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Daemon {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon { name, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it now (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fails the test with the Debian package to install when `bin` is not on PATH.
pub fn require(bin: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{bin}` is missing: install the Debian package `{package}` (see .ci/run)"
    );
}

/// Waits for `child` up to `limit`; kills it (and fails) when it takes longer.
pub fn wait_for(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cmd` until it succeeds or `limit` passes.
pub fn retry_until_ok(mut cmd: impl FnMut() -> Command, limit: Duration, what: &str) {
    let start = Instant::now();
    loop {
        let out = cmd().stdout(Stdio::null()).stderr(Stdio::null()).status();
        if matches!(out, Ok(s) if s.success()) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what} did not succeed within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The command that runs the ignored test `name` of this same test binary, alone.
pub fn rerun_self(name: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

/// A private directory (mode 0700), as XDG_RUNTIME_DIR must be.
pub fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    d
}

/// Every regular file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file()
                && let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(p);
            }
        }
    }
    hits
}

/// Every regular file under `dir`.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// Starts Xvfb on a free display; returns it and the display name (`:N`).
pub fn xvfb() -> (Daemon, String) {
    let mut cmd = Command::new("Xvfb");
    cmd.args([
        "-displayfd",
        "1",
        "-screen",
        "0",
        "1280x800x24",
        "-nolisten",
        "tcp",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut d = Daemon::spawn("Xvfb", &mut cmd);
    let out = d.child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("display number");
    (d, format!(":{}", line.trim()))
}

/// Writes the configuration of a private D-Bus session bus that starts no services by
/// itself (no service directories): no unlock prompt, no notification server, nothing
/// but what the test starts. Returns its path.
pub fn bus_config(dir: &Path) -> PathBuf {
    let conf = dir.join("session-bus.conf");
    std::fs::write(
        &conf,
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
    )
    .expect("bus config");
    conf
}

/// Starts a private D-Bus session bus ([`bus_config`]) with its configuration in `dir`;
/// returns it and its address.
pub fn session_bus(dir: &Path) -> (Daemon, String) {
    let conf = bus_config(dir);
    let mut cmd = Command::new("dbus-daemon");
    cmd.arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut d = Daemon::spawn("dbus-daemon", &mut cmd);
    let mut address = String::new();
    BufReader::new(d.child.stdout.take().expect("stdout"))
        .read_line(&mut address)
        .expect("bus address");
    (d, address.trim().to_owned())
}

/// Polls `check` until it holds, failing after `limit`.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asks `check` every 200 ms until it answers `Some`, at most `limit`: what it found.
pub async fn eventually_async<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts dunst, a real notification server, on `display` and the bus at `bus`, keeping
/// notifications until they are clicked or closed; returns once it answers on the bus.
pub fn dunst(display: &str, bus: &str, dir: &Path) -> Daemon {
    require("dunst", "dunst");
    require("dunstctl", "dunst");
    let dunstrc = dir.join("dunstrc");
    std::fs::write(
        &dunstrc,
        "[global]\nfont=Monospace 10\nwidth=300\nheight=100\norigin=top-right\noffset=10x10\n\
         idle_threshold=0\nhistory_length=50\n\
         [urgency_low]\ntimeout=0\n[urgency_normal]\ntimeout=0\n[urgency_critical]\ntimeout=0\n",
    )
    .expect("dunstrc");
    let mut cmd = Command::new("dunst");
    cmd.arg("-conf")
        .arg(&dunstrc)
        .env("DISPLAY", display)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let d = Daemon::spawn("dunst", &mut cmd);
    eventually(
        Duration::from_secs(30),
        "dunst owning org.freedesktop.Notifications",
        || {
            Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", bus)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
                .unwrap_or(false)
        },
    );
    d
}

/// A real capture device for the recorder: a PulseAudio daemon (for `home` and `runtime`,
/// as HOME and XDG_RUNTIME_DIR) with a null sink `rig_sink` whose monitor is the default
/// source, ALSA's default routed to it (`$HOME/.asoundrc`), and espeak-ng speech in
/// `work/speech.wav` to play into it. Both daemons end when it is dropped.
pub struct PulseRig {
    pub pulse: Daemon,
    pub speech: PathBuf,
    home: PathBuf,
    runtime: PathBuf,
    _zeros: Daemon,
}

impl PulseRig {
    pub fn start(home: &Path, runtime: &Path, work: &Path, speech: &str) -> PulseRig {
        for (bin, pkg) in [
            ("pulseaudio", "pulseaudio"),
            ("pactl", "pulseaudio-utils"),
            ("paplay", "pulseaudio-utils"),
            ("pacat", "pulseaudio-utils"),
            ("arecord", "alsa-utils"),
            ("espeak-ng", "espeak-ng"),
        ] {
            require(bin, pkg);
        }
        assert!(
            Path::new("/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so").exists()
                || Path::new("/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so")
                    .exists(),
            "ALSA's pulse plugin is missing: install the Debian package `libasound2-plugins`"
        );
        let env = |c: &mut Command| {
            c.env("HOME", home)
                .env("XDG_RUNTIME_DIR", runtime)
                .env_remove("PULSE_SERVER")
                .env_remove("DBUS_SESSION_BUS_ADDRESS");
        };
        let mut pa = Command::new("pulseaudio");
        pa.args([
            "--daemonize=no",
            "--exit-idle-time=-1",
            "-n",
            "--load=module-native-protocol-unix",
            "--load=module-null-sink sink_name=rig_sink rate=48000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        env(&mut pa);
        let pulse = Daemon::spawn("pulseaudio", &mut pa);
        retry_until_ok(
            || {
                let mut c = Command::new("pactl");
                c.args(["set-default-source", "rig_sink.monitor"]);
                env(&mut c);
                c
            },
            Duration::from_secs(15),
            "pactl set-default-source",
        );
        // An idle null sink renders in large late blocks, so its monitor delivers in
        // bursts seconds behind. A stream of zeros asking for low latency keeps it steady,
        // as a microphone is.
        let mut zeros = Command::new("pacat");
        zeros
            .args([
                "--playback",
                "--device=rig_sink",
                "--latency-msec=20",
                "--raw",
            ])
            .stdin(std::fs::File::open("/dev/zero").expect("/dev/zero"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        env(&mut zeros);
        let zeros = Daemon::spawn("pacat", &mut zeros);
        std::fs::write(
            home.join(".asoundrc"),
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n",
        )
        .expect(".asoundrc");
        // The first capture stream after the daemon starts begins late: warm it up.
        let mut warm = Command::new("arecord");
        warm.args([
            "-q", "-D", "default", "-r", "48000", "-c", "1", "-f", "S16_LE", "-d", "1",
        ])
        .arg(work.join("warm-up.wav"));
        env(&mut warm);
        let mut warm = warm.spawn().expect("arecord");
        wait_for(&mut warm, Duration::from_secs(15), "arecord warm-up");
        let speech_path = work.join("speech.wav");
        let status = Command::new("espeak-ng")
            .arg("-w")
            .arg(&speech_path)
            .arg(speech)
            .status()
            .expect("espeak-ng");
        assert!(status.success());
        PulseRig {
            pulse,
            speech: speech_path,
            home: home.to_path_buf(),
            runtime: runtime.to_path_buf(),
            _zeros: zeros,
        }
    }

    /// The environment a process needs to reach this sound server.
    pub fn env(&self, c: &mut Command) {
        c.env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env_remove("PULSE_SERVER");
    }

    /// Plays the speech into the sink (the default source hears it); wait for the child.
    pub fn play(&self) -> Daemon {
        let mut cmd = Command::new("paplay");
        cmd.arg("--device=rig_sink")
            .arg(&self.speech)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        self.env(&mut cmd);
        Daemon::spawn("paplay", &mut cmd)
    }
}

/// Samples of a 16-bit WAV file as floats (mixed to mono), and its rate.
pub fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    wav_samples(hound::WavReader::open(path).expect("open wav"))
}

/// A served voice file (Ogg Opus) decoded by ffmpeg to the 16-bit WAV it plays as.
pub fn decoded_to_wav(file: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (input, output) = (dir.path().join("voice.opus"), dir.path().join("voice.wav"));
    std::fs::write(&input, file).expect("write");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&input)
        .args(["-c:a", "pcm_s16le"])
        .arg(&output)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg decodes the served file");
    std::fs::read(&output).expect("decoded")
}

/// The same for a WAV in memory.
pub fn read_wav_bytes(bytes: &[u8]) -> (Vec<f32>, u32) {
    wav_samples(hound::WavReader::new(std::io::Cursor::new(bytes)).expect("a WAV"))
}

fn wav_samples<R: std::io::Read>(mut r: hound::WavReader<R>) -> (Vec<f32>, u32) {
    let spec = r.spec();
    assert_eq!(spec.bits_per_sample, 16);
    let ch = usize::from(spec.channels);
    let raw: Vec<f32> = r
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect();
    let mono = raw
        .chunks(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect();
    (mono, spec.sample_rate)
}

/// (first, last) index of a sample louder than `threshold`, if any.
pub fn loud_span(samples: &[f32], threshold: f32) -> Option<(usize, usize)> {
    let first = samples.iter().position(|s| s.abs() > threshold)?;
    let last = samples.iter().rposition(|s| s.abs() > threshold)?;
    Some((first, last))
}

pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// A ChatApp server for the test, in this process (chatapp-testkit) on SQLite in a
/// temporary data dir, listening on a free port of 127.0.0.1; `base` is its URL. It is
/// stopped when dropped (or by `stop()`, to take it away mid-test).
pub async fn start_server() -> chatapp_testkit::TestServer {
    chatapp_testkit::Launch::new(chatapp_testkit::Backend::Sqlite)
        .start()
        .await
}
