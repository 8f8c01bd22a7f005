//! The keychain through the app's own code against real stores: a Secret Service
//! (gnome-keyring-daemon, unlocked, inside a private D-Bus session) and the kernel keyring
//! (inside a fresh `keyctl session`). Store, read, replace, delete; the token never
//! appears in plain text in any file.

mod support;

use std::process::Stdio;
use std::time::Duration;

use chatapp_desktop::keychain::{Backend, Keychain, KeychainError};
use support::{all_files, files_containing, private_dir, require, rerun_self, wait_for};

/// The account (a server address) the child uses: unique per run, because the kernel
/// store also links its keys into the per-user persistent keyring, which outlives a
/// `keyctl session`.
fn server() -> String {
    std::env::var("CHATAPP_TEST_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

fn random_token(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("tok-{tag}-{nanos:x}-{}", std::process::id())
}

/// Runs in the re-executed binary, inside the daemons the parent test set up.
#[test]
#[ignore = "run by the keychain tests inside their daemons"]
fn keychain_child() {
    let Ok(expect) = std::env::var("CHATAPP_TEST_KEYCHAIN") else {
        return;
    };
    let server = server();
    let server = server.as_str();
    let first = std::env::var("CHATAPP_TEST_TOKEN_1").expect("token 1");
    let second = std::env::var("CHATAPP_TEST_TOKEN_2").expect("token 2");
    if expect == "seed" {
        Keychain::open()
            .expect("keychain")
            .save_token(server, &first)
            .expect("store before locking");
        return;
    }
    if expect == "locked" {
        locked_child(server, &first, &second);
        return;
    }
    if expect == "no-keyring" {
        // A Secret Service with no default keyring: nothing can be kept, and the message
        // says so rather than asking to unlock something that does not exist.
        let kc = Keychain::open().expect("keychain");
        assert_eq!(kc.backend(), Backend::SecretService);
        assert_eq!(kc.token(server).expect("nothing to read"), None);
        let err = kc
            .save_token(server, &first)
            .expect_err("nowhere to keep it");
        assert!(matches!(err, KeychainError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("no default keyring"), "{err}");
        return;
    }
    if expect == "missing" {
        // No Secret Service on this bus: a clear error for it, and the app falls back.
        let err = Keychain::open_backend(Backend::SecretService).expect_err("no Secret Service");
        assert!(matches!(err, KeychainError::Unavailable(_)), "{err:?}");
        assert!(
            err.to_string().contains("No keychain is available"),
            "{err}"
        );
        assert_eq!(
            Keychain::open().expect("fallback").backend(),
            Backend::Kernel
        );
        return;
    }
    let want = if expect == "kernel" {
        Backend::Kernel
    } else {
        Backend::SecretService
    };
    // The same choice the app makes at start-up.
    let kc = Keychain::open().expect("keychain");
    assert_eq!(kc.backend(), want);

    assert_eq!(kc.token(server).expect("read empty"), None);
    kc.save_token(server, &first).expect("store");
    assert_eq!(kc.token(server).expect("read"), Some(first.clone()));
    // A second server is a separate entry.
    kc.save_token(&format!("{server}/other"), "other")
        .expect("store other");
    kc.save_token(server, &second).expect("replace");
    assert_eq!(kc.token(server).expect("read"), Some(second.clone()));
    // A fresh handle (as after a restart) sees it too.
    let again = Keychain::open_backend(want).expect("reopen");
    assert_eq!(again.token(server).expect("read"), Some(second.clone()));
    assert_eq!(
        again.token(&format!("{server}/other")).expect("read"),
        Some("other".into())
    );
    kc.delete_token(server).expect("delete");
    assert_eq!(kc.token(server).expect("read deleted"), None);
    kc.delete_token(server).expect("deleting twice is fine");
    kc.delete_token(&format!("{server}/other"))
        .expect("delete other");
    if want == Backend::SecretService {
        // Leave the second token stored, so the parent can check that gnome-keyring's
        // files (gone with the test's HOME) do not hold it in plain text.
        kc.save_token(server, &second).expect("store again");
        assert_eq!(kc.token(server).expect("read"), Some(second));
    }
}

/// The Secret Service's default keyring is locked and its unlock prompt cannot be shown:
/// every call that needs the token says "locked" (at once, not after the app's wait).
fn locked_child(server: &str, first: &str, second: &str) {
    let kc = Keychain::open().expect("the Secret Service still answers");
    assert_eq!(kc.backend(), Backend::SecretService);
    let err = kc.token(server).expect_err("a locked keychain is not read");
    assert!(matches!(err, KeychainError::Locked), "{err:?}");
    assert!(err.to_string().contains("The keychain is locked"), "{err}");
    assert!(matches!(
        kc.save_token(server, second),
        Err(KeychainError::Locked)
    ));
    assert!(matches!(
        kc.save_token(&format!("{server}/new"), first),
        Err(KeychainError::Locked)
    ));
    assert!(matches!(
        kc.delete_token(server),
        Err(KeychainError::Locked)
    ));
    // Nothing to unlock for a server it never kept.
    assert_eq!(
        kc.token(&format!("{server}/never")).expect("no such entry"),
        None
    );
    assert!(!kc.is_stuck());
}

/// Runs `script` (which gets this test binary's child command as `$@`) in a private
/// session bus with gnome-keyring, and asserts it succeeds. Returns the HOME and
/// XDG_RUNTIME_DIR it ran with, for looking at what was written there.
fn in_secret_service(
    script: &str,
    phase_env: &[(&str, &str)],
    what: &str,
) -> (tempfile::TempDir, tempfile::TempDir) {
    require("dbus-run-session", "dbus");
    require("dbus-send", "dbus");
    require("gnome-keyring-daemon", "gnome-keyring");
    let home = private_dir();
    let runtime = private_dir();
    // A bus that can start nothing: no unlock prompt can appear, as for a keychain
    // without its prompter.
    let conf = support::bus_config(runtime.path());
    let exe = std::env::current_exe().expect("exe");
    let child_cmd = rerun_self("keychain_child");
    let mut cmd = std::process::Command::new("dbus-run-session");
    cmd.arg("--config-file")
        .arg(&conf)
        .args(["--", "sh", "-c", script, "sh"])
        .arg(&exe)
        .args(child_cmd.get_args())
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("XDG_DATA_HOME", home.path().join(".local/share"))
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("CHATAPP_KEYCHAIN")
        // Far longer than the parent waits: "locked" must come from the keychain, not
        // from the app giving up.
        .env("CHATAPP_KEYCHAIN_WAIT_SECS", "600")
        .env("CHATAPP_TEST_TOKEN_1", random_token("e"))
        .env("CHATAPP_TEST_TOKEN_2", random_token("f"))
        .stdin(Stdio::null());
    for (k, v) in phase_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("dbus-run-session");
    let status = wait_for(&mut child, Duration::from_secs(60), what);
    assert!(status.success(), "{what} failed: {status}");
    (home, runtime)
}

#[test]
fn a_locked_keychain_is_reported_as_locked() {
    // Unlocked, a token kept; then the default keyring locked through the Secret
    // Service's own Lock call, as the desktop does on screen lock.
    let script = r#"eval "$(printf test-password | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null
CHATAPP_TEST_KEYCHAIN=seed "$@" || exit 10
dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
  org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/aliases/default >/dev/null || exit 11
CHATAPP_TEST_KEYCHAIN=locked "$@""#;
    in_secret_service(
        script,
        &[("CHATAPP_TEST_SERVER", "http://locked.invalid")],
        "the locked keychain test",
    );
}

#[test]
fn a_secret_service_without_a_keyring_is_reported_clearly() {
    // gnome-keyring with a fresh HOME and no unlock: no "login" keyring exists.
    let script = r#"gnome-keyring-daemon --start --components=secrets </dev/null >/dev/null || exit 10
CHATAPP_TEST_KEYCHAIN=no-keyring "$@""#;
    in_secret_service(
        script,
        &[("CHATAPP_TEST_SERVER", "http://no-keyring.invalid")],
        "the no-keyring test",
    );
}

#[test]
fn secret_service_keeps_the_token_encrypted() {
    let (t1, t2) = (random_token("a"), random_token("b"));
    let server = format!("http://test.invalid/{t1}");
    let script = r#"eval "$(printf test-password | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null
"$@""#;
    let (home, runtime) = in_secret_service(
        script,
        &[
            ("CHATAPP_TEST_KEYCHAIN", "secret-service"),
            ("CHATAPP_TEST_SERVER", &server),
            ("CHATAPP_TEST_TOKEN_1", &t1),
            ("CHATAPP_TEST_TOKEN_2", &t2),
        ],
        "the Secret Service test",
    );

    // gnome-keyring wrote its (encrypted) keyring file; no file holds a token in clear.
    let files = all_files(home.path());
    assert!(
        files
            .iter()
            .any(|p| p.to_string_lossy().contains("keyrings")),
        "expected gnome-keyring's files under HOME, found {files:?}"
    );
    for dir in [home.path(), runtime.path()] {
        for t in [&t1, &t2] {
            let hits = files_containing(dir, t.as_bytes());
            assert!(hits.is_empty(), "token in plain text in {hits:?}");
        }
    }
}

#[test]
fn kernel_keyring_is_used_without_a_secret_service() {
    require("keyctl", "keyutils");
    let home = private_dir();
    let (t1, t2) = (random_token("c"), random_token("d"));
    let child_cmd = rerun_self("keychain_child");
    let mut cmd = std::process::Command::new("keyctl");
    cmd.args(["session", "-"])
        .arg(child_cmd.get_program())
        .args(child_cmd.get_args())
        .env("HOME", home.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env_remove("CHATAPP_KEYCHAIN")
        .env("CHATAPP_TEST_KEYCHAIN", "kernel")
        .env("CHATAPP_TEST_SERVER", format!("http://test.invalid/{t1}"))
        .env("CHATAPP_TEST_TOKEN_1", &t1)
        .env("CHATAPP_TEST_TOKEN_2", &t2)
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("keyctl session");
    let status = wait_for(
        &mut child,
        Duration::from_secs(60),
        "the kernel keyring test",
    );
    assert!(
        status.success(),
        "keychain test in the kernel keyring failed: {status}"
    );
    assert!(
        all_files(home.path()).is_empty(),
        "nothing may be written under HOME"
    );
}

#[test]
fn a_missing_secret_service_is_reported_clearly() {
    require("keyctl", "keyutils");
    let home = private_dir();
    let child_cmd = rerun_self("keychain_child");
    let mut cmd = std::process::Command::new("keyctl");
    cmd.args(["session", "-"])
        .arg(child_cmd.get_program())
        .args(child_cmd.get_args())
        .env("HOME", home.path())
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/no-bus", home.path().display()),
        )
        .env_remove("DISPLAY")
        .env_remove("CHATAPP_KEYCHAIN")
        .env("CHATAPP_TEST_KEYCHAIN", "missing")
        .env("CHATAPP_TEST_TOKEN_1", "x")
        .env("CHATAPP_TEST_TOKEN_2", "y")
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("keyctl session");
    let status = wait_for(
        &mut child,
        Duration::from_secs(60),
        "the missing keychain test",
    );
    assert!(
        status.success(),
        "missing Secret Service test failed: {status}"
    );
}
