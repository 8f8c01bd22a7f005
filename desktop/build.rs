//! Builds the web UI (`web-ui/dist`, the app's frontend) when it is missing or older
//! than its sources (the check is shared with the server's build script), then Tauri's.

include!("../web-ui/build-support.rs");

fn main() {
    ensure_web_ui();
    tauri_build::build()
}
