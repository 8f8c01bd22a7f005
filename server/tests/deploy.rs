//! The systemd unit in `deploy/` as systemd itself reads it: `systemd-analyze verify`
//! finds nothing to say about it, and `systemd-analyze security` rates its exposure at
//! 2.0 or less of 10 ("OK"), so a weakened unit fails here.

use std::process::Command;

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    const INSTALLED: &str = "/usr/local/bin/chatapp-server";
    let unit = include_str!("../../deploy/chatapp-server.service");
    assert!(
        unit.contains(&format!("ExecStart={INSTALLED}\n")),
        "the unit starts {INSTALLED}, as its install notes say"
    );
    // Verified with the binary this test was built with in its place: verify checks that
    // the program exists.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chatapp-server.service");
    std::fs::write(
        &path,
        unit.replace(INSTALLED, env!("CARGO_BIN_EXE_chatapp-server")),
    )
    .expect("write the unit");
    let analyze = |args: &[&str]| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&path)
            .output()
            .expect("systemd-analyze runs (Debian's systemd package; scripts/setup)")
    };
    let verify = analyze(&["verify"]);
    assert!(
        verify.status.success() && verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = analyze(&["security", "--offline=yes", "--threshold=20"]);
    assert!(
        security.status.success(),
        "exposure above 2.0: {}{}",
        String::from_utf8_lossy(&security.stdout),
        String::from_utf8_lossy(&security.stderr)
    );
}
