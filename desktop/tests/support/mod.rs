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

/// Starts a private D-Bus session bus (one that starts no services by itself) with its
/// configuration in `dir`; returns it and its address.
pub fn session_bus(dir: &Path) -> (Daemon, String) {
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
