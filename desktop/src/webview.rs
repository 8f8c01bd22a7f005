//! Linux only: WebKitGTK set up for one single-page app that is idle most of the time, so
//! that the same screens cost less memory (BENCHMARKS.md, the desktop app). The
//! [`plugin`] sets the network process's memory-pressure settings before any webview
//! exists (plugins are set up in `Builder::build`, before the windows of
//! `tauri.conf.json` are created), then each webview's cache model and settings as soon
//! as it is created. The web process's own memory-pressure settings are not reachable:
//! they are a construct-only property of the `WebKitWebContext`, which wry creates.

use tauri::plugin::{Builder, TauriPlugin};
use tauri::{Webview, Wry};
use webkit2gtk::{
    CacheModel, HardwareAccelerationPolicy, MemoryPressureSettings, SettingsExt, WebContextExt,
    WebViewExt, WebsiteDataManager,
};

/// The network process checks its memory every 30 s and releases caches above
/// `conservative × limit` (more above `strict × limit`); it is never killed.
const NETWORK_MEMORY_LIMIT_MB: u32 = 64;

/// The plugin that tunes every webview; add it in `run()` (Wry only: the mock runtime of
/// the tests has no WebKit).
pub fn plugin() -> TauriPlugin<Wry> {
    Builder::<Wry, ()>::new("chatapp-webview")
        .setup(|_app, _api| {
            network_memory_pressure();
            Ok(())
        })
        .on_webview_ready(|webview| tune(&webview))
        .build()
}

/// For every network process started after this call: must come before the first
/// `WebKitWebsiteDataManager`, i.e. before the first webview.
fn network_memory_pressure() {
    let mut settings = MemoryPressureSettings::new();
    settings.set_memory_limit(NETWORK_MEMORY_LIMIT_MB);
    settings.set_conservative_threshold(0.33);
    settings.set_strict_threshold(0.5);
    settings.set_kill_threshold(0.0);
    settings.set_poll_interval(30.0);
    WebsiteDataManager::set_memory_pressure_settings(&mut settings);
}

/// An app, not a browser: no memory or disk cache of pages and resources kept for later
/// (the web UI comes from the binary; `chatmedia:` files are fetched again when shown
/// again), no page cache (the app never navigates), and no accelerated compositing: under
/// software GL (Xvfb, a VM, no GPU driver) compositing took the web process from about 108
/// to 202 MiB, and the first screen came 1.3 s later; the web UI has no WebGL, canvas or
/// heavy animation that would need it. Applied on the main thread right after the webview
/// is created: the cache model and settings reach the running web and network processes.
fn tune(webview: &Webview<Wry>) {
    let applied = webview.with_webview(|platform| {
        let view = platform.inner();
        if let Some(context) = WebViewExt::context(&view) {
            WebContextExt::set_cache_model(&context, CacheModel::DocumentViewer);
        }
        if let Some(settings) = WebViewExt::settings(&view) {
            SettingsExt::set_hardware_acceleration_policy(
                &settings,
                HardwareAccelerationPolicy::Never,
            );
            SettingsExt::set_enable_page_cache(&settings, false);
        }
    });
    if let Err(e) = applied {
        tracing::info!(error = %e, "webview settings not applied");
    }
}
