//! ChatApp for the desktop: the web UI (`web-ui/dist`) in a native window, talking to the
//! server only through Tauri commands backed by `chatapp-client`, so the session token
//! lives in the OS keychain and never in the webview. One module per native capability:
//! `session` (server, token, API), `address` (what a typed server address means),
//! `keychain`, `recorder`, `pump` (realtime events to the window), `media` (server files
//! for the webview), `notify`, `tray`, `wake` (reconnecting after a sleep); `commands`
//! only translates.

pub mod address;
pub mod commands;
pub mod keychain;
pub mod media;
pub mod notify;
pub mod pump;
pub mod recorder;
pub mod session;
pub mod tray;
pub mod wake;
#[cfg(target_os = "linux")]
pub mod webview;

use tauri::{Builder, Manager, Runtime};

/// Every command the webview may call, named once: the handler, and the names the web
/// UI's types are generated from (`tests/typescript.rs`), so that a command cannot be
/// renamed or dropped on one side only.
macro_rules! commands {
    ($($name:ident),* $(,)?) => {
        /// The commands' names, as the webview invokes them.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        fn invoke_handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$(commands::$name),*]
        }
    };
}

commands![
    server_get,
    server_security,
    forget_session,
    server_set,
    server_info,
    register,
    login,
    logout,
    me,
    update_me,
    delete_account,
    admin_users,
    admin_create_user,
    admin_update_user,
    admin_reset_password,
    invites,
    create_invite,
    revoke_invite,
    admin_actions,
    upload_avatar,
    delete_avatar,
    search_users,
    user,
    conversations,
    conversation,
    create_conversation,
    update_conversation,
    add_members,
    remove_member,
    history,
    send_message,
    edit_message,
    delete_message,
    react,
    mark_played,
    update_settings,
    search_messages,
    mark_read,
    send_voice,
    send_photo,
    pick_photo,
    media_file,
    realtime_start,
    realtime_stop,
    realtime_send,
    realtime_reconnect,
    recorder_start,
    recorder_pause,
    recorder_resume,
    recorder_cancel,
    recorder_stop,
    recording_wav,
    recording_discard,
    recording_send,
    set_unread,
    notify,
];

/// The events the Rust side emits to the webview.
pub const EVENTS: &[&str] = &[pump::EVENT, pump::STATE, recorder::RECORDER, notify::OPEN];

/// The app with its plugins, state and commands, on any Tauri runtime: [`commands`]
/// inside [`desktop`]. `run` starts it on the system webview (Wry); tests may pass
/// `tauri::test::mock_builder()` to the parts they need.
pub fn builder<R: Runtime>() -> Builder<R> {
    desktop(commands(Builder::new()))
}

/// What the webview calls: the commands, the recordings and the `chatmedia://` files.
/// Needs no display, tray or desktop service. The commands also read a
/// [`session::Session`], which needs the app's config directory: [`desktop`] loads it at
/// start-up, a test manages its own.
pub fn commands<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder
        .manage(recorder::Recordings::default())
        .register_asynchronous_uri_scheme_protocol(media::SCHEME, media::handle)
        .invoke_handler(invoke_handler())
}

/// The desktop around the commands: one instance at a time, the window where it was left,
/// notifications, the session from the config directory, the tray and the sleep watcher.
/// Generic like the rest, but it wants a desktop session (on Linux the single-instance
/// plugin claims a D-Bus name, notifications go over D-Bus). Sets the builder's `setup`
/// (a builder has one), so a caller adds no other.
pub fn desktop<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder
        // First: a second launch hands over to the running one, which comes to the front.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tray::focus_main(app);
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .setup(|app| {
            let dir = app.path().app_config_dir()?;
            app.manage(session::Session::load(dir));
            tray::install(app.handle());
            notify::install(app.handle());
            wake::watch(app.handle().clone());
            Ok(())
        })
}

/// Starts the app (logging from `RUST_LOG`) on Wry, the one runtime that shows a window:
/// the system webview (WebKitGTK on Linux). The context is `tauri.conf.json` with the web
/// UI embedded.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let builder = builder::<tauri::Wry>();
    // The webview's memory settings (Wry only: the mock runtime of the tests has no WebKit).
    #[cfg(target_os = "linux")]
    let builder = builder.plugin(webview::plugin());
    if let Err(e) = builder.run(tauri::generate_context!()) {
        tracing::error!(error = %e, "ChatApp could not start");
        std::process::exit(1);
    }
}
