//! The app in a real window under Xvfb: it starts and shows its first screen (here the
//! server choice, since the profile is fresh). The screenshot is kept in
//! `desktop/test-artifacts/` (gitignored) to look at; the time until the screen is drawn
//! is printed.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Daemon, private_dir, require, xvfb};

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// How many pixels of `shot` have Bootstrap's primary blue (#0d6efd): the buttons of the
/// first screen. Zero while the window is blank.
fn primary_pixels(shot: &Path) -> usize {
    let out = Command::new("convert")
        .arg(shot)
        .args([
            "-fuzz", "3%", "-fill", "black", "+opaque", "#0d6efd", "-fill", "white", "-opaque",
            "#0d6efd",
        ])
        .args(["-format", "%[fx:mean*w*h]", "info:"])
        .output()
        .expect("convert");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .unwrap_or(0.0) as usize
}

fn screenshot(display: &str, to: &Path) -> bool {
    Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(to)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn starts_and_shows_the_first_screen() {
    require("Xvfb", "xvfb");
    require("import", "imagemagick");
    require("xwininfo", "x11-utils");
    let (_x, display) = xvfb();
    let home = private_dir();
    let runtime = private_dir();
    let started = Instant::now();
    let mut app = Command::new(env!("CARGO_BIN_EXE_chatapp-desktop"));
    app.env("DISPLAY", &display)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_DATA_HOME", home.path().join(".local/share"))
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut app = Daemon::spawn("chatapp-desktop", &mut app);

    let shot = artifacts().join("first-screen.png");
    let mut drawn = None;
    while started.elapsed() < Duration::from_secs(60) {
        assert!(
            app.child.try_wait().expect("try_wait").is_none(),
            "the app exited"
        );
        if screenshot(&display, &shot) && primary_pixels(&shot) > 2000 {
            drawn = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let drawn = drawn.expect("the first screen was not drawn within 60 s");
    eprintln!(
        "first screen drawn after {:.2} s; screenshot: {}",
        drawn.as_secs_f32(),
        shot.display()
    );
    let tree = Command::new("xwininfo")
        .args(["-display", &display, "-root", "-tree"])
        .output()
        .expect("xwininfo");
    assert!(
        String::from_utf8_lossy(&tree.stdout).contains("\"ChatApp\""),
        "no window titled ChatApp"
    );
    app.stop();
}
