//! The macOS Keychain and the Windows Credential Manager through the app's own code:
//! store, read, replace, delete. Only built there (the public CI host's macOS and
//! Windows jobs run it); on Linux, `keychain.rs` tests the Linux stores.

#![cfg(any(target_os = "macos", windows))]

use chatapp_desktop::keychain::{Backend, Keychain};

#[test]
fn the_native_keychain_keeps_replaces_and_forgets_a_token() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let server = format!("http://chatapp-test-{nanos:x}.invalid");
    let kc = Keychain::open().expect("the system keychain");
    assert_eq!(kc.backend(), Backend::Native);

    assert_eq!(kc.token(&server).expect("read empty"), None);
    kc.save_token(&server, "first-token").expect("store");
    assert_eq!(
        kc.token(&server).expect("read"),
        Some("first-token".to_owned())
    );
    kc.save_token(&server, "second-token").expect("replace");
    let again = Keychain::open().expect("reopen");
    assert_eq!(
        again.token(&server).expect("read"),
        Some("second-token".to_owned())
    );
    kc.delete_token(&server).expect("delete");
    assert_eq!(kc.token(&server).expect("read deleted"), None);
    kc.delete_token(&server).expect("deleting twice is fine");
}
