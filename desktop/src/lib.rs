//! ChatApp for the desktop: the web UI (`web-ui/dist`) in a native window, talking to the
//! server only through Tauri commands backed by `chatapp-client`, so the session token
//! lives in the OS keychain and never in the webview. One module per native capability:
//! `session` (server, token, API), `keychain`, `recorder`, `media` (server files for the
//! webview), `notify`, `tray`, `wake` (reconnecting after a sleep); `commands` only
//! translates.

pub mod address;
pub mod commands;
pub mod keychain;
pub mod media;
pub mod notify;
pub mod recorder;
pub mod session;
pub mod tray;
pub mod wake;

use tauri::Manager;

/// The app with its plugins, state and commands; `run` starts it. Tests may build it
/// with another runtime.
pub fn builder() -> tauri::Builder<tauri::Wry> {
    tauri::Builder::default()
        // First: a second launch hands over to the running one, which comes to the front.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tray::focus_main(app);
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_notification::init())
        .manage(commands::Recordings::default())
        .register_asynchronous_uri_scheme_protocol(media::SCHEME, media::handle)
        .setup(|app| {
            let dir = app.path().app_config_dir()?;
            app.manage(session::Session::load(dir));
            tray::install(app.handle());
            notify::install(app.handle());
            wake::watch(app.handle().clone());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::server_get,
            commands::server_security,
            commands::forget_session,
            commands::server_set,
            commands::register,
            commands::login,
            commands::logout,
            commands::me,
            commands::update_me,
            commands::upload_avatar,
            commands::delete_avatar,
            commands::search_users,
            commands::user,
            commands::conversations,
            commands::conversation,
            commands::create_conversation,
            commands::update_conversation,
            commands::add_members,
            commands::remove_member,
            commands::history,
            commands::send_message,
            commands::mark_read,
            commands::send_voice,
            commands::realtime_start,
            commands::realtime_stop,
            commands::realtime_send,
            commands::realtime_reconnect,
            commands::recorder_start,
            commands::recorder_pause,
            commands::recorder_resume,
            commands::recorder_cancel,
            commands::recorder_stop,
            commands::recording_wav,
            commands::recording_discard,
            commands::recording_send,
            commands::set_unread,
            commands::notify,
        ])
}

/// Starts the app (logging from `RUST_LOG`).
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = builder().run(tauri::generate_context!()) {
        tracing::error!(error = %e, "ChatApp could not start");
        std::process::exit(1);
    }
}
