//! The app's commands through Tauri's IPC, as the webview calls them, on Tauri's mock
//! runtime: no display, window system, tray, keychain or server. The app is
//! `chatapp_desktop::commands` on `tauri::test::mock_builder()` with a session kept in a
//! temporary config directory (the desktop plugins and set-up, `chatapp_desktop::desktop`,
//! need a desktop session and are left out). What crosses the IPC is what the web UI's
//! desktop client reads: the JSON answers and the `CallError` shape of a refusal.

use std::path::Path;

use chatapp_desktop::session::Session;
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

/// The app on the mock runtime, its session in `config_dir`, and its main window.
fn app(config_dir: &Path) -> (App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let app = chatapp_desktop::commands(mock_builder())
        .manage(Session::load(config_dir.to_path_buf()))
        .build(mock_context(tauri::test::noop_assets()))
        .expect("the app builds on the mock runtime");
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("a mock window");
    (app, window)
}

/// Invokes `cmd` with `args` (JSON, camelCase names) as the webview does: the answer, or
/// the refusal.
fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("url"),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize().expect("a JSON answer"))
}

fn call_error(status: u16, code: &str, message: &str) -> Value {
    json!({ "status": status, "code": code, "message": message, "retry_after": null })
}

#[test]
fn a_fresh_app_has_no_server_and_refuses_what_needs_one() {
    let config = tempfile::tempdir().expect("config dir");
    let (_app, window) = app(config.path());

    assert_eq!(invoke(&window, "server_get", json!({})), Ok(Value::Null));
    assert_eq!(
        invoke(&window, "server_security", json!({})),
        Ok(Value::Null)
    );

    // Calls as the person, and the realtime connection (a command given the app handle),
    // are refused with the web UI's `ApiError` shape before anything is reached.
    let no_server = call_error(0, "no_server", "Choose your ChatApp server first.");
    assert_eq!(invoke(&window, "me", json!({})), Err(no_server.clone()));
    assert_eq!(
        invoke(&window, "conversations", json!({})),
        Err(no_server.clone())
    );
    assert_eq!(
        invoke(&window, "realtime_start", json!({ "cursors": { "1": 4 } })),
        Err(no_server)
    );
    // With no connection a frame is not taken (the web UI keeps it in its own outbox).
    assert_eq!(
        invoke(
            &window,
            "realtime_send",
            json!({ "event": { "type": "typing", "conversation_id": 1 } })
        ),
        Ok(Value::Bool(false))
    );
    // A recording that was never made cannot be played.
    assert_eq!(
        invoke(&window, "recording_wav", json!({ "id": 7 })),
        Err(call_error(0, "recorder_error", "That recording is gone."))
    );
    // A photo comes as raw bytes, never as JSON; the file chooser needs the desktop's
    // dialog plugin (left out here), and says so instead of failing the app.
    assert_eq!(
        invoke(&window, "send_photo", json!({ "bytes": [1, 2, 3] })),
        Err(call_error(
            0,
            "invalid_request",
            "Expected the image's bytes."
        ))
    );
    // A voice file's bytes: only a server file path, and only with a server.
    assert_eq!(
        invoke(&window, "media_file", json!({ "path": "/api/me" })),
        Err(call_error(0, "invalid_request", "Not a server file."))
    );
    assert_eq!(
        invoke(
            &window,
            "media_file",
            json!({ "path": "/api/files/0123456789abcdef0123456789abcdef" })
        ),
        Err(call_error(
            0,
            "no_server",
            "Choose your ChatApp server first."
        ))
    );
    assert_eq!(
        invoke(&window, "pick_photo", json!({})),
        Err(call_error(0, "no_dialog", "This window cannot open files."))
    );
}

#[test]
fn the_kept_server_is_reported_with_its_warning_while_signed_out() {
    let config = tempfile::tempdir().expect("config dir");
    std::fs::write(
        config.path().join("config.json"),
        r#"{ "server": "http://chat.example.org" }"#,
    )
    .expect("config");
    let (_app, window) = app(config.path());

    assert_eq!(
        invoke(&window, "server_get", json!({})),
        Ok(json!("http://chat.example.org"))
    );
    assert_eq!(
        invoke(&window, "server_security", json!({})),
        Ok(json!({
            "transport": "cleartext",
            "warning": "This server is reached without encryption (http://chat.example.org). Your password and messages can be read by anyone on the network between you and it. Ask whoever runs it for an https:// address."
        }))
    );
}

#[test]
fn a_server_that_does_not_answer_is_refused_and_not_kept() {
    let config = tempfile::tempdir().expect("config dir");
    let (_app, window) = app(config.path());
    // A port nothing listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let url = format!("http://{closed}");

    assert_eq!(
        invoke(&window, "server_set", json!({ "url": url })),
        Err(call_error(
            0,
            "server_unreachable",
            &format!("No ChatApp server answers at {url}. Check the address."),
        ))
    );
    assert_eq!(
        invoke(
            &window,
            "server_set",
            json!({ "url": "ftp://chat.example.org" })
        ),
        Err(call_error(
            0,
            "invalid_server",
            "“ftp://chat.example.org” is not a web address: use https:// (or http:// for a server on your own network).",
        ))
    );
    assert_eq!(invoke(&window, "server_get", json!({})), Ok(Value::Null));
    assert!(!config.path().join("config.json").exists());
}
