//! Notifications through the system (tauri-plugin-notification). The web UI decides what
//! to announce (one per conversation, a summary per conversation after a long gap); this
//! shows it only while the window is not focused, under the conversation's id so a newer
//! one replaces the older one of the same conversation.

use tauri::{AppHandle, Manager};
use tauri_plugin_notification::NotificationExt;

pub fn window_focused(app: &AppHandle) -> bool {
    app.get_webview_window("main")
        .and_then(|w| w.is_focused().ok())
        .unwrap_or(false)
}

pub fn show(app: &AppHandle, title: &str, body: &str, conversation: Option<i64>) {
    if window_focused(app) {
        return;
    }
    let body: String = body.chars().take(200).collect();
    let mut n = app.notification().builder().title(title).body(body);
    if let Some(id) = conversation.and_then(|c| i32::try_from(c).ok()) {
        n = n.id(id);
    }
    if let Err(e) = n.show() {
        tracing::warn!(error = %e, "notification not shown");
    }
}
