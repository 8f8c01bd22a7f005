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

// ---- one instance, and the window where it was left ----------------------------------

/// The desktop the app runs in: Xvfb with a window manager (openbox, which keeps
/// `_NET_ACTIVE_WINDOW` and minimized state) and a session bus (where the single-instance
/// plugin finds the running app).
struct Desktop {
    display: String,
    bus: String,
    home: tempfile::TempDir,
    runtime: tempfile::TempDir,
    _wm: Daemon,
    _bus: Daemon,
    _x: Daemon,
}

impl Desktop {
    fn start() -> Desktop {
        require("Xvfb", "xvfb");
        require("openbox", "openbox");
        require("wmctrl", "wmctrl");
        require("xdotool", "xdotool");
        require("xprop", "x11-utils");
        require("dbus-daemon", "dbus");
        let (x, display) = xvfb();
        let home = private_dir();
        let runtime = private_dir();
        let (bus_daemon, bus) = support::session_bus(runtime.path());
        // Without its minimize animation, which moves the frame for a moment.
        let rc = runtime.path().join("openbox-rc.xml");
        std::fs::write(
            &rc,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<openbox_config xmlns="http://openbox.org/3.4/rc">
  <theme><animateIconify>no</animateIconify></theme>
</openbox_config>
"#,
        )
        .expect("openbox config");
        let mut wm = Command::new("openbox");
        wm.arg("--sm-disable")
            .arg("--config-file")
            .arg(&rc)
            .env("DISPLAY", &display)
            .env("HOME", home.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let wm = Daemon::spawn("openbox", &mut wm);
        let d = Desktop {
            display,
            bus,
            home,
            runtime,
            _wm: wm,
            _bus: bus_daemon,
            _x: x,
        };
        support::eventually(Duration::from_secs(30), "openbox starting", || {
            d.x("wmctrl", &["-m"]).is_some()
        });
        d
    }

    /// Runs an X tool on this display; its output when it succeeded.
    fn x(&self, tool: &str, args: &[&str]) -> Option<String> {
        let out = Command::new(tool)
            .args(args)
            .env("DISPLAY", &self.display)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn app(&self) -> Command {
        let mut app = Command::new(env!("CARGO_BIN_EXE_chatapp-desktop"));
        app.env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("HOME", self.home.path())
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_DATA_HOME", self.home.path().join(".local/share"))
            .env("XDG_CACHE_HOME", self.home.path().join(".cache"))
            .env("NO_AT_BRIDGE", "1")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        app
    }

    /// The ids of the top-level windows titled exactly `ChatApp`.
    fn chatapp_windows(&self) -> Vec<u64> {
        self.x("wmctrl", &["-l"])
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let id = parts.next()?;
                let title: Vec<&str> = parts.skip(2).collect();
                if title.join(" ") == "ChatApp" {
                    parse_id(id)
                } else {
                    None
                }
            })
            .collect()
    }

    fn wait_for_window(&self) -> u64 {
        let mut found = Vec::new();
        support::eventually(Duration::from_secs(60), "the ChatApp window", || {
            found = self.chatapp_windows();
            !found.is_empty()
        });
        found[0]
    }

    fn prop(&self, window: Option<u64>, name: &str) -> String {
        let id = window.map(|w| format!("{w:#x}"));
        let mut args = match &id {
            Some(id) => vec!["-id", id.as_str()],
            None => vec!["-root"],
        };
        args.push(name);
        self.x("xprop", &args).unwrap_or_default()
    }

    fn minimized(&self, window: u64) -> bool {
        self.prop(Some(window), "_NET_WM_STATE")
            .contains("_NET_WM_STATE_HIDDEN")
    }

    fn active(&self) -> Option<u64> {
        let line = self.prop(None, "_NET_ACTIVE_WINDOW");
        line.rsplit(' ').next().and_then(|id| parse_id(id.trim()))
    }

    /// The client area's size and the frame's top-left corner (what `wmctrl -e` sets).
    fn geometry(&self, window: u64) -> Option<(i64, i64, i64, i64)> {
        let info = self.x("xwininfo", &["-id", &format!("{window:#x}")])?;
        let field = |name: &str| -> Option<i64> {
            info.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
        };
        let extents = self.prop(Some(window), "_NET_FRAME_EXTENTS");
        let e: Vec<i64> = extents
            .split('=')
            .nth(1)
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_default();
        let (left, top) = (
            e.first().copied().unwrap_or(0),
            e.get(2).copied().unwrap_or(0),
        );
        Some((
            field("Absolute upper-left X:")? - left,
            field("Absolute upper-left Y:")? - top,
            field("Width:")?,
            field("Height:")?,
        ))
    }
}

fn parse_id(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

#[test]
fn one_instance_and_the_window_is_where_it_was_left() {
    let desk = Desktop::start();
    let mut first = Daemon::spawn("chatapp-desktop", &mut desk.app());
    let window = desk.wait_for_window();

    // Moved and resized by the person (through the window manager), then minimized.
    let id = format!("{window:#x}");
    assert!(
        desk.x("wmctrl", &["-i", "-r", &id, "-e", "0,120,90,900,640"])
            .is_some()
    );
    support::eventually(Duration::from_secs(20), "the window resized", || {
        matches!(desk.geometry(window), Some((_, _, 900, 640)))
    });
    // (Asked again while the app is still starting: it may show its window once more.)
    support::eventually(Duration::from_secs(20), "the window minimized", || {
        desk.minimized(window) || {
            desk.x("xdotool", &["windowminimize", &id]);
            std::thread::sleep(Duration::from_millis(200));
            desk.minimized(window)
        }
    });

    // A second launch hands over to the first and ends; the first comes to the front.
    let mut second = desk.app().spawn().expect("second launch");
    let status = support::wait_for(&mut second, Duration::from_secs(60), "the second launch");
    assert!(status.success(), "the second launch failed: {status}");
    support::eventually(
        Duration::from_secs(20),
        "the first window shown and focused",
        || !desk.minimized(window) && desk.active() == Some(window),
    );
    assert_eq!(desk.chatapp_windows(), vec![window], "one window only");
    assert_eq!(
        desk.geometry(window),
        Some((120, 90, 900, 640)),
        "brought forward where it was"
    );
    assert!(
        first.child.try_wait().expect("try_wait").is_none(),
        "the first app is still running"
    );

    // Closed by the person: the app ends normally and keeps where its window was.
    assert!(desk.x("wmctrl", &["-i", "-c", &id]).is_some());
    let status = support::wait_for(&mut first.child, Duration::from_secs(60), "closing the app");
    assert!(status.success(), "the app did not end normally: {status}");
    let state = desk
        .home
        .path()
        .join(".config/org.chatapp.desktop/.window-state.json");
    assert!(state.is_file(), "no window state at {}", state.display());

    // Started again: the same size, in the same place (within the frame's rounding).
    let mut again = Daemon::spawn("chatapp-desktop", &mut desk.app());
    let window = desk.wait_for_window();
    // (The window manager places a new window first; the app then moves it back.)
    let mut geometry: Option<(i64, i64, i64, i64)> = None;
    let restored = std::time::Instant::now();
    while !matches!(geometry, Some((x, y, 900, 640)) if (x - 120).abs() <= 40 && (y - 90).abs() <= 40)
    {
        assert!(
            restored.elapsed() < Duration::from_secs(20),
            "not restored: the window is at {geometry:?} (x, y, width, height), left at 120, 90, 900 × 640"
        );
        std::thread::sleep(Duration::from_millis(50));
        geometry = desk.geometry(window);
    }
    // And it draws its screen there (kept to look at).
    let shot = artifacts().join("window-restored.png");
    support::eventually(Duration::from_secs(60), "the restored window drawn", || {
        screenshot(&desk.display, &shot) && primary_pixels(&shot) > 2000
    });
    eprintln!("screenshot: {}", shot.display());
    assert!(
        desk.x("wmctrl", &["-i", "-c", &format!("{window:#x}")])
            .is_some()
    );
    let status = support::wait_for(&mut again.child, Duration::from_secs(60), "closing the app");
    assert!(status.success(), "{status}");
}
