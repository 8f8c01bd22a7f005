//! Builds the web UI (`web-ui/dist`, embedded in the binary) when it is missing or older
//! than its sources; the check is shared with the desktop app's build script.

include!("../web-ui/build-support.rs");

fn main() {
    ensure_web_ui();
}
